//! A customer tenant's GUID from one of its domains, through Microsoft Entra's public OpenID
//! Connect discovery document: `GET {authority}/{domain}/v2.0/.well-known/openid-configuration`
//! (the authority of the run's token URL, as the tokens per tenant use it) answers JSON whose
//! `token_endpoint` (`{authority}/{tenant GUID}/oauth2/v2.0/token`) and `issuer`
//! (`https://login.microsoftonline.com/{tenant GUID}/v2.0`) name the tenant; a domain no
//! tenant has is answered 400 `invalid_tenant` (`AADSTS90002`). The request carries no
//! credentials, goes through the run's one HTTP client (no redirect followed, the body read up
//! to a cap), and everything of the answer is hostile: the GUID is validated, the messages are
//! redacted and shortened. Uses `core` and `send::{attempt, http, http_client, retry,
//! tenant_tokens}`.

use std::time::Duration;

use http::header::ACCEPT;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::send::attempt::{Attempt, Response};

/// A discovery document is about 2 KB: anything past this is cut (and then unreadable).
const MAX_BODY: usize = 64 * 1024;

/// The discovery document's path after the tenant segment.
const TAIL: &[&str] = &["v2.0", ".well-known", "openid-configuration"];

/// Whether `text` is a DNS name a tenant may have: labels of letters, digits and `-` (not at
/// either end), 1 to 63 characters each, at least two, 253 characters at most.
pub fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Where `domain`'s discovery document is, at the authority of `token_url`
/// (`.../{tenant}/oauth2/v2.0/token`); why not, for a token URL without a tenant segment or a
/// name that is not a domain.
pub fn discovery_url(token_url: &reqwest::Url, domain: &str) -> Result<reqwest::Url, String> {
    if !is_domain(domain) {
        return Err("is not a domain name (letters, digits, `-` and dots)".into());
    }
    crate::send::tenant_tokens::at_authority(token_url, &domain.to_ascii_lowercase(), TAIL)
        .ok_or_else(|| {
            "the token URL has no tenant segment (`.../{tenant}/oauth2/v2.0/token`) to find its authority by".into()
        })
}

/// One attempt at the discovery document at `url`, without credentials, within `timeout`: a
/// successful answer's JSON object in [`Response::user`], an error's OAuth `error` and
/// `error_description` as the code and message.
pub async fn fetch(http: &reqwest::Client, url: &reqwest::Url, timeout: Duration) -> Attempt {
    let request = http
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send();
    let attempt = async {
        match request.await {
            Ok(response) => Attempt::Response(read(response).await),
            Err(e) => match crate::send::http_client::failure(&e) {
                crate::send::http_client::Failure::Timeout => Attempt::Timeout,
                other => Attempt::Connection(crate::send::http::sanitize(&other.message(), &[])),
            },
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Attempt::Timeout)
}

async fn read(mut response: reqwest::Response) -> Response {
    let status = response.status();
    let mut answer = crate::send::http::answer_from_headers(status.as_u16(), response.headers());
    if status.is_redirection() {
        let host = crate::send::http::location_host(response.headers());
        answer.message = format!("the authority answered {status} with a redirect to {host}, which is not followed: check `token_url`");
        return answer;
    }
    let body = crate::send::http_client::read_body(&mut response, MAX_BODY, true).await;
    let object = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    if status.is_success() {
        answer.message = match object.is_some() {
            true => String::new(),
            false => "the discovery document is not a JSON object".into(),
        };
        answer.user = object;
        return answer;
    }
    let text = |key: &str| {
        let value = object.as_ref()?.get(key)?.as_str()?;
        Some(crate::send::http::sanitize(value, &[])).filter(|v| !v.is_empty())
    };
    answer.error_code = text("error").map(|e| crate::core::text::shorten(&e, 40));
    answer.message = text("error_description").unwrap_or_else(|| format!("HTTP {status}"));
    answer
}

/// Whether an answer says no tenant has the domain (`invalid_tenant`, `AADSTS90002`).
pub fn unknown_tenant(answer: &Response) -> bool {
    answer.status == 400
        && (answer.error_code.as_deref() == Some("invalid_tenant")
            || answer.message.starts_with("AADSTS90002"))
}

/// The tenant GUID a discovery document names: the tenant segment of its `token_endpoint`,
/// else of its `issuer`; when both name one, they must agree.
pub fn tenant_of(document: &Map<String, Value>) -> Result<Uuid, String> {
    let segment = |key: &str, tail: &[&str]| -> Option<Uuid> {
        let url = reqwest::Url::parse(document.get(key)?.as_str()?).ok()?;
        let segments: Vec<&str> = url.path_segments()?.collect();
        let n = segments.len();
        (n > tail.len() && segments[n - tail.len()..] == *tail)
            .then(|| crate::core::ids::parse_guid(segments[n - tail.len() - 1]).ok())
            .flatten()
    };
    let by_endpoint = segment("token_endpoint", &["oauth2", "v2.0", "token"]);
    let by_issuer = segment("issuer", &["v2.0"]);
    match (by_endpoint, by_issuer) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "the discovery document names two tenants ({a} in token_endpoint, {b} in issuer)"
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(
            "the discovery document names no tenant GUID in its token_endpoint or issuer".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_document_is_asked_of_the_token_urls_authority() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let made = discovery_url(
            &url("https://login.microsoftonline.com/organizations/oauth2/v2.0/token?x=1"),
            "Contoso.onmicrosoft.com",
        )
        .unwrap();
        assert_eq!(
            made.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
        );
        let sovereign = url("https://login.example/base/partner/oauth2/v2.0/token");
        assert_eq!(
            discovery_url(&sovereign, "a.example").unwrap().path(),
            "/base/a.example/v2.0/.well-known/openid-configuration"
        );
        assert!(discovery_url(&url("https://login.example/token"), "a.example").is_err());
        for bad in [
            "a", "a..b", "-a.b", "a-.b", "a/b.c", "a%2F.b", "../x.y", "a b.c", "a.b?x",
        ] {
            assert!(discovery_url(&sovereign, bad).is_err(), "{bad}");
        }
        assert!(!is_domain(&format!("{}.com", "a".repeat(64))));
    }

    #[test]
    fn the_tenant_is_the_validated_guid_of_token_endpoint_or_issuer() {
        let t = Uuid::from_u128(0x1234);
        let both = json!({
            "token_endpoint": format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/token"),
            "issuer": format!("https://login.microsoftonline.com/{t}/v2.0"),
        });
        assert_eq!(tenant_of(&object(both)), Ok(t));
        let issuer = json!({"issuer": format!("https://login.microsoftonline.com/{t}/v2.0")});
        assert_eq!(tenant_of(&object(issuer)), Ok(t));
        let other = Uuid::from_u128(9);
        let disagree = json!({
            "token_endpoint": format!("https://x/{t}/oauth2/v2.0/token"),
            "issuer": format!("https://x/{other}/v2.0"),
        });
        assert!(tenant_of(&object(disagree))
            .unwrap_err()
            .contains("two tenants"));
        for bad in [
            json!({}),
            json!({"token_endpoint": "https://x/contoso.com/oauth2/v2.0/token"}),
            json!({"token_endpoint": 7, "issuer": ["x"]}),
            json!({"token_endpoint": format!("https://x/{t}/oauth2/token")}),
            json!({"issuer": "not a url"}),
        ] {
            assert!(tenant_of(&object(bad.clone())).is_err(), "{bad}");
        }
    }
}
