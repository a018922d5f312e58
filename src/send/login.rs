//! Signing in (`bulkpatch login`) through the `oauth2` crate and the one `reqwest` client: the
//! authorization-code grant with PKCE (S256) and a loopback redirect `http://localhost:PORT`
//! served on 127.0.0.1 only, or the device authorization grant (RFC 8628); and reading who
//! signed in from the id token's claims (decoded, not validated: for display only, so escaped
//! and shortened). Nothing here prints: the caller gets [`Prompt`]s to show. Uses `core`,
//! `settings::signin` and `send::oauth`.

use std::time::{Duration, SystemTime};

use oauth2::{
    AuthorizationCode, CsrfToken, DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::send::oauth::{self, Answer, Transport};
use crate::settings::signin::{endpoint_url, tame, SignIn};

/// The longest a browser sign-in is waited for.
const BROWSER_WAIT: Duration = Duration::from_secs(600);
/// A device code is polled for at most this long, whatever its `expires_in` says.
const DEVICE_WAIT: Duration = Duration::from_secs(3600);
/// The loopback listener reads at most this much of a request's head.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// An id token bigger than this is not decoded.
const MAX_ID_TOKEN: usize = 64 * 1024;

/// Where and as whom to sign in.
#[derive(Clone, Debug)]
pub struct Authority {
    /// `https://login.microsoftonline.com` (sovereign clouds differ).
    pub authority: String,
    /// A tenant id, a domain, or `organizations`.
    pub tenant: String,
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
}

/// How to sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Authorization code with PKCE; open the system browser (else print the URL).
    Browser { open: bool },
    /// The device authorization grant.
    DeviceCode,
}

/// What the person signing in must be told.
#[derive(Debug)]
pub enum Prompt {
    /// Open this URL to sign in (it was not, or could not be, opened for them).
    OpenUrl(String),
    /// The browser was asked to open this URL.
    BrowserOpened(String),
    /// Go to `uri` and enter `code`.
    DeviceCode { uri: String, code: String },
}

/// Why signing in failed: stops `login` (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the sign-in was refused ({error}{}){}", if .description.is_empty() { String::new() } else { format!(": {}", .description) }, advice(.error))]
    Refused { error: String, description: String },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url} answered with a redirect to {host}; the sign-in is never sent on to another address: check --authority")]
    Redirected { url: String, host: String },
    #[error("{0}")]
    Local(String),
    #[error("no sign-in within {} minutes: run `bulkpatch login` again", BROWSER_WAIT.as_secs() / 60)]
    TimedOut,
}

/// What to do about a refusal, by its error code.
fn advice(error: &str) -> &'static str {
    match error {
        "authorization_declined" | "access_denied" => "; the sign-in was declined: run `bulkpatch login` again and approve it",
        "expired_token" | "bad_verification_code" => "; the code expired before it was used: run `bulkpatch login --device-code` again and enter the new code sooner",
        "invalid_grant" => "; run `bulkpatch login` again",
        "unauthorized_client" | "invalid_client" => "; check --client-id (the app must be a public client that allows this flow)",
        _ => "",
    }
}

impl Authority {
    fn url(&self, endpoint: &str) -> Result<reqwest::Url, LoginError> {
        let text = endpoint_url(&self.authority, &self.tenant, endpoint);
        reqwest::Url::parse(&text)
            .map_err(|e| LoginError::Local(format!("--authority and --tenant make no URL ({e})")))
    }

    fn scopes(&self) -> impl Iterator<Item = Scope> + Clone + '_ {
        self.scope
            .split_whitespace()
            .map(|s| Scope::new(s.to_owned()))
    }
}

/// Signs in and returns the new sign-in (not yet stored).
pub async fn sign_in(
    authority: &Authority,
    flow: Flow,
    http: &reqwest::Client,
    prompt: &(dyn Fn(Prompt) + Sync),
) -> Result<SignIn, LoginError> {
    let answer = match flow {
        Flow::Browser { open } => browser(authority, open, http, prompt).await?,
        Flow::DeviceCode => device(authority, http, prompt).await?,
    };
    Ok(record(authority, &answer))
}

