//! Sends one request attempt to Partner Center and reads what came back (status, Retry-After, the error code and a short message), never keeping a response body.

use std::time::{Duration, SystemTime};

use http::header::{
    HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Uri};
use uuid::Uuid;

use crate::send::attempt::{Attempt, Response};
use crate::send::retry;

/// Error bodies are read up to this size; anything longer is cut (a proxy's HTML page, say).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Success bodies are drained (never kept) up to this size so the connection can be reused.
const MAX_DRAIN: usize = 1024 * 1024;
/// Longest message kept from an error body.
const MAX_MESSAGE_CHARS: usize = 200;

const MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
const MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("bulkpatch/", env!("CARGO_PKG_VERSION")));

/// A GUID as a header value, without going through a `String`.
fn guid_header(id: Uuid) -> HeaderValue {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .expect("a GUID is a valid header value")
}

/// The API client, built once per run and shared by all workers.
pub struct Client {
    /// The run's one HTTP client (`crate::send::http_client::client`), shared with the token provider.
    http: reqwest::Client,
    /// `{base}/v1/customers`, normalised by the URL parser once: each request's URL extends it.
    customers_url: reqwest::Url,
    /// The limit on one attempt, from sending to the end of the answer's body.
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("customers_url", &self.customers_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Failure to set up the client (a base URL that cannot take a path, say): fatal for the run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl Client {
    /// The API client for `base_url` over `http` (see `crate::send::http_client::client`); `timeout` bounds
    /// each attempt.
    pub fn new(
        http: reqwest::Client,
        base_url: &reqwest::Url,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let mut customers_url = base_url.clone();
        customers_url
            .path_segments_mut()
            .map_err(|()| ClientError::Build(format!("{base_url} cannot be a base URL")))?
            .pop_if_empty()
            .extend(["v1", "customers"]);
        // A user's URL is this plus GUIDs: check once that it is a URI.
        Uri::try_from(format!("{customers_url}/{0}/users/{0}", Uuid::nil()))
            .map_err(|e| ClientError::Build(format!("{base_url}: {e}")))?;
        Ok(Client {
            http,
            customers_url,
            timeout,
        })
    }

    /// The URL of one user: the base's path (already encoded by the URL parser) and two GUIDs,
    /// which need no encoding.
    pub fn user_url(&self, customer: Uuid, user: Uuid) -> reqwest::Url {
        const GUID: usize = uuid::fmt::Hyphenated::LENGTH;
        let mut url = self.customers_url.clone();
        url.path_segments_mut()
            .expect("checked in Client::new")
            .push(customer.hyphenated().encode_lower(&mut [0; GUID]))
            .push("users")
            .push(user.hyphenated().encode_lower(&mut [0; GUID]));
        url
    }

    /// One PATCH attempt. `auth` is the `Authorization` header value; `secrets` are strings that
    /// must never reach a message (a row's password).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        auth: HeaderValue,
        customer: Uuid,
        user: Uuid,
        body: Vec<u8>,
        request_id: Uuid,
        correlation_id: Uuid,
        secrets: &[&str],
    ) -> Attempt {
        let ids = (request_id, correlation_id);
        let mut request = self.request(Method::PATCH, customer, user, auth, ids);
        request.headers_mut().insert(CONTENT_TYPE, JSON);
        *request.body_mut() = Some(reqwest::Body::from(body));
        self.send(request, secrets, false).await
    }

    /// One GET attempt: on success the response carries the user's fields.
    pub async fn get_user(
        &self,
        auth: HeaderValue,
        customer: Uuid,
        user: Uuid,
        request_id: Uuid,
        correlation_id: Uuid,
    ) -> Attempt {
        let ids = (request_id, correlation_id);
        let request = self.request(Method::GET, customer, user, auth, ids);
        self.send(request, &[], true).await
    }

    /// A request to one user with the headers every request carries; `ids` are its
    /// `MS-RequestId` and `MS-CorrelationId`.
    fn request(
        &self,
        method: Method,
        customer: Uuid,
        user: Uuid,
        mut auth: HeaderValue,
        ids: (Uuid, Uuid),
    ) -> reqwest::Request {
        let mut request = reqwest::Request::new(method, self.user_url(customer, user));
        auth.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(USER_AGENT, AGENT);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(MS_REQUEST_ID, guid_header(ids.0));
        headers.insert(MS_CORRELATION_ID, guid_header(ids.1));
        request
    }

    async fn send(&self, request: reqwest::Request, secrets: &[&str], keep_user: bool) -> Attempt {
        // The timeout covers the whole attempt: connecting, sending, and reading the answer
        // (reqwest's own timeout is the same; this one also bounds reading the body here).
        let attempt = async {
            match self.http.execute(request).await {
                Ok(response) => {
                    Attempt::Response(read_response(response, secrets, keep_user).await)
                }
                Err(e) => match crate::send::http_client::failure(&e) {
                    crate::send::http_client::Failure::Timeout => Attempt::Timeout,
                    crate::send::http_client::Failure::Connect(m)
                    | crate::send::http_client::Failure::Dropped(m) => {
                        Attempt::Connection(sanitize(&m, secrets))
                    }
                },
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or(Attempt::Timeout)
    }
}

async fn read_response(
    mut response: reqwest::Response,
    secrets: &[&str],
    keep_user: bool,
) -> Response {
    let status = response.status();
    let headers = response.headers();
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
    let quota = crate::send::pace::quota_from_headers(headers, SystemTime::now());
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("json"));
    if status.is_success() {
        // A PATCH answer may echo a password: it is read and dropped, only so the connection
        // can be reused. A GET answer is the user, kept to compare.
        let body = crate::send::http_client::read_body(&mut response, MAX_DRAIN, keep_user).await;
        let user = keep_user
            .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .flatten()
            .and_then(|v| match v {
                serde_json::Value::Object(mut m) => {
                    m.remove("passwordProfile");
                    Some(m)
                }
                _ => None,
            });
        let message = if keep_user && user.is_none() {
            "the answer was not a user object".to_string()
        } else {
            String::new()
        };
        return Response {
            status: status.as_u16(),
            retry_after,
            error_code: None,
            message,
            user,
            quota,
        };
    }
    let redirect = status
        .is_redirection()
        .then(|| redirect_message(status.as_u16(), response.headers()));
    let body =
        crate::send::http_client::read_body(&mut response, MAX_ERROR_BODY, redirect.is_none())
            .await;
    let (error_code, message) = match redirect {
        Some(message) => (None, message),
        None => describe_error(status.as_u16(), &body, is_json),
    };
    Response {
        status: status.as_u16(),
        retry_after,
        error_code,
        message: sanitize(&message, secrets),
        user: None,
        quota,
    }
}

/// A redirect is never followed (the request carries the token): the row fails, naming only
/// the host the server pointed at.
pub fn redirect_message(status: u16, headers: &http::HeaderMap) -> String {
    format!(
        "the server answered {status} with a redirect to {}; requests carrying credentials never follow a redirect: check --base-url",
        location_host(headers)
    )
}

/// The host of a `Location` header (never its path or query, which may carry secrets).
pub fn location_host(headers: &http::HeaderMap) -> String {
    let location = headers.get(http::header::LOCATION).map(|v| v.as_bytes());
    match location.map(Uri::try_from) {
        None => "nowhere (no Location header)".into(),
        Some(Ok(uri)) => match uri.host() {
            Some(host) => format!("host {host}"),
            None => "the same host (a relative Location)".into(),
        },
        Some(Err(_)) => "an unreadable Location".into(),
    }
}

/// Partner Center's error code and a message from an error body of any shape.
pub fn describe_error(status: u16, body: &[u8], is_json: bool) -> (Option<i64>, String) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return (None, format!("{reason} (empty body)"));
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let code = value.get("code").and_then(|c| match c {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let text = ["description", "message", "error_description", "error"]
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| v.as_str()))
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

/// One line, at most 200 characters, through the redaction point (the run's secrets and
/// `secrets`, in every encoding) before it is cut short.
pub fn sanitize(message: &str, secrets: &[&str]) -> String {
    let m: String = crate::core::redact::redact_with(message, secrets)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::core::text::shorten(&m, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::new_id;

    fn test_http() -> reqwest::Client {
        crate::send::http_client::client(&crate::send::http_client::HttpSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            pool_size: 1,
            ca: None,
        })
        .unwrap()
    }

    #[test]
    fn ids_are_random_version_4_guids() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.get_version(), Some(uuid::Version::Random));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        assert_eq!(guid_header(a).to_str().unwrap(), a.to_string());
    }

