//! A customer named by domain, through a target whose customers are tenants (Graph): the
//! tenant's GUID from the authority's public discovery document (`send::tenant_discovery`),
//! asked through the run's pacer and retries (transient statuses and lost answers retried),
//! without credentials. The authority is the one of the sign-in's token URL; a fixed token has
//! none, so such a customer cannot be found. Uses `send` and `super::{listing, resolve}`.

use uuid::Uuid;

use super::listing::Lister;
use super::resolve::Unresolved;
use crate::core::run_state::Outcome;
use crate::send::attempt::Attempt;
use crate::send::retry::{self, Ending};
use crate::send::tenant_discovery;

/// The tenant whose domain `domain` (lower case) is.
pub(super) async fn tenant_of_domain(lister: &Lister, domain: &str) -> Result<Uuid, Unresolved> {
    let shown = super::resolve::shown(domain);
    let fail = |outcome, why: String| Unresolved {
        outcome,
        reason: format!("cannot find the tenant of the domain {shown}: {why}"),
    };
    let Some(token_url) = lister.tokens.token_url() else {
        return Err(fail(Outcome::Failed, format!(
            "through {} a domain is looked up at the sign-in's authority, and a fixed access token (BULKPATCH_TOKEN, --token-file) has none: name the customer by its tenant GUID, or sign in with `bulkpatch login` or the [auth] settings (`tenant` or `token_url`)",
            lister.target.title()
        )));
    };
    let url = tenant_discovery::discovery_url(token_url, domain).map_err(|why| {
        let outcome = match tenant_discovery::is_domain(domain) {
            true => Outcome::Failed,
            false => Outcome::Invalid,
        };
        fail(outcome, why)
    })?;
    let (http, timeout) = lister.client.transport();
    let send = |_request_id: Uuid| {
        let url = &url;
        async move { Some(tenant_discovery::fetch(http, url, timeout).await) }
    };
    let driven = retry::drive(&lister.policy, &lister.pacer, &lister.stop, None, send).await;
    let n = driven.attempts;
    let answer = match (driven.ending, driven.last) {
        (Ending::Finished, Some(Attempt::Response(r))) => r,
        (Ending::Exhausted, Some(last)) => {
            let why = match last {
                Attempt::Response(r) => described(r.status, r.error_code.as_deref(), &r.message),
                Attempt::Timeout => "timed out waiting for a response".into(),
                Attempt::Connection(m) => m,
            };
            return Err(fail(
                Outcome::Failed,
                format!("gave up after {n} attempts: {why}"),
            ));
        }
        _ => {
            let why = "the run stopped first".to_string();
            return Err(fail(Outcome::Interrupted, why));
        }
    };
    if tenant_discovery::unknown_tenant(&answer) {
        return Err(Unresolved {
            outcome: Outcome::NotFound,
            reason: format!("no tenant has the domain {shown}: {}", answer.message),
        });
    }
    match (answer.status, &answer.user) {
        (200..=299, Some(document)) => {
            let tenant =
                tenant_discovery::tenant_of(document).map_err(|why| fail(Outcome::Failed, why))?;
            tracing::debug!(%tenant, "found the customer tenant of a domain");
            Ok(tenant)
        }
        (status, _) => Err(fail(
            Outcome::Failed,
            described(status, answer.error_code.as_deref(), &answer.message),
        )),
    }
}

fn described(status: u16, code: Option<&str>, message: &str) -> String {
    match code {
        Some(code) => format!("HTTP {status} ({code}): {message}"),
        None => format!("HTTP {status}: {message}"),
    }
}
