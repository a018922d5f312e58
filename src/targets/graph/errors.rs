//! Graph's error bodies (`{"error":{"code":"Request_ResourceNotFound","message":"...",
//! "innerError":{...}}}`) read as a text code and a bounded message, any other shape (a proxy's
//! HTML, Partner Center's) handed to the Partner Center reader; and the codes that refuse a
//! whole tenant. Uses only `core` and `targets`.

use serde_json::Value;

use crate::core::text::shorten;
use crate::targets::partner_center::errors::describe_error as describe_other;

/// Longest message kept from an error body.
const MAX_MESSAGE: usize = 300;

/// The error code (as text, only when it is a plain token) and a short message.
pub fn describe_error(status: u16, body: &[u8], is_json: bool) -> (Option<String>, String) {
    let error = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").filter(|e| e.is_object()).cloned());
    let Some(error) = error else {
        let (code, message) = describe_other(status, body, is_json);
        return (code, shorten(&message, MAX_MESSAGE));
    };
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .and_then(crate::core::text::error_code);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(|m| shorten(m.trim(), MAX_MESSAGE))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_string()
        });
    (code, message)
}

/// The failures that refuse the partner a whole customer tenant: a short name, or None.
/// `Authorization_RequestDenied` is not one: Graph answers it for single users too (an admin
/// whose password only a higher role may reset).
pub fn tenant_refusal(status: u16, code: Option<&str>) -> Option<&'static str> {
    match (status, code?) {
        (401 | 403, "Authorization_IdentityNotFound") => Some("application not in the tenant"),
        (403, "Authorization_PolicyDenied" | "AccessDenied_ConditionalAccess") => {
            Some("blocked by conditional access")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_bodies_give_a_text_code_and_a_bounded_message() {
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist.","innerError":{"request-id":"r","client-request-id":"c","date":"2026-01-01T00:00:00"}}}"#;
        assert_eq!(
            describe_error(404, body, true),
            (
                Some("Request_ResourceNotFound".into()),
                "Resource 'x' does not exist.".into()
            )
        );
        let long = format!(
            r#"{{"error":{{"code":"=cmd|x","message":"{}"}}}}"#,
            "m".repeat(10_000)
        );
        let (code, message) = describe_error(400, long.as_bytes(), true);
        assert_eq!(code, None, "a code that is no plain token is dropped");
        assert!(
            message.chars().count() <= MAX_MESSAGE + 1,
            "{}",
            message.len()
        );
        let (code, message) = describe_error(400, br#"{"error":{"code":7}}"#, true);
        assert_eq!((code, message.as_str()), (None, "Bad Request"));
        let (code, message) = describe_error(502, b"<html>Bad gateway</html>", false);
        assert_eq!(code, None);
        assert!(message.contains("HTML"), "{message}");
        assert_eq!(
            describe_error(429, br#"{"error":"x"}"#, true).1,
            "x",
            "a non-object error is read like any other body"
        );
    }

    #[test]
    fn tenant_refusals() {
        assert!(tenant_refusal(401, Some("Authorization_IdentityNotFound")).is_some());
        assert_eq!(
            tenant_refusal(403, Some("Authorization_RequestDenied")),
            None
        );
        assert_eq!(tenant_refusal(404, Some("Request_ResourceNotFound")), None);
        assert_eq!(tenant_refusal(403, None), None);
    }
}