/// The authorization-code grant with PKCE and a loopback redirect.
async fn browser(
    authority: &Authority,
    open: bool,
    http: &reqwest::Client,
    prompt: &(dyn Fn(Prompt) + Sync),
) -> Result<Answer, LoginError> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| {
            LoginError::Local(format!("cannot listen on 127.0.0.1 for the browser: {e}"))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| LoginError::Local(e.to_string()))?
        .port();
    let redirect = RedirectUrl::new(format!("http://localhost:{port}"))
        .map_err(|e| LoginError::Local(e.to_string()))?;
    let token_url = authority.url("token")?;
    let client = oauth::client(&authority.client_id, &token_url)
        .set_auth_uri(oauth2::AuthUrl::from_url(authority.url("authorize")?))
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    crate::core::redact::register(verifier.secret());
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(authority.scopes())
        .add_extra_param("response_mode", "query")
        .set_pkce_challenge(challenge)
        .url();
    let url = url.to_string();
    if open && webbrowser::open(&url).is_ok() {
        prompt(Prompt::BrowserOpened(url));
    } else {
        prompt(Prompt::OpenUrl(url));
    }
    let code = tokio::time::timeout(BROWSER_WAIT, redirected(&listener, state.secret()))
        .await
        .map_err(|_| LoginError::TimedOut)??;
    let http = oauth::transport(http);
    let answer = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .add_extra_param("scope", authority.scope.clone())
        .request_async(&http)
        .await;
    answer.map_err(|e| failed(e, &token_url))
}

/// Waits on the loopback listener for the browser's return with our `state`; its code.
async fn redirected(listener: &tokio::net::TcpListener, state: &str) -> Result<String, LoginError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| {
            LoginError::Local(format!("the loopback listener for the browser failed: {e}"))
        })?;
        let Ok(Ok(head)) =
            tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream)).await
        else {
            continue;
        };
        let query = request_query(&head);
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("state") != Some(state) {
            // Another request (a favicon, a stray tab): not the sign-in.
            let _ = stream.write_all(PAGE_NOT_FOUND).await;
            continue;
        }
        if let Some(error) = get("error") {
            let _ = stream.write_all(PAGE_FAILED).await;
            return Err(LoginError::Refused {
                error: tame(error),
                description: tame(get("error_description").unwrap_or("")),
            });
        }
        let Some(code) = get("code").filter(|c| !c.is_empty()) else {
            let _ = stream.write_all(PAGE_FAILED).await;
            return Err(LoginError::Local(
                "the browser came back without a code".into(),
            ));
        };
        let _ = stream.write_all(PAGE_DONE).await;
        let _ = stream.shutdown().await;
        crate::core::redact::register(code);
        return Ok(code.to_string());
    }
}

const PAGE_DONE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n<!doctype html><title>bulkpatch</title><p>Signed in. You can close this window and return to bulkpatch.</p>";
const PAGE_FAILED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n<!doctype html><title>bulkpatch</title><p>The sign-in did not succeed. bulkpatch says why.</p>";
const PAGE_NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The request's head (up to the blank line, at most [`MAX_REQUEST_HEAD`] bytes).
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < MAX_REQUEST_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

/// The query pairs of a `GET /path?query HTTP/1.1` request line.
fn request_query(head: &[u8]) -> Vec<(String, String)> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
        return Vec::new();
    };
    let Ok(url) = reqwest::Url::parse(&format!("http://localhost{target}")) else {
        return Vec::new();
    };
    url.query_pairs().into_owned().collect()
}

/// The device authorization grant: show the code, poll until the person answers.
async fn device(
    authority: &Authority,
    http: &reqwest::Client,
    prompt: &(dyn Fn(Prompt) + Sync),
) -> Result<Answer, LoginError> {
    let token_url = authority.url("token")?;
    let device_url = authority.url("devicecode")?;
    let client = oauth::client(&authority.client_id, &token_url)
        .set_device_authorization_url(DeviceAuthorizationUrl::from_url(device_url.clone()));
    let transport = oauth::transport(http);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(authority.scopes())
        .request_async(&transport)
        .await
        .map_err(|e| failed(e, &device_url))?;
    crate::core::redact::register(details.device_code().secret());
    prompt(Prompt::DeviceCode {
        uri: tame(details.verification_uri().as_str()),
        code: tame(details.user_code().secret()),
    });
    let wait = details.expires_in().min(DEVICE_WAIT);
    let sleep = |interval: Duration| {
        tokio::time::sleep(crate::core::checked::clamp(
            interval,
            crate::core::checked::DEVICE_POLL,
        ))
    };
    client
        .exchange_device_access_token(&details)
        .request_async(&transport, sleep, Some(wait))
        .await
        .map_err(|e| failed(e, &token_url))
}

