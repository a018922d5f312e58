//! Lists a target's collections (the partner's customers, a customer's users) page by page
//! through the run's machinery: the pacer (per customer for a customer's users), the retry
//! driver, the token provider (one refresh after a 401), the one HTTP client. Each page is read
//! by the target as a hostile answer; a listing that never ends, or names the same page again,
//! is stopped. Used by `export` and by name resolution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::core::run_state::{Counters, Stop, StopReason};
use crate::send::attempt::Attempt;
use crate::send::auth::{AuthError, TokenProvider};
use crate::send::http::Client;
use crate::send::pacer::Pacer;
use crate::send::retry::{self, Driven, Ending, Policy, Verdict};
use crate::targets::listing::MAX_PAGES;
use crate::targets::{Collection, CustomerItem, Ids, NextLink, Page, PageError, Target, UserItem};

/// Why a listing ended before its last page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The API refused it (a final status, or retries exhausted), or its answer was unusable.
    #[error("{}", describe(.status, .code.as_deref(), .message))]
    Failed {
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    /// The run is stopping (Ctrl-C, a refused token): not a failure of this listing.
    #[error("stopped before the listing ended")]
    Stopped,
}

fn describe(status: &Option<u16>, code: Option<&str>, message: &str) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s} (code {c}): {message}"),
        (Some(s), None) => format!("HTTP {s}: {message}"),
        _ => message.to_string(),
    }
}

fn unusable(e: PageError) -> ListError {
    ListError::Failed {
        status: None,
        code: None,
        message: e.0,
    }
}

/// What listing needs: the run's client, tokens, pacer, stop and retry policy.
pub struct Lister {
    pub target: Arc<dyn Target>,
    pub client: Client,
    pub tokens: Arc<TokenProvider>,
    /// Shared with whatever else sends in the run, so that listing stays within its limits.
    pub pacer: Arc<Pacer>,
    pub stop: Arc<Stop>,
    pub policy: Policy,
    pub counters: Arc<Counters>,
}

/// What a listing read besides its items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub items: u64,
    /// Items left out as malformed.
    pub malformed: u64,
}

impl Lister {
    /// A lister with the settings' client, token provider (a first token already fetched),
    /// pacer and retry policy, stopping with `stop` and counting into `counters`.
    pub async fn for_settings(
        settings: &mut crate::settings::Settings,
        stop: Arc<Stop>,
        counters: Arc<Counters>,
    ) -> Result<Lister, super::Error> {
        let Some((client, tokens)) = super::pipeline::connect(settings).await? else {
            let e = anyhow::anyhow!("listing sends requests: it has no dry run");
            return Err(super::Error::Other(e));
        };
        let s = &*settings;
        Ok(Lister {
            target: s.target.clone(),
            client,
            tokens,
            pacer: Arc::new(Pacer::for_settings(s, false)),
            stop,
            policy: Policy::for_settings(s),
            counters,
        })
    }

    /// A lister sharing the run's client and token provider (one refresh for everyone, the
    /// rotated refresh token written back once), with its own pacer at the run's limits.
    pub fn sharing(
        settings: &crate::settings::Settings,
        client: Client,
        tokens: Arc<TokenProvider>,
        stop: Arc<Stop>,
        counters: Arc<Counters>,
    ) -> Lister {
        let target = settings.target.clone();
        Lister {
            target,
            client,
            tokens,
            pacer: Arc::new(Pacer::for_settings(settings, false)),
            stop,
            policy: Policy::for_settings(settings),
            counters,
        }
    }

    /// Every customer of the partner (a few thousand at most: kept in memory).
    pub async fn customers(&self) -> Result<(Vec<CustomerItem>, Listed), ListError> {
        let mut all = Vec::new();
        let target = self.target.clone();
        let listed = self
            .walk(
                Collection::Customers,
                None,
                |b| target.customers_page(b),
                |c| {
                    all.push(c);
                    Ok(())
                },
            )
            .await?;
        Ok((all, listed))
    }

    /// Every user of `customer`, each handed to `each` as its page arrives.
    pub async fn users(
        &self,
        customer: Uuid,
        each: impl FnMut(UserItem) -> Result<(), ListError>,
    ) -> Result<Listed, ListError> {
        let target = self.target.clone();
        let collection = Collection::Users { customer };
        self.walk(
            collection,
            Some(customer),
            |b| target.users_page(customer, b),
            each,
        )
        .await
    }

    /// The names of `user`'s directory roles (a few at most: kept in memory).
    pub async fn roles(&self, customer: Uuid, user: Uuid) -> Result<Vec<String>, ListError> {
        let mut names = Vec::new();
        let target = self.target.clone();
        self.walk(
            Collection::Roles { customer, user },
            Some(customer),
            |b| target.roles_page(customer, user, b),
            |name| {
                names.push(name);
                Ok(())
            },
        )
        .await?;
        Ok(names)
    }

