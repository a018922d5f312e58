//! Sends one attempt of a request the target described (its path under the base URL, its
//! headers and body) and reads what came back: status, Retry-After, rate-limit headers, and
//! the target's reading of an error body (code and a short message). A success body is kept
//! only when asked (a user read back); a PATCH's, which echoes a password, never.

use std::time::Duration;

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Uri};

use crate::send::attempt::{Attempt, Response};
use crate::targets::{Answer, Target};

/// Error bodies are read up to this size; anything longer is cut (a proxy's HTML page, say).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// Success bodies are drained (never kept) up to this size so the connection can be reused.
const MAX_DRAIN: usize = 1024 * 1024;
/// Longest message kept from an error body.
const MAX_MESSAGE_CHARS: usize = 200;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("bulkpatch/", env!("CARGO_PKG_VERSION")));

/// The API client, built once per run and shared by all workers (a clone shares its
/// connections).
#[derive(Clone)]
pub struct Client {
    /// The run's one HTTP client (`crate::send::http_client::client`), shared with the token provider.
    http: reqwest::Client,
    /// The base URL without a trailing slash: each request's path extends it.
    base: String,
    /// The API: it describes the requests and reads the error bodies.
    target: Arc<dyn Target>,
    /// The limit on one attempt, from sending to the end of the answer's body.
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("target", &self.target.name())
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
    /// The API client for `base_url` over `http` (see `crate::send::http_client::client`);
    /// `timeout` bounds each attempt.
    pub fn new(
        http: reqwest::Client,
        base_url: &reqwest::Url,
        timeout: Duration,
        target: Arc<dyn Target>,
    ) -> Result<Client, ClientError> {
        if base_url.cannot_be_a_base() {
            return Err(ClientError::Build(format!(
                "{base_url} cannot be a base URL"
            )));
        }
        Ok(Client {
            http,
            base: base_url.as_str().trim_end_matches('/').to_string(),
            target,
            timeout,
        })
    }

    /// The run's one HTTP client and the limit on one attempt, for a request without
    /// credentials to another host (a tenant's discovery document).
    pub fn transport(&self) -> (&reqwest::Client, Duration) {
        (&self.http, self.timeout)
    }

    /// One attempt of a request the target described, with the headers every request carries.
    /// `auth` is the `Authorization` value; `secrets` never reach a message (a row's password);
    /// `read` keeps the user a successful answer holds.
    pub async fn send_request(
        &self,
        auth: HeaderValue,
        described: crate::targets::Request,
        secrets: &[&str],
        read: bool,
    ) -> Attempt {
        let keep = if read { Keep::User } else { Keep::Nothing };
        self.send_keeping(auth, described, secrets, keep).await.0
    }

    /// One attempt of a batch request: as [`Client::send_request`], with the body of a
    /// successful answer (up to 1 MB), which holds each row's answer. It stays in memory: the
    /// caller reads it and drops it.
    pub async fn send_batch(
        &self,
        auth: HeaderValue,
        described: crate::targets::Request,
        secrets: &[&str],
    ) -> (Attempt, Vec<u8>) {
        self.send_keeping(auth, described, secrets, Keep::Body)
            .await
    }

    async fn send_keeping(
        &self,
        auth: HeaderValue,
        described: crate::targets::Request,
        secrets: &[&str],
        keep: Keep,
    ) -> (Attempt, Vec<u8>) {
        let mut request = match target_request(&self.base, described) {
            Ok(request) => request,
            Err(e) => return (Attempt::Connection(sanitize(&e, secrets)), Vec::new()),
        };
        let mut auth = auth;
        auth.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(USER_AGENT, AGENT);
        headers.insert(AUTHORIZATION, auth);
        self.send(request, secrets, keep).await
    }

