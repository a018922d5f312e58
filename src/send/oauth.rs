//! The OAuth 2.0 grants, through the `oauth2` crate and the run's one `reqwest` client: the
//! token answer (read leniently: a hostile `expires_in` is taken as missing, not as an
//! unreadable answer), the error answer, and the transport that caps the body, never follows a
//! redirect and tells transient failures apart. `auth` (the refresh grant) and `login` (the
//! authorization-code and device grants) use it. Uses `core` and `send::http_client`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, HttpRequest, HttpResponse, RefreshToken};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The token endpoint's answer is read up to this size (a JWT is a few kilobytes).
const MAX_TOKEN_BODY: usize = 256 * 1024;

/// A token endpoint's successful answer.
#[derive(Deserialize, Serialize)]
pub struct Answer {
    access_token: AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    /// Kept raw: a number no JSON reader can hold (`1e999`) must not spoil the answer.
    #[serde(default)]
    expires_in: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default)]
    id_token: Option<IdToken>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

/// An id token (a JWT): Debug never shows it.
#[derive(Deserialize, Serialize)]
#[serde(transparent)]
pub struct IdToken(String);

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdToken(..)")
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

impl oauth2::TokenResponse for Answer {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.lifetime_secs().and_then(|s| {
            crate::core::checked::duration_from_secs_f64(s, crate::core::checked::TOKEN_LIFETIME)
        })
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<oauth2::Scope>> {
        None
    }
}

impl Answer {
    /// `expires_in` as a number of seconds: a JSON number, or a string holding one.
    fn lifetime_secs(&self) -> Option<f64> {
        let raw = self.expires_in.as_ref()?.get().trim();
        let text = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        text.trim().parse::<f64>().ok().filter(|s| s.is_finite())
    }

    /// The access token, registered with the redaction point.
    pub fn access(&self) -> SecretString {
        secret(self.access_token.secret())
    }

    /// The refresh token, when the answer carries a non-empty one, registered.
    pub fn refresh(&self) -> Option<SecretString> {
        let token = self.refresh_token.as_ref()?.secret();
        (!token.is_empty()).then(|| secret(token))
    }

    /// The id token's text, registered (it is a token: never shown).
    pub fn id_token(&self) -> Option<&str> {
        let token = self.id_token.as_ref()?.0.as_str();
        crate::core::redact::register(token);
        Some(token)
    }
}

/// A secret from the wire, registered with the redaction point.
pub fn secret(text: &str) -> SecretString {
    crate::core::redact::register(text);
    SecretString::from(text.to_owned())
}

/// A token endpoint's error answer (every field optional: any JSON object reads).
#[derive(Deserialize, Serialize)]
pub struct Refusal {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Refusal({:?})", self.error)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.error.as_deref().unwrap_or("an error"))
    }
}

impl oauth2::ErrorResponse for Refusal {}

/// The `oauth2` client for these answers, with the token URL (and what else the caller sets).
pub type TokenClient<HasAuthUrl = oauth2::EndpointNotSet, HasDeviceUrl = oauth2::EndpointNotSet> =
    oauth2::Client<
        Refusal,
        Answer,
        oauth2::StandardTokenIntrospectionResponse<oauth2::EmptyExtraTokenFields, BasicTokenType>,
        oauth2::StandardRevocableToken,
        Refusal,
        HasAuthUrl,
        HasDeviceUrl,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >;

/// A client for `client_id` at `token_url`.
pub fn client(client_id: &str, token_url: &reqwest::Url) -> TokenClient {
    oauth2::Client::new(oauth2::ClientId::new(client_id.to_string()))
        .set_token_uri(oauth2::TokenUrl::from_url(token_url.clone()))
}

/// Why a call to an OAuth endpoint got no answer to read.
#[derive(Debug, thiserror::Error)]
pub enum Transport {
    /// No answer (connection, timeout): worded for a person, not yet redacted.
    #[error("{0}")]
    Failed(String),
    /// A 5xx or another transient status (429, 408).
    #[error("HTTP {0}")]
    Transient(u16),
    /// A redirect, never followed: the form carries secrets.
    #[error("HTTP {status} redirect to {host}")]
    Redirected { status: u16, host: String },
}

/// The future [`transport`] returns.
pub type Sent = Pin<Box<dyn Future<Output = Result<HttpResponse, Transport>> + Send>>;

/// The transport for `oauth2`: sends through `http` (the run's one client), caps the body.
pub fn transport(http: &reqwest::Client) -> impl Fn(HttpRequest) -> Sent + Send + Sync {
    let http = http.clone();
    move |request| {
        let http = http.clone();
        Box::pin(async move { send(&http, request).await })
    }
}

async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, Transport> {
    let request = reqwest::Request::try_from(request)
        .map_err(|e| Transport::Failed(format!("cannot make the request: {e}")))?;
    let mut response = http
        .execute(request)
        .await
        .map_err(|e| Transport::Failed(crate::send::http_client::failure(&e).message()))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(Transport::Redirected {
            status: status.as_u16(),
            host: crate::send::http::location_host(response.headers()),
        });
    }
    if status.is_server_error() || crate::core::transient::is_transient(status.as_u16()) {
        return Err(Transport::Transient(status.as_u16()));
    }
    let mut answer = http::Response::builder().status(status);
    if let Some(kind) = response.headers().get(http::header::CONTENT_TYPE) {
        answer = answer.header(http::header::CONTENT_TYPE, kind.clone());
    }
    let body = crate::send::http_client::read_body(&mut response, MAX_TOKEN_BODY, true).await;
    answer
        .body(body)
        .map_err(|e| Transport::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::TokenResponse;

    #[test]
    fn a_hostile_expires_in_is_read_as_missing_and_the_answer_kept() {
        for (raw, want) in [
            ("3600", Some(3600)),
            ("\"120\"", Some(120)),
            ("1e999", None),
            ("\"NaN\"", None),
            ("18446744073709551615", Some(86400)),
        ] {
            let body = format!(r#"{{"access_token":"a","expires_in":{raw},"refresh_token":"r"}}"#);
            let answer: Answer = serde_json::from_str(&body).unwrap();
            assert_eq!(answer.expires_in().map(|d| d.as_secs()), want, "{raw}");
            assert!(answer.refresh().is_some());
        }
    }
}
