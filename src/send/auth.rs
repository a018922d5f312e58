//! Owns credentials: where the access token comes from (environment, file, or an App+User refresh-token grant), keeping it fresh with one refresh at a time, and saving rotated refresh tokens; every secret is a `secrecy` type.

use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::core::files::write_private_atomically;
use crate::settings::credentials::{Credentials, RefreshGrant, REFRESH_TOKEN_ENV};

/// Refreshes are made this long before expiry at most (a fifth of the lifetime for short-lived
/// tokens, so never before the token was issued).
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// An `expires_in` is taken within this range (`checked::TOKEN_LIFETIME`: 1 second to 24 hours);
/// a missing or non-numeric one as an hour.
const TOKEN_LIFETIME: crate::core::checked::Range = crate::core::checked::TOKEN_LIFETIME;
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The token endpoint's answer is read up to this size (a JWT is a few kilobytes).
const MAX_TOKEN_BODY: usize = 256 * 1024;
/// Attempts at the token endpoint when it fails transiently.
const TOKEN_ATTEMPTS: u32 = 3;

/// Why no access token could be had: stops the run.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token endpoint refused the refresh token ({error}: {description}); sign in again (with multi-factor authentication) to get a new refresh token, then save it to {where_}")]
    Refused {
        error: String,
        description: String,
        where_: String,
    },
    #[error("the token endpoint refused the client ({error}: {description}); check `client_id` and the client secret in the [auth] settings")]
    Client { error: String, description: String },
    #[error("cannot get an access token from {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the access token is not usable in an HTTP header (a stray newline or quote?)")]
    BadToken,
    #[error("the token endpoint answered {status} with a redirect to {host}; the refresh token and client secret are never sent on to another address: set `token_url` to the endpoint itself")]
    Redirected { status: u16, host: String },
    #[error("the token endpoint replaced the refresh token, but the new one could not be saved to {path} ({error}); the old one may no longer work, so the next run would fail: fix that file's permissions (or make it a writable file again), then sign in again and save the new refresh token there")]
    NotSaved { path: String, error: String },
}

/// A ready `Authorization` header and the generation of the token in it.
#[derive(Clone, Debug)]
pub struct AuthHeader {
    pub value: HeaderValue,
    /// Increases with each refresh; a 401 names the generation it was sent with.
    pub generation: u64,
}

struct Current {
    header: AuthHeader,
    refresh_at: Option<Instant>,
}

struct State {
    current: Option<Current>,
    refresh_token: Option<SecretString>,
    generation: u64,
}

/// Hands out the current access token to every worker, refreshing it (one refresh at a time) ahead of expiry or after a 401.
pub struct TokenProvider {
    grant: Option<RefreshGrant>,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    /// Why a rotated refresh token could not be saved, if it could not: the run ends with exit 2.
    not_saved: std::sync::Mutex<Option<AuthError>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("refreshes", &self.grant.is_some())
            .finish_non_exhaustive()
    }
}

fn bearer(token: &SecretString) -> Result<HeaderValue, AuthError> {
    crate::core::redact::register(token.expose_secret());
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| AuthError::BadToken)?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(serde::Deserialize)]
struct TokenAnswer<Lifetime = serde_json::Value> {
    access_token: Option<String>,
    expires_in: Option<Lifetime>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenAnswer {
    /// The answer; one whose `expires_in` no JSON number can hold (`1e999`) is read without
    /// it (the default lifetime applies) rather than taken for an unreadable answer.
    fn read(body: &[u8]) -> Option<TokenAnswer> {
        serde_json::from_slice(body).ok().or_else(|| {
            let a: TokenAnswer<serde::de::IgnoredAny> = serde_json::from_slice(body).ok()?;
            Some(TokenAnswer {
                access_token: a.access_token,
                expires_in: None,
                refresh_token: a.refresh_token,
                error: a.error,
                error_description: a.error_description,
            })
        })
    }
}

impl TokenProvider {
    /// A provider for `credentials`, calling the token endpoint through `http`: the run's one
    /// client (`crate::send::http_client::client`: its User-Agent, no redirects, its timeouts bound
    /// each call).
    pub fn new(
        credentials: Credentials,
        http: reqwest::Client,
    ) -> Result<TokenProvider, AuthError> {
        let (grant, state) = match credentials {
            Credentials::Fixed(token) => (
                None,
                State {
                    current: Some(Current {
                        header: AuthHeader {
                            value: bearer(&token)?,
                            generation: 1,
                        },
                        refresh_at: None,
                    }),
                    refresh_token: None,
                    generation: 1,
                },
            ),
            Credentials::Refresh(mut grant) => {
                crate::core::redact::register(grant.refresh_token.expose_secret());
                if let Some(secret) = &grant.client_secret {
                    crate::core::redact::register(secret.expose_secret());
                }
                let refresh_token = Some(std::mem::replace(
                    &mut grant.refresh_token,
                    SecretString::from(String::new()),
                ));
                (
                    Some(grant),
                    State {
                        current: None,
                        refresh_token,
                        generation: 0,
                    },
                )
            }
        };
        Ok(TokenProvider {
            grant,
            http,
            state: tokio::sync::Mutex::new(state),
            not_saved: std::sync::Mutex::new(None),
        })
    }