    #[test]
    fn user_urls_extend_the_base_path() {
        let (customer, user) = (new_id(), new_id());
        for (base, expected) in [
            (
                "http://127.0.0.1:8400",
                "http://127.0.0.1:8400/v1/customers",
            ),
            (
                "http://127.0.0.1:8400/",
                "http://127.0.0.1:8400/v1/customers",
            ),
            (
                "https://proxy.example/pc/",
                "https://proxy.example/pc/v1/customers",
            ),
            (
                "https://proxy.example/pc",
                "https://proxy.example/pc/v1/customers",
            ),
        ] {
            let client = Client::new(
                test_http(),
                &reqwest::Url::parse(base).unwrap(),
                Duration::from_secs(1),
            )
            .unwrap();
            assert_eq!(
                client.user_url(customer, user).to_string(),
                format!("{expected}/{customer}/users/{user}")
            );
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_failure_that_says_so() {
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let client = Client::new(test_http(), &base, Duration::from_secs(5)).unwrap();
        let attempt = client
            .patch(
                HeaderValue::from_static("Bearer t"),
                new_id(),
                new_id(),
                b"{}".to_vec(),
                new_id(),
                new_id(),
                &[],
            )
            .await;
        match attempt {
            Attempt::Connection(m) => assert!(m.starts_with("cannot connect: "), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let pc =
            br#"{"code":60002,"description":"User not found.","data":[],"source":"PartnerFD"}"#;
        assert_eq!(
            describe_error(404, pc, true),
            (Some(60002), "User not found.".to_string())
        );
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

    #[test]
    fn messages_are_single_line_short_and_secret_free() {
        let m = sanitize("bad\npassword Secr3t!Pw here\r\n", &["Secr3t!Pw"]);
        assert_eq!(m, "bad password <redacted> here");
        assert!(sanitize(&"x".repeat(1000), &[]).chars().count() <= 201);
    }
}
