//! Owns credentials: where the access token comes from (environment, file, the stored sign-in
//! or an App+User refresh-token grant through `oauth2`), keeping it fresh with one refresh at a
//! time, and saving rotated refresh tokens (to their file or the stored sign-in); every secret
//! is a `secrecy` type.

use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use oauth2::{RequestTokenError, TokenResponse};

use crate::core::files::write_private_atomically;
use crate::send::oauth;
use crate::send::tenant_tokens::{Miss, TenantTokens};
use crate::settings::credentials::{Credentials, RefreshGrant, REFRESH_TOKEN_ENV};
use crate::settings::signin::Stored;

/// Refreshes are made this long before expiry at most (a fifth of the lifetime for short-lived
/// tokens, so never before the token was issued).
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// An `expires_in` is taken within `checked::TOKEN_LIFETIME` (1 second to 24 hours); a missing
/// or non-numeric one as an hour.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
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
    #[error("the token endpoint refused the refresh token of the stored sign-in ({error}: {description}); run `bulkpatch login` to sign in again (with multi-factor authentication)")]
    SignInRefused { error: String, description: String },
    #[error("the token endpoint refused the client ({error}: {description}); check `client_id` and the client secret in the [auth] settings")]
    Client { error: String, description: String },
    #[error("cannot get an access token from {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the access token is not usable in an HTTP header (a stray newline or quote?)")]
    BadToken,
    #[error("the token endpoint answered {status} with a redirect to {host}; the refresh token and client secret are never sent on to another address: set `token_url` to the endpoint itself")]
    Redirected { status: u16, host: String },
    /// A customer tenant refused a token (GDAP): only its rows fail.
    #[error("{0}")]
    Tenant(crate::send::tenant_tokens::TenantRefusal),
    #[error("tokens per customer tenant need a token URL ending in /{{tenant}}/oauth2/v2.0/token (each customer tenant's endpoint is made from it); {url} does not")]
    NoTenantUrl { url: String },
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

/// An access token ready to send, and when to refresh it (never, for a fixed token).
#[derive(Clone)]
struct Current {
    header: AuthHeader,
    refresh_at: Option<Instant>,
}

impl Current {
    /// Whether it can still be sent (not yet due for a refresh).
    fn fresh(&self) -> bool {
        self.refresh_at.is_none_or(|at| Instant::now() < at)
    }
}

/// Why a redemption of the refresh token gave no access token.
enum Failure {
    /// The endpoint refused it: `error` and `error_description`, redacted.
    Refused { error: String, description: String },
    /// Anything else (no answer, a redirect, a bad token): stops the run.
    Other(AuthError),
}

struct State {
    current: Option<Current>,
    refresh_token: Option<SecretString>,
    generation: u64,
    /// The stored sign-in the grant came from: kept up to date after each refresh.
    stored: Option<Box<Stored>>,
}