/// A failed grant as a [`LoginError`], every text from the server escaped and shortened.
fn failed<T>(e: RequestTokenError<Transport, T>, url: &reqwest::Url) -> LoginError
where
    T: oauth2::ErrorResponse + 'static + Refused,
{
    let url = url.to_string();
    match e {
        RequestTokenError::ServerResponse(r) => {
            let (error, description) = r.parts();
            LoginError::Refused {
                error: tame(&error),
                description: tame(description.split(" Trace ID:").next().unwrap_or("")),
            }
        }
        RequestTokenError::Request(Transport::Redirected { host, .. }) => {
            LoginError::Redirected { url, host }
        }
        RequestTokenError::Request(t) => LoginError::Unreachable {
            url,
            message: tame(&t.to_string()),
        },
        RequestTokenError::Parse(..) => LoginError::Unreachable {
            url,
            message: "the answer is not an OAuth answer".into(),
        },
        RequestTokenError::Other(m) => LoginError::Unreachable {
            url,
            message: tame(&m),
        },
    }
}

/// The error code and description of an error answer.
trait Refused {
    fn parts(&self) -> (String, String);
}

impl Refused for oauth::Refusal {
    fn parts(&self) -> (String, String) {
        (
            self.error.clone().unwrap_or_else(|| "no error code".into()),
            self.error_description.clone().unwrap_or_default(),
        )
    }
}

impl Refused for oauth2::DeviceCodeErrorResponse {
    fn parts(&self) -> (String, String) {
        (
            self.error().as_ref().to_string(),
            self.error_description().cloned().unwrap_or_default(),
        )
    }
}

/// The sign-in a token answer makes: its tokens, and who signed in from its id token.
fn record(authority: &Authority, answer: &Answer) -> SignIn {
    let now = SystemTime::now();
    let lifetime = answer.expires_in().unwrap_or(Duration::from_secs(3600));
    let claims = answer.id_token().map(claims).unwrap_or_default();
    let claim = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(tame);
    let refresh_token = answer.refresh().unwrap_or_else(|| {
        tracing::warn!("the sign-in gave no refresh token (is `offline_access` among the scopes?): runs will need `bulkpatch login` again within the hour");
        oauth::secret("")
    });
    SignIn {
        authority: authority.authority.trim_end_matches('/').to_string(),
        tenant: authority.tenant.clone(),
        client_id: authority.client_id.clone(),
        scope: authority.scope.clone(),
        account: claim("preferred_username").or_else(|| claim("upn")),
        name: claim("name"),
        tenant_id: claim("tid"),
        refresh_token,
        access_token: Some((answer.access(), now.checked_add(lifetime).unwrap_or(now))),
        signed_in_at: now,
        refresh_used_at: now,
    }
}

/// The claims of a JWT's payload, unvalidated (for display); empty when it is not a JWT.
pub fn claims(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine;
    let decode = |part: &str| {
        let part = part.trim_end_matches('=');
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()
    };
    (jwt.len() <= MAX_ID_TOKEN)
        .then(|| jwt.split('.').nth(1))
        .flatten()
        .and_then(decode)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_of_a_hostile_id_token_are_read_without_panicking() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.sig",
            enc("{}"),
            enc(r#"{"preferred_username":"a\u001b[31m@b","tid":"t"}"#)
        );
        let c = claims(&jwt);
        assert_eq!(
            tame(c["preferred_username"].as_str().unwrap()),
            "a\\u{1b}[31m@b"
        );
        for bad in ["", "a.b.c", "..", "x.!!!.y", &"a.".repeat(40_000)] {
            assert!(claims(bad).is_empty(), "{bad:.20}");
        }
    }

    #[test]
    fn only_a_get_request_line_gives_a_query() {
        let q = request_query(b"GET /?code=c&state=s HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            q,
            vec![("code".into(), "c".into()), ("state".into(), "s".into())]
        );
        assert!(request_query(b"POST /?code=c HTTP/1.1\r\n\r\n").is_empty());
        assert!(request_query(b"\xff\xfe").is_empty());
    }

    #[test]
    fn advice_names_what_to_do_for_each_stopping_device_error() {
        for e in [
            "authorization_declined",
            "access_denied",
            "expired_token",
            "bad_verification_code",
        ] {
            assert!(!advice(e).is_empty(), "{e}");
        }
    }
}
