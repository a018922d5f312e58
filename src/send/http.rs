//! Sends one request attempt to Partner Center and reads what came back (status, Retry-After, the error code and a short message), never keeping a response body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

/// The connection pool the API requests go through: HTTP/1.1 or HTTP/2 (ALPN) over rustls
/// with the webpki roots, through the environment's proxy when it names one.
///
/// hyper-util's client rather than reqwest: per request, reqwest parses the URL twice more
/// (redirect policy, response URL) and wraps it in layers bulkpatch does not use; this costs
/// about a third less CPU per request (measured in the benchmark's `vs-oha`).
pub type Transport =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<Connector>, Full<Bytes>>;

/// The pool of connections the workers share (also the benchmark's floor, so that it
/// measures the same settings).
pub fn transport(connect_timeout: Duration, pool_size: usize) -> Transport {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let connector = Connector {
        tcp,
        proxies: Arc::new(Matcher::from_system()),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(pool_size)
        .build(https)
}

/// Opens the TCP connections: directly, or through a CONNECT tunnel when `HTTPS_PROXY`,
/// `HTTP_PROXY` or `ALL_PROXY` name a proxy for the host (and `NO_PROXY` does not exempt it).
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    proxies: Arc<Matcher>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.tcp, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxies.intercept(&dst) else {
            let connecting = self.tcp.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        if proxy.uri().scheme() != Some(&http::uri::Scheme::HTTP) {
            let message = format!(
                "the proxy {} is not an http:// proxy, the only kind bulkpatch can tunnel through",
                proxy.uri().host().unwrap_or("?")
            );
            return Box::pin(async move { Err(message.into()) });
        }
        let mut tunnel = Tunnel::new(proxy.uri().clone(), self.tcp.clone());
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        // The tunnel's port defaults to 443: name it, for an http:// destination too.
        let default_port = if dst.scheme() == Some(&http::uri::Scheme::HTTP) {
            80
        } else {
            443
        };
        let target = dst.host().map(|host| {
            let port = dst.port_u16().unwrap_or(default_port);
            Uri::builder()
                .scheme("http")
                .authority(format!("{host}:{port}"))
                .path_and_query("/")
                .build()
        });
        Box::pin(async move {
            let target = target.ok_or("no host to connect to")??;
            tunnel.call(target).await.map_err(Into::into)
        })
    }
}

/// The HTTP client, built once per run and shared by all workers.
pub struct Client {
    http: Transport,
    /// `{base}/v1/customers`, normalised by the URL parser once: each request's URI extends it.
    customers_url: String,
    /// The limit on one attempt, from sending to the end of the answer's body.
    timeout: Duration,
    /// The API: its requests' paths extend `base`; it reads the error bodies.
    target: Arc<dyn crate::targets::Target>,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("customers_url", &self.customers_url)
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
    pub fn new(
        base_url: &reqwest::Url,
        timeout: Duration,
        connect_timeout: Duration,
        pool_size: usize,
        target: Arc<dyn crate::targets::Target>,
    ) -> Result<Client, ClientError> {
        let mut customers_url = base_url.clone();
        customers_url
            .path_segments_mut()
            .map_err(|()| ClientError::Build(format!("{base_url} cannot be a base URL")))?
            .pop_if_empty()
            .extend(["v1", "customers"]);
        let customers_url = String::from(customers_url);
        // A user's URI is this plus GUIDs: check once that it is one.
        Uri::try_from(format!("{customers_url}/{0}/users/{0}", Uuid::nil()))
            .map_err(|e| ClientError::Build(format!("{base_url}: {e}")))?;
        Ok(Client {
            http: transport(connect_timeout, pool_size),
            customers_url,
            timeout,
            target,
            base: base_url.as_str().trim_end_matches('/').to_string(),
        })
    }

    /// The URI of one user: the base's path (already encoded by the URL parser) and two GUIDs,
    /// which need no encoding.
    pub fn user_url(&self, customer: Uuid, user: Uuid) -> Uri {
        const GUID: usize = uuid::fmt::Hyphenated::LENGTH;
        let mut uri = String::with_capacity(self.customers_url.len() + 2 * GUID + 8);
        uri.push_str(&self.customers_url);
        uri.push('/');
        uri.push_str(customer.hyphenated().encode_lower(&mut [0; GUID]));
        uri.push_str("/users/");
        uri.push_str(user.hyphenated().encode_lower(&mut [0; GUID]));
        Uri::try_from(uri).expect("checked in Client::new")
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
        let mut request = self.request(Method::PATCH, customer, user, body, auth, ids);
        request.headers_mut().insert(CONTENT_TYPE, JSON);
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
        let request = self.request(Method::GET, customer, user, Vec::new(), auth, ids);
        self.send(request, &[], true).await
    }

    /// One attempt of a request the target described: its path under the base URL, its own
    /// headers and body, plus the headers every request carries. `read` keeps a user from the answer.
    pub async fn send_request(
        &self,
        auth: HeaderValue,
        described: crate::targets::Request,
        secrets: &[&str],
        read: bool,
    ) -> Attempt {
        let built = target_request(&self.base, described);
        let mut request = match built {
            Ok(request) => request,
            Err(e) => return Attempt::Connection(sanitize(&e, secrets)),
        };
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(USER_AGENT, AGENT);
        headers.insert(AUTHORIZATION, auth);
        self.send(request, secrets, read).await
    }