/// Hands out the current access token to every worker, refreshing it (one refresh at a time) ahead of expiry or after a 401.
pub struct TokenProvider {
    grant: Option<RefreshGrant>,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    /// Why a rotated refresh token could not be saved, if it could not: the run ends with exit 2.
    not_saved: std::sync::Mutex<Option<AuthError>>,
    /// With a target that needs a token per customer tenant (Graph through GDAP): those tokens.
    tenants: Option<TenantTokens<Current>>,
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
                    stored: None,
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
                let stored = grant.stored.take();
                let current = stored.as_deref().and_then(stored_access).transpose()?;
                (
                    Some(grant),
                    State {
                        generation: u64::from(current.is_some()),
                        current,
                        refresh_token,
                        stored,
                    },
                )
            }
        };
        Ok(TokenProvider {
            grant,
            http,
            state: tokio::sync::Mutex::new(state),
            not_saved: std::sync::Mutex::new(None),
            tenants: None,
        })
    }

    /// Gets a token for each customer tenant, with `scope`, from that tenant's endpoint (the
    /// grant's token URL with the customer tenant in place of its own). A fixed token is sent
    /// for every tenant as it is.
    pub fn per_tenant(mut self, scope: &str) -> Result<TokenProvider, AuthError> {
        let Some(grant) = &self.grant else {
            tracing::debug!("a fixed access token: the same token is sent for every customer tenant (no token per tenant)");
            return Ok(self);
        };
        let tenants =
            TenantTokens::new(&grant.token_url, scope).ok_or_else(|| AuthError::NoTenantUrl {
                url: grant.token_url.to_string(),
            })?;
        self.tenants = Some(tenants);
        Ok(self)
    }

    /// The header to send for a request to `customer`'s tenant: its own token when tokens are
    /// per tenant, the run's one token otherwise (and for requests to no tenant). A tenant
    /// that refused its token is [`AuthError::Tenant`] (asked once: its refusal is kept).
    pub async fn header_for(&self, customer: Option<uuid::Uuid>) -> Result<AuthHeader, AuthError> {
        match (&self.tenants, customer) {
            (Some(tenants), Some(customer)) => {
                let fetch = || self.tenant_token(tenants, customer);
                match tenants.get(customer, Current::fresh, fetch).await {
                    Ok(current) => Ok(current.header),
                    Err(Miss::Refused(refusal)) => Err(AuthError::Tenant(refusal)),
                    Err(Miss::Other(e)) => Err(e),
                }
            }
            _ => self.header().await,
        }
    }

    /// The token URL of the refresh-token grant (its authority finds tenants by domain); None
    /// for a fixed token.
    pub fn token_url(&self) -> Option<&reqwest::Url> {
        self.grant.as_ref().map(|g| &g.token_url)
    }

    /// Whether a 401 can be answered by a refresh.
    pub fn can_refresh(&self) -> bool {
        self.grant.is_some()
    }

    /// The header to send now; refreshes first when the token is missing or due.
    /// Concurrent callers wait for one refresh instead of each making their own.
    pub async fn header(&self) -> Result<AuthHeader, AuthError> {
        let mut state = self.state.lock().await;
        if let Some(current) = state.current.as_ref().filter(|c| c.fresh()) {
            return Ok(current.header.clone());
        }
        self.refresh(&mut state).await
    }

    /// After a 401 sent with `generation`: refresh, unless another worker already did.
    /// Returns false when the credentials cannot be refreshed (a fixed token).
    pub async fn refresh_after_401(&self, generation: u64) -> Result<bool, AuthError> {
        if self.grant.is_none() {
            return Ok(false);
        }
        if let Some(tenants) = &self.tenants {
            let is = |c: &Current| c.header.generation == generation;
            let fetch = |tenant| self.tenant_token(tenants, tenant);
            if let Some(refetched) = tenants.refetch(is, fetch).await {
                return refetched.map(|()| true);
            }
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
        let stored = state.stored.is_some();
        match self.redeem(state, &grant.token_url, &grant.scope).await {
            Ok((sent_at, answer)) => Ok(self.accept(state, sent_at, &answer, true)?.header),
            Err(Failure::Refused { error, description }) => {
                Err(refusal(grant, error, description, stored))
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// `tenant`'s token from its endpoint (the refresh token rotated and saved as for the
    /// run's own token); one redemption at a time across tenants, since each may rotate the
    /// one refresh token.
    async fn tenant_token(
        &self,
        tenants: &TenantTokens<Current>,
        tenant: uuid::Uuid,
    ) -> Result<Current, Miss<AuthError>> {
        let mut state = self.state.lock().await;
        let url = tenants.url(tenant);
        match self.redeem(&mut state, &url, tenants.scope()).await {
            Ok((sent_at, answer)) => {
                tracing::debug!(%tenant, "access token for the customer tenant");
                self.accept(&mut state, sent_at, &answer, false)
                    .map_err(Miss::Other)
            }
            Err(Failure::Refused { error, description }) => {
                match crate::send::tenant_tokens::refusal_of(tenant, &error, &description) {
                    Some(refusal) => Err(Miss::Refused(refusal)),
                    None => {
                        // The refresh token or the client is refused: every tenant would refuse it.
                        let grant = self
                            .grant
                            .as_ref()
                            .ok_or(Miss::Other(AuthError::BadToken))?;
                        let stored = state.stored.is_some();
                        Err(Miss::Other(refusal(grant, error, description, stored)))
                    }
                }
            }
            Err(Failure::Other(e)) => Err(Miss::Other(e)),
        }
    }

    /// Redeems the refresh token at `token_url` for `scope`, retrying transient failures.
    async fn redeem(
        &self,
        state: &mut State,
        token_url: &reqwest::Url,
        scope: &str,
    ) -> Result<(Instant, oauth::Answer), Failure> {
        let grant = self
            .grant
            .as_ref()
            .ok_or(Failure::Other(AuthError::BadToken))?;
        let refresh_token = state
            .refresh_token
            .as_ref()
            .ok_or(Failure::Other(AuthError::BadToken))?;
        let secrets: Vec<&str> = [
            Some(refresh_token.expose_secret()),
            grant.client_secret.as_ref().map(|s| s.expose_secret()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut client = oauth::client(&grant.client_id, token_url);
        if let Some(secret) = &grant.client_secret {
            client = client
                .set_client_secret(oauth2::ClientSecret::new(secret.expose_secret().to_owned()))
                .set_auth_type(oauth2::AuthType::RequestBody);
        }
        let http = oauth::transport(&self.http);
        let token = oauth2::RefreshToken::new(refresh_token.expose_secret().to_owned());
        let scopes = scope
            .split_whitespace()
            .map(|s| oauth2::Scope::new(s.to_owned()));
        let mut last_error = String::new();
        for attempt in 1..=TOKEN_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 2))).await;
            }
            let sent_at = Instant::now();
            let answer = client
                .exchange_refresh_token(&token)
                .add_scopes(scopes.clone())
                .request_async(&http)
                .await;
            match answer {
                Ok(answer) => return Ok((sent_at, answer)),
                Err(RequestTokenError::ServerResponse(refused)) => {
                    let sanitize = |t: &str| crate::send::http::sanitize(t, &secrets);
                    let error = sanitize(refused.error.as_deref().unwrap_or("no error code"));
                    let description = sanitize(refused.error_description.as_deref().unwrap_or(""));
                    let description = description.split(" Trace ID:").next().unwrap_or("");
                    return Err(Failure::Refused {
                        error,
                        description: description.to_string(),
                    });
                }
                Err(RequestTokenError::Request(oauth::Transport::Redirected { status, host })) => {
                    return Err(Failure::Other(AuthError::Redirected { status, host }))
                }
                Err(e) => last_error = crate::send::http::sanitize(&unread(&e), &secrets),
            }
        }
        Err(Failure::Other(AuthError::Unreachable {
            url: token_url.to_string(),
            message: last_error,
        }))
    }

    /// Takes a token answer: the new access token (refreshed a little before it expires; the
    /// run's own when `own`, else a customer tenant's) and, when the endpoint rotated it, the
    /// new refresh token (saved back to its file or the stored sign-in).
    fn accept(
        &self,
        state: &mut State,
        sent_at: Instant,
        answer: &oauth::Answer,
        own: bool,
    ) -> Result<Current, AuthError> {
        let access = answer.access();
        let lifetime = answer.expires_in().unwrap_or(DEFAULT_LIFETIME);
        let ahead = REFRESH_AHEAD.min(lifetime / 5);
        state.generation += 1;
        let header = AuthHeader {
            value: bearer(&access)?,
            generation: state.generation,
        };
        let current = Current {
            header,
            refresh_at: Some(crate::core::checked::after(
                sent_at,
                lifetime.saturating_sub(ahead),
            )),
        };
        if own {
            state.current = Some(current.clone());
        }
        let mut rotated = false;
        if let Some(new) = answer.refresh() {
            rotated = state
                .refresh_token
                .as_ref()
                .is_none_or(|old| old.expose_secret() != new.expose_secret());
            if rotated {
                state.refresh_token = Some(new);
            }
        }
        if let Some(stored) = &mut state.stored {
            let now = std::time::SystemTime::now();
            let expires = now.checked_add(lifetime).unwrap_or(now);
            if own {
                // A customer tenant's token is never kept: the next run's own token it is not.
                stored.sign_in.access_token = Some((access, expires));
            }
            stored.sign_in.refresh_used_at = now;
            if let Some(token) = &state.refresh_token {
                stored.sign_in.refresh_token = token.clone();
            }
            let saved = stored.store.save(&stored.sign_in);
            let where_ = stored.store.file().display().to_string();
            self.saved(saved.map(drop).map_err(|e| (where_, e.to_string())));
        } else if rotated {
            if let Some(token) = &state.refresh_token {
                self.save_refresh_token(token);
            }
        }
        tracing::debug!(
            expires_in = lifetime.as_secs(),
            generation = state.generation,
            own,
            "access token refreshed"
        );
        Ok(current)
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
        let result = write_private_atomically(path, &contents)
            .map_err(|e| (path.display().to_string(), e.to_string()));
        self.saved(result);
    }

    /// Notes whether the newest refresh token was saved (where, and why not).
    fn saved(&self, result: Result<(), (String, String)>) {
        match result {
            Ok(()) => {
                tracing::debug!("saved the new refresh token");
                // The store holds the newest token again: the next run will work.
                if let Ok(mut slot) = self.not_saved.lock() {
                    *slot = None;
                }
            }
            Err((path, error)) => {
                let problem = AuthError::NotSaved { path, error };
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

/// What a token endpoint's refusal means: the client is wrong, or the refresh token is (the
/// stored sign-in's when `stored`).
fn refusal(grant: &RefreshGrant, error: String, description: String, stored: bool) -> AuthError {
    match error.as_str() {
        "invalid_client" | "unauthorized_client" => AuthError::Client { error, description },
        _ if stored => AuthError::SignInRefused { error, description },
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

/// Why a token answer could not be read (not yet redacted).
fn unread<T: oauth2::ErrorResponse + 'static>(
    e: &RequestTokenError<oauth::Transport, T>,
) -> String {
    match e {
        RequestTokenError::Request(t) => t.to_string(),
        RequestTokenError::Parse(..) => "an answer that is not a token answer".into(),
        RequestTokenError::Other(m) => m.clone(),
        RequestTokenError::ServerResponse(_) => "a refusal".into(),
    }
}

/// The stored sign-in's access token, when it has long enough left to be worth using.
fn stored_access(stored: &Stored) -> Option<Result<Current, AuthError>> {
    let (token, expires) = stored.sign_in.access_token.as_ref()?;
    let left = expires.duration_since(std::time::SystemTime::now()).ok()?;
    let usable = left.checked_sub(REFRESH_AHEAD)?;
    Some(bearer(token).map(|value| Current {
        header: AuthHeader {
            value,
            generation: 1,
        },
        refresh_at: Some(crate::core::checked::after(Instant::now(), usable)),
    }))
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
            stored: None,
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