    async fn walk<T>(
        &self,
        collection: Collection,
        customer: Option<Uuid>,
        read: impl Fn(&Map<String, Value>) -> Result<Page<T>, PageError>,
        mut each: impl FnMut(T) -> Result<(), ListError>,
    ) -> Result<Listed, ListError> {
        let mut listed = Listed::default();
        let mut next: Option<NextLink> = None;
        for _ in 0..MAX_PAGES {
            let body = self.page(collection, next.as_ref(), customer).await?;
            let page = read(&body).map_err(unusable)?;
            listed.malformed += page.malformed as u64;
            for item in page.items {
                listed.items += 1;
                each(item)?;
            }
            match page.next {
                None => return Ok(listed),
                Some(link) if next.as_ref() == Some(&link) => {
                    return Err(unusable(PageError(
                        "the server named the same page again".into(),
                    )))
                }
                Some(link) => next = Some(link),
            }
        }
        Err(unusable(PageError(format!(
            "the listing did not end within {MAX_PAGES} pages"
        ))))
    }

    /// One page's answer, through the pacer and retries, with one refresh after a 401.
    async fn page(
        &self,
        collection: Collection,
        next: Option<&NextLink>,
        customer: Option<Uuid>,
    ) -> Result<Map<String, Value>, ListError> {
        let correlation = crate::core::ids::new_id();
        let probe = Ids {
            request: correlation,
            correlation,
        };
        self.target
            .list_request(collection, next, probe)
            .map_err(unusable)?;
        let generation = AtomicU64::new(0);
        // Set when the customer's tenant refused an access token.
        let refusal = std::sync::OnceLock::new();
        let mut send = |request_id: Uuid| {
            let (generation, refusal) = (&generation, &refusal);
            async move {
                let auth = match self.tokens.header_for(customer).await {
                    Ok(auth) => auth,
                    Err(AuthError::Tenant(refused)) => {
                        let _ = refusal.set(refused);
                        return None;
                    }
                    Err(e) => {
                        self.stop.stop(StopReason::AuthFailed(e.to_string()));
                        return None;
                    }
                };
                generation.store(auth.generation, Ordering::Relaxed);
                let ids = Ids {
                    request: request_id,
                    correlation,
                };
                let request = self.target.list_request(collection, next, ids).ok()?;
                Some(
                    self.client
                        .send_request(auth.value, request, &[], true)
                        .await,
                )
            }
        };
        let mut driven =
            retry::drive(&self.policy, &self.pacer, &self.stop, customer, &mut send).await;
        if matches!(driven.verdict, Some(Verdict::Unauthorized { .. })) {
            match self
                .tokens
                .refresh_after_401(generation.load(Ordering::Relaxed))
                .await
            {
                Ok(true) => {
                    let first = driven.attempts;
                    driven =
                        retry::drive(&self.policy, &self.pacer, &self.stop, customer, &mut send)
                            .await;
                    driven.attempts += first;
                    if matches!(driven.verdict, Some(Verdict::Unauthorized { .. })) {
                        self.stop.stop(StopReason::Unauthorized);
                    }
                }
                Ok(false) => self.stop.stop(StopReason::Unauthorized),
                Err(e) => self.stop.stop(StopReason::AuthFailed(e.to_string())),
            }
        }
        self.count(&driven);
        if let Some(refused) = refusal.get() {
            return Err(ListError::Failed {
                status: None,
                code: refused.code.clone(),
                message: refused.to_string(),
            });
        }
        answer(driven)
    }

    fn count(&self, driven: &Driven) {
        let c = &self.counters;
        c.attempts
            .fetch_add(u64::from(driven.attempts), Ordering::Relaxed);
        c.throttled
            .fetch_add(u64::from(driven.throttled), Ordering::Relaxed);
        // Every listing request reads (the summary shows reads and writes apart).
        c.reads
            .fetch_add(u64::from(driven.attempts), Ordering::Relaxed);
    }
}

/// The page's JSON object, or why there is none.
fn answer(driven: Driven) -> Result<Map<String, Value>, ListError> {
    let n = driven.attempts;
    let response = match (driven.ending, driven.last) {
        (Ending::Finished, Some(Attempt::Response(r))) => r,
        (Ending::Exhausted, Some(last)) => {
            let (status, code, message) = match last {
                Attempt::Response(r) => (Some(r.status), r.error_code, r.message),
                Attempt::Timeout => (None, None, "timed out waiting for a response".into()),
                Attempt::Connection(m) => (None, None, m),
            };
            let message = format!("gave up after {n} attempts: {message}");
            return Err(ListError::Failed {
                status,
                code,
                message,
            });
        }
        _ => return Err(ListError::Stopped),
    };
    if response.status == 401 {
        return Err(ListError::Stopped);
    }
    if !(200..300).contains(&response.status) {
        return Err(ListError::Failed {
            status: Some(response.status),
            code: response.error_code,
            message: response.message,
        });
    }
    response.user.ok_or_else(|| ListError::Failed {
        status: Some(response.status),
        code: None,
        message: "the answer was not a JSON object (or was larger than 1 MiB)".into(),
    })
}