    /// Whether a 401 can be answered by a refresh.
    pub fn can_refresh(&self) -> bool {
        self.grant.is_some()
    }

    /// The header to send now; refreshes first when the token is missing or due.
    /// Concurrent callers wait for one refresh instead of each making their own.
    pub async fn header(&self) -> Result<AuthHeader, AuthError> {
        let mut state = self.state.lock().await;
        if let Some(current) = &state.current {
            if current.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(current.header.clone());
            }
        }
        self.refresh(&mut state).await
    }

    /// After a 401 sent with `generation`: refresh, unless another worker already did.
    /// Returns false when the credentials cannot be refreshed (a fixed token).
    pub async fn refresh_after_401(&self, generation: u64) -> Result<bool, AuthError> {
        if self.grant.is_none() {
            return Ok(false);
        }
        let mut state = self.state.lock().await;
        if state.generation == generation {
            tracing::info!("the API refused the access token (401): refreshing it");
            self.refresh(&mut state).await?;
        }
        Ok(true)
    }

    async fn refresh(&self, state: &mut State) -> Result<AuthHeader, AuthError> {
        let grant = self.grant.as_ref().ok_or(AuthError::BadToken)?;
        let refresh_token = state.refresh_token.as_ref().ok_or(AuthError::BadToken)?;
        let secrets: Vec<&str> = [
            Some(refresh_token.expose_secret()),
            grant.client_secret.as_ref().map(|s| s.expose_secret()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", grant.client_id.as_str()),
            ("refresh_token", refresh_token.expose_secret()),
            ("scope", grant.scope.as_str()),
        ];
        if let Some(secret) = &grant.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        let url = grant.token_url.to_string();
        let mut last_error = String::new();
        for attempt in 1..=TOKEN_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 2))).await;
            }
            let sent_at = Instant::now();
            let mut response = match self
                .http
                .post(grant.token_url.clone())
                .form(&form)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let failure = crate::send::http_client::failure(&e).message();
                    last_error = crate::send::http::sanitize(&failure, &secrets);
                    continue;
                }
            };
            let status = response.status();
            if status.is_redirection() {
                return Err(AuthError::Redirected {
                    status: status.as_u16(),
                    host: crate::send::http::location_host(response.headers()),
                });
            }
            let body =
                crate::send::http_client::read_body(&mut response, MAX_TOKEN_BODY, true).await;
            let answer = TokenAnswer::read(&body);
            if status.is_server_error()
                || crate::core::transient::is_transient(status.as_u16())
                || answer.is_none()
            {
                last_error = format!("HTTP {status}");
                continue;
            }
            let answer = answer.expect("checked above");
            if let (true, Some(access)) = (status.is_success(), answer.access_token.as_deref()) {
                return self.accept(state, sent_at, access, &answer);
            }
            return Err(refusal(grant, answer, status, &secrets));
        }
        Err(AuthError::Unreachable {
            url,
            message: last_error,
        })
    }

    /// Takes a token answer: the new access token (refreshed a little before it expires) and,
    /// when the endpoint rotated it, the new refresh token (saved back to its file).
    fn accept(
        &self,
        state: &mut State,
        sent_at: Instant,
        access: &str,
        answer: &TokenAnswer,
    ) -> Result<AuthHeader, AuthError> {
        let access = SecretString::from(access.to_owned());
        let expires_in = answer
            .expires_in
            .as_ref()
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()));
        let lifetime = expires_in
            .and_then(|s| crate::core::checked::duration_from_secs_f64(s, TOKEN_LIFETIME))
            .unwrap_or(DEFAULT_LIFETIME);
        let ahead = REFRESH_AHEAD.min(lifetime / 5);
        state.generation += 1;
        let header = AuthHeader {
            value: bearer(&access)?,
            generation: state.generation,
        };
        state.current = Some(Current {
            header: header.clone(),
            refresh_at: Some(crate::core::checked::after(
                sent_at,
                lifetime.saturating_sub(ahead),
            )),
        });
        if let Some(new) = answer.refresh_token.clone().filter(|n| !n.is_empty()) {
            crate::core::redact::register(&new);
            let new = SecretString::from(new);
            let rotated = state
                .refresh_token
                .as_ref()
                .is_none_or(|old| old.expose_secret() != new.expose_secret());
            if rotated {
                self.save_refresh_token(&new);
                state.refresh_token = Some(new);
            }
        }
        tracing::debug!(
            expires_in = lifetime.as_secs(),
            generation = state.generation,
            "access token refreshed"
        );
        Ok(header)
    }

    /// Writes a rotated refresh token back to its file (atomically, mode 0600) so the next run can use it.
    fn save_refresh_token(&self, token: &SecretString) {
        let Some(path) = self
            .grant
            .as_ref()
            .and_then(|g| g.refresh_token_file.as_ref())
        else {
            return;
        };
        let mut contents = token.expose_secret().as_bytes().to_vec();
        contents.push(b'\n');
        match write_private_atomically(path, &contents) {
            Ok(()) => {
                tracing::debug!(file = %path.display(), "saved the new refresh token");
                // The file holds the newest token again: the next run will work.
                if let Ok(mut slot) = self.not_saved.lock() {
                    *slot = None;
                }
            }
            Err(e) => {
                let problem = AuthError::NotSaved {
                    path: path.display().to_string(),
                    error: e.to_string(),
                };
                // The run goes on (its access token works); it ends with exit 2 and this advice.
                tracing::error!("{problem}");
                if let Ok(mut slot) = self.not_saved.lock() {
                    slot.get_or_insert(problem);
                }
            }
        }
    }

    /// Why a rotated refresh token could not be saved, if it could not (the run must end with exit 2).
    pub fn not_saved(&self) -> Option<String> {
        let slot = self.not_saved.lock().ok()?;
        slot.as_ref().map(ToString::to_string)
    }
}