    async fn send(
        &self,
        request: reqwest::Request,
        secrets: &[&str],
        keep: Keep,
    ) -> (Attempt, Vec<u8>) {
        // The timeout covers the whole attempt: connecting, sending, and reading the answer
        // (reqwest's own timeout is the same; this one also bounds reading the body here).
        let attempt = async {
            match self.http.execute(request).await {
                Ok(response) => {
                    let target = &*self.target;
                    let (r, body) = read_response(response, secrets, keep, target).await;
                    (Attempt::Response(r), body)
                }
                Err(e) => match crate::send::http_client::failure(&e) {
                    crate::send::http_client::Failure::Timeout => (Attempt::Timeout, Vec::new()),
                    crate::send::http_client::Failure::Connect(m)
                    | crate::send::http_client::Failure::Dropped(m) => {
                        (Attempt::Connection(sanitize(&m, secrets)), Vec::new())
                    }
                },
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or((Attempt::Timeout, Vec::new()))
    }
}

/// What of a successful answer's body is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Nothing: a PATCH's answer may echo a password.
    Nothing,
    /// The user object it holds (a read).
    User,
    /// The whole body (a batch answer), for the caller to split.
    Body,
}

async fn read_response(
    mut response: reqwest::Response,
    secrets: &[&str],
    keep: Keep,
    target: &dyn Target,
) -> (Response, Vec<u8>) {
    let keep_user = keep == Keep::User;
    let status = response.status();
    let headers = response.headers();
    let answered = answer_from_headers(status.as_u16(), headers);
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("json"));
    if status.is_success() {
        // A PATCH answer may echo a password: it is read and dropped, only so the connection
        // can be reused. A GET answer is the user, kept to compare.
        let body =
            crate::send::http_client::read_body(&mut response, MAX_DRAIN, keep != Keep::Nothing)
                .await;
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
        let response = Response {
            message,
            user,
            ..answered
        };
        let body = if keep == Keep::Body { body } else { Vec::new() };
        return (response, body);
    }
    let redirect = status
        .is_redirection()
        .then(|| redirect_message(status.as_u16(), response.headers()));
    let body =
        crate::send::http_client::read_body(&mut response, MAX_ERROR_BODY, redirect.is_none())
            .await;
    let (error_code, message) = match redirect {
        Some(message) => (None, message),
        None => target.read_error(&Answer {
            status: status.as_u16(),
            body: &body,
            is_json,
        }),
    };
    let response = Response {
        error_code,
        message: sanitize(&message, secrets),
        ..answered
    };
    (response, Vec::new())
}

/// An answer with `status` and what its `headers` say of the server's limits, each read
/// through its checked conversion: the wait asked for (`Retry-After`), the quota left, and
/// which limit a 429 hit. No error code, message or user yet.
pub fn answer_from_headers(status: u16, headers: &http::HeaderMap) -> Response {
    let now = std::time::SystemTime::now();
    Response {
        status,
        retry_after: headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::send::retry::parse_retry_after(v, now)),
        error_code: None,
        message: String::new(),
        user: None,
        quota: crate::send::pace::quota_from_headers(headers, now),
        throttle_scope: crate::send::lanes::Scope::from_headers(headers),
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

/// The HTTP request for a target's description, its path appended to `base`.
fn target_request(
    base: &str,
    described: crate::targets::Request,
) -> Result<reqwest::Request, String> {
    use crate::targets::Method as M;
    let url = reqwest::Url::parse(&format!("{base}{}", described.path_and_query))
        .map_err(|e| format!("cannot build the request's URL: {e}"))?;
    let method = match described.method {
        M::Get => Method::GET,
        M::Patch => Method::PATCH,
        M::Post => Method::POST,
    };
    let mut request = reqwest::Request::new(method, url);
    for (name, value) in described.headers {
        let bad = |e: &dyn std::fmt::Display| format!("header {name}: {e}");
        let value = HeaderValue::try_from(value).map_err(|e| bad(&e))?;
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        request.headers_mut().insert(name, value);
    }
    if !described.body.is_empty() {
        *request.body_mut() = Some(reqwest::Body::from(described.body));
    }
    Ok(request)
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
    use crate::targets::{default_target, Changes, Ids, Op, RowRef};

    fn client(base: &str) -> Client {
        let http = crate::send::http_client::client(&crate::send::http_client::HttpSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            pool_size: 1,
            ca: None,
        })
        .unwrap();
        let base = reqwest::Url::parse(base).unwrap();
        Client::new(http, &base, Duration::from_secs(5), default_target()).unwrap()
    }

    fn described(op: Op) -> crate::targets::Request {
        let changes = Changes::default();
        let row = RowRef {
            customer: new_id(),
            user: new_id(),
            changes: &changes,
        };
        let ids = Ids {
            request: new_id(),
            correlation: new_id(),
        };
        default_target().request(op, &[row], ids)
    }

    #[test]
    fn target_requests_extend_the_base_path() {
        for base in [
            "http://127.0.0.1:8400",
            "http://127.0.0.1:8400/",
            "https://proxy.example/pc/",
            "https://proxy.example/pc",
        ] {
            let c = client(base);
            let d = described(Op::Read);
            let path = d.path_and_query.clone();
            let built = target_request(&c.base, d).unwrap();
            let expected = format!("{}{path}", base.trim_end_matches('/'));
            assert_eq!(built.url().as_str(), expected);
            assert!(path.starts_with("/v1/customers/"), "{path}");
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
        let c = client(&format!("http://127.0.0.1:{port}"));
        let attempt = c
            .send_request(
                HeaderValue::from_static("Bearer t"),
                described(Op::Write),
                &[],
                false,
            )
            .await;
        match attempt {
            Attempt::Connection(m) => assert!(m.starts_with("cannot connect: "), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_single_line_short_and_secret_free() {
        let m = sanitize("bad\npassword Secr3t!Pw here\r\n", &["Secr3t!Pw"]);
        assert_eq!(m, "bad password <redacted> here");
        assert!(sanitize(&"x".repeat(1000), &[]).chars().count() <= 201);
    }
}