    /// A request to one user with the headers every request carries; `ids` are its
    /// `MS-RequestId` and `MS-CorrelationId`.
    fn request(
        &self,
        method: Method,
        customer: Uuid,
        user: Uuid,
        body: Vec<u8>,
        auth: HeaderValue,
        ids: (Uuid, Uuid),
    ) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = method;
        *request.uri_mut() = self.user_url(customer, user);
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(USER_AGENT, AGENT);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(MS_REQUEST_ID, guid_header(ids.0));
        headers.insert(MS_CORRELATION_ID, guid_header(ids.1));
        request
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        secrets: &[&str],
        keep_user: bool,
    ) -> Attempt {
        // The timeout covers the whole attempt: connecting, sending, and reading the answer.
        let attempt = async {
            match self.http.request(request).await {
                Ok(response) => {
                    let target = &*self.target;
                    Attempt::Response(read_response(response, secrets, keep_user, target).await)
                }
                Err(e) if is_timeout(&e) => Attempt::Timeout,
                Err(e) => Attempt::Connection(transport_message(&e)),
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or(Attempt::Timeout)
    }
}

async fn read_response(
    response: http::Response<Incoming>,
    secrets: &[&str],
    keep_user: bool,
    target: &dyn crate::targets::Target,
) -> Response {
    let (parts, mut incoming) = response.into_parts();
    let status = parts.status.as_u16();
    let retry_after = parts
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
    let quota = crate::send::pace::quota_from_headers(&parts.headers, SystemTime::now());
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("json"));
    // Reads the body a chunk at a time, up to `limit` bytes, keeping them only when asked; a
    // body cut short by the connection ends the reading, with what arrived.
    let mut read_body = async |limit: usize, keep: bool| {
        let (mut body, mut read) = (Vec::new(), 0);
        while read < limit {
            let Some(Ok(frame)) = incoming.frame().await else {
                break;
            };
            if let Ok(chunk) = frame.into_data() {
                if keep {
                    body.extend_from_slice(&chunk[..chunk.len().min(limit - read)]);
                }
                read += chunk.len();
            }
        }
        body
    };
    if parts.status.is_success() {
        // A PATCH answer may echo a password: it is read and dropped, only so the connection
        // can be reused. A GET answer is the user, kept to compare.
        let body = read_body(MAX_DRAIN, keep_user).await;
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
    let body = read_body(MAX_ERROR_BODY, true).await;
    let (error_code, message) = match parts.status.is_redirection() {
        true => (None, redirect_message(status, &parts.headers)),
        false => target.read_error(&crate::targets::Answer {
            status,
            body: &body,
            is_json,
        }),
    };
    Response {
        status,
        retry_after,
        error_code,
        message: sanitize(&message, secrets),
        user: None,
        quota,
    }
}

/// The HTTP request for a target's description, its path appended to `base`.
fn target_request(
    base: &str,
    described: crate::targets::Request,
) -> Result<Request<Full<Bytes>>, String> {
    use crate::targets::Method as M;
    let uri = Uri::try_from(format!("{base}{}", described.path_and_query))
        .map_err(|e| format!("cannot build the request's URL: {e}"))?;
    let mut request = Request::new(Full::new(Bytes::from(described.body)));
    *request.method_mut() = match described.method {
        M::Get => Method::GET,
        M::Patch => Method::PATCH,
        M::Post => Method::POST,
    };
    *request.uri_mut() = uri;
    for (name, value) in described.headers {
        let bad = |e: &dyn std::fmt::Display| format!("header {name}: {e}");
        let value = HeaderValue::try_from(value).map_err(|e| bad(&e))?;
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
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

/// Whether a transport error is a timeout (connecting took longer than the connect timeout).
fn is_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The innermost cause of a transport error, which is what a person can act on.
fn transport_message(e: &hyper_util::client::legacy::Error) -> String {
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
    use crate::core::ids::new_id;

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
                crate::targets::default_target(),
            )
            .unwrap();
            assert_eq!(
                client.user_url(customer, user).to_string(),
                format!("{expected}/{customer}/users/{user}")
            );
        }
    }

    #[test]
    fn target_requests_extend_the_base_path_like_user_urls() {
        let changes = crate::targets::Changes::default();
        let row = crate::targets::RowRef {
            customer: new_id(),
            user: new_id(),
            changes: &changes,
        };
        let ids = crate::targets::Ids {
            request: new_id(),
            correlation: new_id(),
        };
        let target = crate::targets::default_target();
        for base in ["http://127.0.0.1:8400", "https://proxy.example/pc/"] {
            let url = reqwest::Url::parse(base).unwrap();
            let (t, d) = (Duration::from_secs(1), target.clone());
            let client = Client::new(&url, t, t, 1, d).unwrap();
            let described = target.request(crate::targets::Op::Read, &[row], ids);
            let built = target_request(&client.base, described).unwrap();
            assert_eq!(built.uri(), &client.user_url(row.customer, row.user));
            assert_eq!(built.headers()[MS_REQUEST_ID], guid_header(ids.request));
            assert_eq!(
                built.headers()[MS_CORRELATION_ID],
                guid_header(ids.correlation)
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
        let client = Client::new(
            &base,
            Duration::from_secs(5),
            Duration::from_secs(5),
            1,
            crate::targets::default_target(),
        )
        .unwrap();
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
    fn messages_are_single_line_short_and_secret_free() {
        let m = sanitize("bad\npassword Secr3t!Pw here\r\n", &["Secr3t!Pw"]);
        assert_eq!(m, "bad password <redacted> here");
        assert!(sanitize(&"x".repeat(1000), &[]).chars().count() <= 201);
    }
}
