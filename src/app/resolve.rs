//! Name resolution: a customer named by domain and a user named by user principal name become
//! their GUIDs before anything is sent. The partner's customers are listed once, and each
//! customer's users once (single-flight: rows asking at the same time wait for one listing),
//! through the run's pacer, retries and tokens; the answers are cached for the run. Memory stays
//! bounded: a customer's listing keeps only the UPNs the input names. A GUID given is used as
//! it is (with both `user_id` and a UPN, the GUID is the key); a name that matches nothing is
//! `not_found`, a domain two customers share is `invalid` naming both. Through a target whose
//! customers are tenants (Graph), a domain is instead looked up once as a tenant's
//! (`tenant_domain`), single-flight per domain.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use uuid::Uuid;

use super::listing::{ListError, Lister};
use crate::core::run_state::Outcome;
use crate::targets::CustomerItem;

/// Why a name could not be resolved: the row's outcome and the reason recorded with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// `NotFound` (nothing matches), `Invalid` (ambiguous) or `Failed` (the listing failed).
    pub outcome: Outcome,
    pub reason: String,
}

impl Unresolved {
    fn not_found(reason: String) -> Unresolved {
        Unresolved {
            outcome: Outcome::NotFound,
            reason,
        }
    }
}

/// A customer's UPNs (lower case) and their user GUIDs; a UPN two users share maps to both.
type Users = HashMap<String, Vec<Uuid>>;
type Listing<T> = Arc<OnceCell<Result<T, Unresolved>>>;

/// Resolves names for one run, caching every listing.
pub struct Resolver {
    lister: Arc<Lister>,
    /// The UPNs (lower case) the input names: the only ones a listing keeps.
    wanted: HashSet<String>,
    customers: Listing<HashMap<String, Vec<Uuid>>>,
    /// By domain (lower case): the tenant it names, for a target whose customers are tenants.
    tenants: Mutex<HashMap<String, Listing<Uuid>>>,
    users: Mutex<HashMap<Uuid, Listing<Users>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("wanted", &self.wanted.len())
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, e: ListError) -> Unresolved {
    let outcome = match e {
        ListError::Stopped => Outcome::Interrupted,
        ListError::Failed {
            status: Some(404), ..
        } => Outcome::NotFound,
        ListError::Failed { .. } => Outcome::Failed,
    };
    Unresolved {
        outcome,
        reason: format!("cannot list {what}: {e}"),
    }
}

