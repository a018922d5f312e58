//! Partner Center's error bodies (`{"code":60002,"description":...}`, a gateway's
//! `{"statusCode":429,"message":...}`, an OAuth-style `error_description`, a proxy's HTML page)
//! read into an error code, as text, and a message. Uses only `core`.

use serde_json::Value;

/// The error code and a message from an error body of any shape. Codes are kept as text
/// (`60002`); a code that is not a short plain token is dropped.
pub fn describe_error(status: u16, body: &[u8], is_json: bool) -> (Option<String>, String) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return (None, format!("{reason} (empty body)"));
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let code = value.get("code").and_then(|c| match c {
            Value::Number(n) => n.as_i64().map(|n| n.to_string()),
            Value::String(s) => crate::core::text::error_code(s),
            _ => None,
        });
        let text = ["description", "message", "error_description", "error"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        return (code, text.unwrap_or_else(|| reason.to_string()));
    }
    let kind = if is_json {
        "unreadable JSON"
    } else {
        "a non-JSON body"
    };
    let looks_html = if body.iter().take(512).any(|b| *b == b'<') {
        " (HTML, from a proxy or gateway?)"
    } else {
        ""
    };
    (None, format!("{reason} with {kind}{looks_html}"))
}

/// The failures that refuse the partner a whole customer tenant, whatever the user: a short
/// name for each, or None. 400/401 `400` (a bad token) is the run's, not the tenant's; 900329
/// (app-only token) refuses every tenant alike, so it is not here either.
pub fn tenant_refusal(status: u16, code: Option<&str>) -> Option<&'static str> {
    match (status, code?) {
        (403, "20002") => Some("no relationship"),
        (404, "60003") => Some("tenant not found"),
        (403, "900308") => Some("insufficient privileges"),
        (403, "900309") => Some("blocked by conditional access"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_refusals_need_both_status_and_code() {
        assert_eq!(tenant_refusal(403, Some("20002")), Some("no relationship"));
        assert_eq!(tenant_refusal(404, Some("60003")), Some("tenant not found"));
        assert!(tenant_refusal(403, Some("900308")).is_some());
        assert!(tenant_refusal(403, Some("900309")).is_some());
        for (status, code) in [(404, Some("60002")), (403, None), (400, Some("20002"))] {
            assert_eq!(tenant_refusal(status, code), None, "{status} {code:?}");
        }
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let pc =
            br#"{"code":60002,"description":"User not found.","data":[],"source":"PartnerFD"}"#;
        assert_eq!(
            describe_error(404, pc, true),
            (Some("60002".into()), "User not found.".to_string())
        );
        let as_text = br#"{"code":" 3000 ","description":"Invalid property."}"#;
        assert_eq!(
            describe_error(400, as_text, true).0.as_deref(),
            Some("3000")
        );
        let hostile = br#"{"code":"=HYPERLINK(\"x\")","description":"d"}"#;
        assert_eq!(describe_error(400, hostile, true).0, None);
        let throttle =
            br#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 57 seconds."}"#;
        assert_eq!(
            describe_error(429, throttle, true),
            (
                None,
                "Rate limit is exceeded. Try again in 57 seconds.".to_string()
            )
        );
        let (code, msg) = describe_error(502, b"<html><body>Bad gateway</body></html>", false);
        assert_eq!(code, None);
        assert!(msg.contains("HTML"), "{msg}");
        assert_eq!(
            describe_error(503, b"", true).1,
            "Service Unavailable (empty body)"
        );
    }
}
