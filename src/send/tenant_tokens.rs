//! Tokens per customer tenant (Microsoft Graph through GDAP): the partner's one refresh token is
//! redeemed at each customer tenant's own token endpoint (`{authority}/{customer}/oauth2/v2.0/token`)
//! when the tenant's first request needs it, kept per tenant and refreshed before it expires,
//! one refresh at a time per tenant. A tenant whose token request is refused (no GDAP
//! relationship, conditional access, no consent) is remembered with its reason: its rows fail
//! without a request, the other tenants go on; a refusal that concerns the refresh token or
//! the client themselves (expired, revoked, wrong client) stops the run as it would for the
//! run's own token. Redeeming, rotating and saving the refresh token are `send::auth`'s, which
//! keeps its tokens here. Uses `core` and `send::tenants`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// The longest error description kept from a token endpoint's refusal.
const MAX_DESCRIPTION: usize = 300;

/// Why a customer tenant gave no token: the row records and messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRefusal {
    pub tenant: Uuid,
    /// The OAuth `error` (`invalid_grant`, `interaction_required`, ...).
    pub error: String,
    /// The Entra code of the description (`AADSTS50020`), if it has one.
    pub code: Option<String>,
    /// What it means, in a few words.
    pub reason: &'static str,
    /// The endpoint's description, redacted and shortened.
    pub description: String,
}

impl std::fmt::Display for TenantRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "customer tenant {} refused an access token ({}: {}): {}",
            self.tenant, self.error, self.reason, self.description
        )
    }
}

impl TenantRefusal {
    /// The refusal as the send stage holds a customer's rows back for it.
    pub fn refusal(&self) -> crate::send::tenants::Refusal {
        crate::send::tenants::token_refusal(
            self.code.clone().or_else(|| Some(self.error.clone())),
            self.reason,
        )
    }
}

/// One tenant's token: none yet, ready, or refused (asked once).
enum Slot<T> {
    Empty,
    Ready(T),
    Refused(TenantRefusal),
}

/// Why a tenant has no token: it refused (kept), or something else went wrong (`E`: not kept).
#[derive(Debug)]
pub enum Miss<E> {
    Refused(TenantRefusal),
    Other(E),
}

/// The tokens (`T`) of every customer tenant a run has sent to, and where each is asked for.
pub struct TenantTokens<T> {
    /// The grant's token URL; each tenant's is made from it.
    token_url: reqwest::Url,
    scope: String,
    slots: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Slot<T>>>>>,
}

impl<T: Clone> TenantTokens<T> {
    /// Tokens with `scope` from tenant endpoints made from `token_url`
    /// (`.../{tenant}/oauth2/v2.0/token`); None when `token_url` has no tenant segment.
    pub fn new(token_url: &reqwest::Url, scope: &str) -> Option<TenantTokens<T>> {
        tenant_url(token_url, Uuid::nil())?;
        Some(TenantTokens {
            token_url: token_url.clone(),
            scope: scope.to_string(),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The scope each tenant's token is asked with.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `tenant`'s token endpoint.
    pub fn url(&self, tenant: Uuid) -> reqwest::Url {
        tenant_url(&self.token_url, tenant).unwrap_or_else(|| self.token_url.clone())
    }

    fn slot(&self, tenant: Uuid) -> Arc<tokio::sync::Mutex<Slot<T>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(tenant)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Empty)))
            .clone()
    }

    /// `tenant`'s token: the kept one while `fresh`, else a new one from `fetch` (concurrent
    /// callers for one tenant wait for one fetch; a refusal is kept and answered from then on).
    pub async fn get<E, F, Fut>(
        &self,
        tenant: Uuid,
        fresh: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Result<T, Miss<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Miss<E>>>,
    {
        let slot = self.slot(tenant);
        let mut slot = slot.lock().await;
        match &*slot {
            Slot::Ready(token) if fresh(token) => return Ok(token.clone()),
            Slot::Refused(refusal) => return Err(Miss::Refused(refusal.clone())),
            _ => {}
        }
        keep(&mut slot, fetch().await)
    }

    /// Fetches again the token of the tenant whose token `is` names (after a 401), unless it
    /// was replaced already: None when no tenant's token is that one. A refusal is kept for
    /// the tenant (its next request fails its row), not returned.
    pub async fn refetch<E, F, Fut>(
        &self,
        is: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Option<Result<(), E>>
    where
        F: FnOnce(Uuid) -> Fut,
        Fut: Future<Output = Result<T, Miss<E>>>,
    {
        let slots: Vec<(Uuid, Arc<tokio::sync::Mutex<Slot<T>>>)> = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.iter().map(|(t, s)| (*t, s.clone())).collect()
        };
        for (tenant, slot) in slots {
            let mut slot = slot.lock().await;
            if matches!(&*slot, Slot::Ready(token) if is(token)) {
                tracing::info!(%tenant, "the API refused the tenant's access token (401): refreshing it");
                return Some(match keep(&mut slot, fetch(tenant).await) {
                    Ok(_) | Err(Miss::Refused(_)) => Ok(()),
                    Err(Miss::Other(e)) => Err(e),
                });
            }
        }
        None
    }
}