/// What a token endpoint's refusal means: the client is wrong, or the refresh token is.
fn refusal(
    grant: &RefreshGrant,
    answer: TokenAnswer,
    status: reqwest::StatusCode,
    secrets: &[&str],
) -> AuthError {
    let error = answer.error.unwrap_or_else(|| format!("HTTP {status}"));
    let error = crate::send::http::sanitize(&error, secrets);
    let description =
        crate::send::http::sanitize(answer.error_description.as_deref().unwrap_or(""), secrets);
    let description = description
        .split(" Trace ID:")
        .next()
        .unwrap_or("")
        .to_string();
    match error.as_str() {
        "invalid_client" | "unauthorized_client" => AuthError::Client { error, description },
        _ => AuthError::Refused {
            error,
            description,
            where_: match &grant.refresh_token_file {
                Some(p) => p.display().to_string(),
                None => REFRESH_TOKEN_ENV.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::partner_center::SCOPE as DEFAULT_SCOPE;

    #[test]
    fn atomic_write_replaces_the_file_with_a_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").unwrap();
        write_private_atomically(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let grant = RefreshGrant {
            token_url: reqwest::Url::parse("https://login.example/t/oauth2/v2.0/token").unwrap(),
            client_id: "app".into(),
            client_secret: Some(SecretString::from("client-SECRET".to_string())),
            refresh_token: SecretString::from("refresh-SECRET".to_string()),
            refresh_token_file: None,
            scope: DEFAULT_SCOPE.into(),
        };
        let text = format!("{:?}", Credentials::Refresh(grant));
        assert!(!text.contains("SECRET"), "{text}");
        let text = format!(
            "{:?}",
            Credentials::Fixed(SecretString::from("tok-SECRET".to_string()))
        );
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[tokio::test]
    async fn a_fixed_token_is_handed_out_as_is_and_never_refreshed() {
        let p = TokenProvider::new(
            Credentials::Fixed(SecretString::from("abc".to_string())),
            reqwest::Client::new(),
        )
        .unwrap();
        let h = p.header().await.unwrap();
        assert_eq!(h.value.to_str().unwrap(), "Bearer abc");
        assert!(h.value.is_sensitive());
        assert!(!p.can_refresh());
        assert!(!p.refresh_after_401(h.generation).await.unwrap());
    }
}
