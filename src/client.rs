//! Sends one request attempt to Partner Center and reads what came back (status, Retry-After, the error code and a short message), never keeping a response body.

use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use uuid::Uuid;

use crate::retry;

/// Error bodies are read up to this size; anything longer is cut (a proxy's HTML page, say).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Success bodies are drained (never kept) up to this size so the connection can be reused.
const MAX_DRAIN: usize = 1024 * 1024;
/// Longest message kept from an error body.
const MAX_MESSAGE_CHARS: usize = 200;

/// A new random (version 4) GUID for `MS-RequestId` or `MS-CorrelationId`, from the
/// thread-local CSPRNG: `Uuid::new_v4` makes a system call per id, two per row.
pub fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

const MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
const MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");

/// A GUID as a header value, without going through a `String`.
fn guid_header(id: Uuid) -> HeaderValue {
    let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .expect("a GUID is a valid header value")
}

/// The reqwest client the API requests go through (also the benchmark's reqwest floor, so
/// that it measures the same settings).
pub fn http_client(
    timeout: Duration,
    connect_timeout: Duration,
    pool_size: usize,
) -> Result<reqwest::Client, ClientError> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reqwest::Client::builder()
        .user_agent(concat!("bulkpatch/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(pool_size)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

/// What one attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// The server answered (any status).
    Response(Response),
    /// No answer within the request timeout.
    Timeout,
    /// The connection failed or was dropped before an answer arrived.
    Connection(String),
}

impl Attempt {
    /// Whether an answer arrived (the next attempt then needs a new MS-RequestId).
    pub fn got_response(&self) -> bool {
        matches!(self, Attempt::Response(_))
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Response(r) => Some(r.status),
            _ => None,
        }
    }
}

/// The parts of an HTTP answer the tool records.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The wait the server asked for (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
    /// Partner Center's numeric error `code`, when the body had one.
    pub error_code: Option<i64>,
    /// A short, single-line, secret-free message (empty on success).
    pub message: String,
    /// The user's fields, for a successful GET (never kept for a PATCH: it may echo a password).
    pub user: Option<serde_json::Map<String, serde_json::Value>>,
    /// What rate-limit headers said remains, if the server sent any.
    pub quota: Option<crate::rate::Quota>,
}

/// The HTTP client, built once per run and shared by all workers.
pub struct Client {
    http: reqwest::Client,
    /// `{base}/v1/customers`, parsed once: each request's URL extends a copy.
    customers_url: reqwest::Url,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("customers_url", &self.customers_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Failure to set up the client (a bad token, say): fatal for the run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl Client {
    pub fn new(
        base_url: &reqwest::Url,
        timeout: Duration,
        connect_timeout: Duration,
        pool_size: usize,
    ) -> Result<Client, ClientError> {
        let http = http_client(timeout, connect_timeout, pool_size)?;
        let mut customers_url = base_url.clone();
        customers_url
            .path_segments_mut()
            .map_err(|()| ClientError::Build(format!("{base_url} cannot be a base URL")))?
            .pop_if_empty()
            .extend(["v1", "customers"]);
        Ok(Client {
            http,
            customers_url,
        })
    }

    /// The URL of one user. Built from the parsed base rather than parsed from a string: the
    /// URL parser is a measurable part of each request's CPU.
    pub fn user_url(&self, customer: Uuid, user: Uuid) -> reqwest::Url {
        let mut url = self.customers_url.clone();
        let (mut c, mut u) = (
            [0; uuid::fmt::Hyphenated::LENGTH],
            [0; uuid::fmt::Hyphenated::LENGTH],
        );
        url.path_segments_mut()
            .expect("checked in Client::new")
            .push(customer.hyphenated().encode_lower(&mut c))
            .push("users")
            .push(user.hyphenated().encode_lower(&mut u));
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
        let request = self.http.patch(self.user_url(customer, user)).body(body);
        self.send(request, auth, request_id, correlation_id, secrets, false)
            .await
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
        let request = self.http.get(self.user_url(customer, user));
        self.send(request, auth, request_id, correlation_id, &[], true)
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        auth: HeaderValue,
        request_id: Uuid,
        correlation_id: Uuid,
        secrets: &[&str],
        keep_user: bool,
    ) -> Attempt {
        let request = request
            .header(AUTHORIZATION, auth)
            .header(MS_REQUEST_ID, guid_header(request_id))
            .header(MS_CORRELATION_ID, guid_header(correlation_id));
        match request.send().await {
            Ok(response) => Attempt::Response(read_response(response, secrets, keep_user).await),
            Err(e) if e.is_timeout() => Attempt::Timeout,
            Err(e) => Attempt::Connection(transport_message(&e)),
        }
    }
}

async fn read_response(
    mut response: reqwest::Response,
    secrets: &[&str],
    keep_user: bool,
) -> Response {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
    let quota = crate::rate::quota_from_headers(response.headers(), SystemTime::now());
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("json"));
    if response.status().is_success() {
        // A PATCH answer may echo a password: it is read and dropped, only so the connection
        // can be reused. A GET answer is the user, kept to compare.
        let mut body = Vec::new();
        let mut drained = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            drained += chunk.len();
            if keep_user {
                body.extend_from_slice(&chunk);
            }
            if drained > MAX_DRAIN {
                break;
            }
        }
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
            status,
            retry_after,
            error_code: None,
            message,
            user,
            quota,
        };
    }
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    let (error_code, message) = describe_error(status, &body, is_json);
    Response {
        status,
        retry_after,
        error_code,
        message: sanitize(&message, secrets),
        user: None,
        quota,
    }
}

/// Partner Center's error code and a message from an error body of any shape.
pub fn describe_error(status: u16, body: &[u8], is_json: bool) -> (Option<i64>, String) {
    let reason = reqwest::StatusCode::from_u16(status)
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

/// One line, at most 200 characters, with every secret replaced.
pub fn sanitize(message: &str, secrets: &[&str]) -> String {
    let mut m: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        m = m.replace(s, "<redacted>");
    }
    let m = m.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::input::shorten(&m, MAX_MESSAGE_CHARS)
}

/// The innermost cause of a transport error, which is what a person can act on.
fn transport_message(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let inner = cause.to_string();
    let kind = if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    sanitize(&format!("{kind}: {inner}"), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

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
                &reqwest::Url::parse(base).unwrap(),
                Duration::from_secs(1),
                Duration::from_secs(1),
                1,
            )
            .unwrap();
            assert_eq!(
                client.user_url(customer, user).as_str(),
                format!("{expected}/{customer}/users/{user}")
            );
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