/// Before any row is sent: when some rows of the input name customers by domain or users by
/// UPN, lists what they name (the customers once, each such customer's users once, several
/// customers at once up to `--concurrency`) and returns the resolver holding the answers; None
/// when no row names anything. Nothing else is sent meanwhile, so listing keeps to the run's
/// limits.
pub async fn prepare(
    settings: &crate::settings::Settings,
    client: crate::send::http::Client,
    tokens: Arc<crate::send::auth::TokenProvider>,
) -> Result<Option<Arc<Resolver>>, super::Error> {
    let options = super::pipeline::read_options(settings);
    let path = settings.input.clone();
    let wanted = super::blocking(move || crate::input::names::wanted(&path, &options)).await?;
    if wanted.customers.is_empty() {
        return Ok(None);
    }
    let counters = Arc::new(crate::core::run_state::Counters::default());
    let lister = Lister::sharing(settings, client, tokens, Arc::default(), counters);
    let resolver = Arc::new(Resolver::new(Arc::new(lister), wanted.upns));
    tracing::info!(
        customers = wanted.customers.len(),
        "finding the customers and users the input names"
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for customer in wanted.customers {
        let (resolver, limit) = (resolver.clone(), limit.clone());
        let list_users = wanted.listed.contains(&customer);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            if let Ok(id) = resolver.customer(&customer).await {
                if list_users {
                    let cell = resolver.users_cell(id);
                    let _ = cell.get_or_init(|| resolver.list_users(id)).await;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(anyhow::Error::from)?;
    }
    Ok(Some(resolver))
}

impl Resolver {
    /// A resolver listing through `lister`; `wanted` are the UPNs the input names (any case).
    pub fn new(lister: Arc<Lister>, wanted: impl IntoIterator<Item = String>) -> Resolver {
        Resolver {
            lister,
            wanted: wanted
                .into_iter()
                .map(|u| u.trim().to_lowercase())
                .collect(),
            customers: Arc::default(),
            tenants: Mutex::default(),
            users: Mutex::default(),
        }
    }

    /// The customer a cell names: its GUID as given, or the one customer with that domain.
    pub async fn customer(&self, cell: &str) -> Result<Uuid, Unresolved> {
        let cell = cell.trim();
        if let Ok(id) = crate::core::ids::parse_guid(cell) {
            return Ok(id);
        }
        let domain = cell.to_ascii_lowercase();
        if self.lister.target.resolves_domains_by_discovery() {
            return self.tenant(domain).await;
        }
        let by_domain = self
            .customers
            .get_or_init(|| async {
                let (all, _) = self
                    .lister
                    .customers()
                    .await
                    .map_err(|e| failed("the partner's customers", e))?;
                Ok(index_customers(all))
            })
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        match by_domain.get(&domain).map(Vec::as_slice) {
            Some([one]) => Ok(*one),
            None | Some([]) => Err(Unresolved::not_found(format!(
                "no customer of the partner has the domain {}",
                shown(&domain)
            ))),
            Some(several) => Err(Unresolved {
                outcome: Outcome::Invalid,
                reason: format!(
                    "the domain {} names several customers ({}): use the customer's GUID",
                    shown(&domain),
                    several
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }),
        }
    }

    /// The user a row names in `customer`: `user_id` when given (the key), else the one user
    /// whose UPN is `upn` (any case).
    pub async fn user(
        &self,
        customer: Uuid,
        user_id: Option<Uuid>,
        upn: Option<&str>,
    ) -> Result<Uuid, Unresolved> {
        if let Some(id) = user_id {
            return Ok(id);
        }
        let upn = upn.map(|u| u.trim().to_lowercase()).unwrap_or_default();
        if upn.is_empty() {
            return Err(Unresolved {
                outcome: Outcome::Invalid,
                reason: "no user_id and no user_principal_name".into(),
            });
        }
        let cell = self.users_cell(customer);
        let users = cell
            .get_or_init(|| self.list_users(customer))
            .await
            .as_ref()
            .map_err(Clone::clone)?;
        match users.get(&upn).map(Vec::as_slice) {
            Some([one]) => Ok(*one),
            None | Some([]) => Err(Unresolved::not_found(format!(
                "customer {customer} has no user {}",
                shown(&upn)
            ))),
            Some(several) => Err(Unresolved {
                outcome: Outcome::Invalid,
                reason: format!(
                    "{} names several users of customer {customer} ({})",
                    shown(&upn),
                    several
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            }),
        }
    }

    /// The tenant whose domain `domain` is, looked up once (concurrent callers wait for it).
    async fn tenant(&self, domain: String) -> Result<Uuid, Unresolved> {
        let cell = {
            let mut cells = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            cells.entry(domain.clone()).or_default().clone()
        };
        cell.get_or_init(|| super::tenant_domain::tenant_of_domain(&self.lister, &domain))
            .await
            .clone()
    }

    fn users_cell(&self, customer: Uuid) -> Listing<Users> {
        let mut cells = self.users.lock().unwrap_or_else(|p| p.into_inner());
        cells.entry(customer).or_default().clone()
    }

    async fn list_users(&self, customer: Uuid) -> Result<Users, Unresolved> {
        let mut users = Users::new();
        let what = format!("the users of customer {customer}");
        self.lister
            .users(customer, |u| {
                let upn = u.user_principal_name.to_lowercase();
                if self.wanted.contains(&upn) {
                    users.entry(upn).or_default().push(u.id);
                }
                Ok(())
            })
            .await
            .map_err(|e| failed(&what, e))?;
        Ok(users)
    }
}

/// Customers by (lower-case) domain.
fn index_customers(all: Vec<CustomerItem>) -> HashMap<String, Vec<Uuid>> {
    let mut by_domain: HashMap<String, Vec<Uuid>> = HashMap::new();
    for c in all {
        let ids = by_domain.entry(c.domain.to_lowercase()).or_default();
        if !ids.contains(&c.id) {
            ids.push(c.id);
        }
    }
    by_domain
}

/// A name from the input or a server, as a message may show it: short, controls escaped.
pub(super) fn shown(name: &str) -> String {
    let short = crate::core::text::shorten(name, 80);
    format!("\"{}\"", crate::core::redact::escape_controls(&short))
}