/// Keeps a fetched token, or a refusal, in its slot.
fn keep<T: Clone, E>(slot: &mut Slot<T>, fetched: Result<T, Miss<E>>) -> Result<T, Miss<E>> {
    match &fetched {
        Ok(token) => *slot = Slot::Ready(token.clone()),
        Err(Miss::Refused(refusal)) => {
            tracing::warn!("{refusal}: its rows are not sent");
            *slot = Slot::Refused(refusal.clone());
        }
        Err(Miss::Other(_)) => {}
    }
    fetched
}

/// The refusal of `tenant`'s token request, when it concerns the tenant (None: it concerns
/// the refresh token or the client, and every tenant would refuse it).
pub fn refusal_of(tenant: Uuid, error: &str, description: &str) -> Option<TenantRefusal> {
    Some(TenantRefusal {
        tenant,
        reason: tenant_reason(error, description)?,
        code: aadsts(description),
        error: error.to_string(),
        description: crate::core::text::shorten(description, MAX_DESCRIPTION),
    })
}

/// `token_url` with `tenant` in place of its tenant segment, the one before `oauth2/v2.0/token`.
pub fn tenant_url(token_url: &reqwest::Url, tenant: Uuid) -> Option<reqwest::Url> {
    at_authority(token_url, &tenant.to_string(), &["oauth2", "v2.0", "token"])
}

/// A URL of the token URL's authority: `token_url` with `tenant` (a GUID or a checked domain)
/// in place of its tenant segment and `tail` in place of `oauth2/v2.0/token`, no query; None
/// when `token_url` has no tenant segment.
pub fn at_authority(token_url: &reqwest::Url, tenant: &str, tail: &[&str]) -> Option<reqwest::Url> {
    let segments: Vec<&str> = token_url.path_segments()?.collect();
    let n = segments.len();
    if n < 4 || segments[n - 3..] != ["oauth2", "v2.0", "token"] || segments[n - 4].is_empty() {
        return None;
    }
    let mut url = token_url.clone();
    let mut path: Vec<&str> = segments[..n - 4].to_vec();
    path.push(tenant);
    path.extend_from_slice(tail);
    url.set_path(&path.join("/"));
    url.set_query(None);
    Some(url)
}

/// The `AADSTS` code a description starts with or holds (`AADSTS50020`).
fn aadsts(description: &str) -> Option<String> {
    let at = description.find("AADSTS")?;
    let digits: String = description[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .take(10)
        .collect();
    (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
}

/// Codes that say the refresh token itself is no good (expired, revoked, a password change):
/// every tenant would refuse it, so the run stops and asks for a new sign-in.
const GRANT_CODES: &[&str] = &[
    "70000", "70008", "700082", "700084", "50173", "50133", "9002313", "50126", "54005",
];

/// What a customer tenant's refusal means, or None when it concerns the refresh token or the
/// client (not the tenant).
pub fn tenant_reason(error: &str, description: &str) -> Option<&'static str> {
    if matches!(error, "invalid_client" | "unauthorized_client") {
        return None;
    }
    let code = aadsts(description);
    let number = code.as_deref().map(|c| &c[6..]).unwrap_or("");
    if GRANT_CODES.contains(&number) {
        return None;
    }
    Some(match number {
        "50020" | "50034" | "50177" | "500341" | "50053" => {
            "no GDAP relationship: the partner's user has no access to this tenant"
        }
        "53003" | "53000" | "53001" | "53002" | "50076" | "50079" | "50158" | "530032"
        | "50074" | "50072" => "blocked by the tenant's conditional access or MFA",
        "65001" | "650051" | "650052" | "650057" | "500011" | "7000112" => {
            "the application is not consented in this tenant"
        }
        "90002" | "900023" | "90072" => "the tenant was not found",
        _ => "the token request was refused",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_endpoint_made_from_the_grants() {
        let t = Uuid::from_u128(7);
        let url =
            reqwest::Url::parse("https://login.example/contoso.com/oauth2/v2.0/token?x=1").unwrap();
        assert_eq!(
            tenant_url(&url, t).unwrap().as_str(),
            format!("https://login.example/{t}/oauth2/v2.0/token")
        );
        let sovereign =
            reqwest::Url::parse("https://login.example/base/partner/oauth2/v2.0/token").unwrap();
        assert_eq!(
            tenant_url(&sovereign, t).unwrap().path(),
            format!("/base/{t}/oauth2/v2.0/token")
        );
        for bad in [
            "https://login.example/token",
            "https://login.example/oauth2/v2.0/token",
        ] {
            assert_eq!(
                tenant_url(&reqwest::Url::parse(bad).unwrap(), t),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn refusals_of_a_tenant_are_told_from_refusals_of_the_refresh_token() {
        let r = |e: &str, d: &str| tenant_reason(e, d);
        assert!(r(
            "invalid_grant",
            "AADSTS50020: User account from identity provider does not exist in tenant"
        )
        .unwrap()
        .contains("GDAP"));
        assert!(r(
            "interaction_required",
            "AADSTS53003: Access has been blocked by Conditional Access policies."
        )
        .unwrap()
        .contains("conditional access"));
        assert_eq!(
            r(
                "invalid_grant",
                "AADSTS700082: The refresh token has expired"
            ),
            None
        );
        assert_eq!(
            r("invalid_client", "AADSTS7000215: Invalid client secret"),
            None
        );
        assert_eq!(
            r("invalid_grant", "no code"),
            Some("the token request was refused")
        );
        assert_eq!(aadsts("x AADSTS65001: y").as_deref(), Some("AADSTS65001"));
        assert_eq!(aadsts("AADSTS: y"), None);
    }
}
