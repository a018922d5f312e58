//! Customers that refuse the partner as a whole: counts each customer's tenant-level refusals
//! in a row (the target says which answers are: [`crate::targets::Target::refuses_tenant`]),
//! calls the customer refused once [`THRESHOLD`] are met, and writes the record of a row that
//! is then not sent. Uses `core`, `targets`, `input`, `output` and `send::{attempt, retry}`.
//!
//! Only customers whose latest answer was a refusal have an entry (an answer that reaches a
//! user, a success or a user-level error, removes it), so the map stays as small as the number
//! of refusing customers.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::core::run_state::{Operation, Outcome};
use crate::input::rows::Row;
use crate::output::results::Record;
use crate::send::attempt::Attempt;
use crate::send::retry::{Driven, Ending, Verdict};
use crate::targets::Target;

/// Refusals in a row after which a customer's remaining rows are not sent. One is not enough
/// even for codes that name the tenant (20002, 60003): a relationship being set up or a tenant
/// just created can refuse once and then accept, and a user-level 403 (900308 for an admin the
/// signed-in role may not change) looks the same as a tenant-level one. Three in a row, with no
/// answer between that reached a user, costs two requests more than one and is hard to get by
/// chance.
pub const THRESHOLD: u8 = 3;

/// The refusal a customer's rows are held back for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: Option<String>,
    /// The target's short name for it ("no relationship").
    pub reason: &'static str,
    /// Refusals in a row so far; 0 for a tenant that refused an access token (nothing was
    /// sent to it: see `send::tenant_tokens`).
    pub count: u8,
}

/// The refusal of a tenant that gave no access token: `code` is the token endpoint's
/// (`AADSTS50020`), `reason` what it means.
pub fn token_refusal(code: Option<String>, reason: &'static str) -> Refusal {
    Refusal {
        status: 0,
        code,
        reason,
        count: 0,
    }
}

/// What one row's finished request says about its customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A tenant-level refusal.
    Refused {
        status: u16,
        code: Option<String>,
        reason: &'static str,
    },
    /// An answer that reached the tenant's users: a success or a user-level error.
    Reached,
    /// Nothing about the tenant: a transient failure, no answer, a refused token.
    Nothing,
}

impl Seen {
    /// What a driven request says, by the target's list of tenant-level refusals.
    pub fn of(target: &dyn Target, driven: &Driven) -> Seen {
        match (&driven.ending, &driven.verdict, &driven.last) {
            (Ending::Finished, Some(Verdict::Success), _) => Seen::Reached,
            (Ending::Finished, Some(Verdict::Fail { .. }), Some(Attempt::Response(r))) => {
                match target.refuses_tenant(r.status, r.error_code.as_deref()) {
                    Some(reason) => Seen::Refused {
                        status: r.status,
                        code: r.error_code.clone(),
                        reason,
                    },
                    None => Seen::Reached,
                }
            }
            _ => Seen::Nothing,
        }
    }
}

/// Each customer's refusals in a row, shared by the workers.
#[derive(Debug)]
pub struct Tenants {
    threshold: u8,
    streaks: Mutex<HashMap<Uuid, Refusal>>,
}

impl Default for Tenants {
    fn default() -> Tenants {
        Tenants::new(THRESHOLD)
    }
}

impl Tenants {
    /// Refused after `threshold` refusals in a row (at least 1).
    pub fn new(threshold: u8) -> Tenants {
        Tenants {
            threshold: threshold.max(1),
            streaks: Mutex::new(HashMap::new()),
        }
    }

    /// Counts what a finished request of `customer` said.
    pub fn observe(&self, customer: Uuid, seen: Seen) {
        let Ok(mut streaks) = self.streaks.lock() else {
            return;
        };
        match seen {
            Seen::Refused {
                status,
                code,
                reason,
            } => {
                let entry = streaks.entry(customer).or_insert(Refusal {
                    status,
                    code: None,
                    reason,
                    count: 0,
                });
                entry.count = entry.count.saturating_add(1);
                (entry.status, entry.code, entry.reason) = (status, code, reason);
            }
            Seen::Reached => {
                streaks.remove(&customer);
            }
            Seen::Nothing => {}
        }
    }

    /// The refusal `customer`'s rows are held back for, once it has refused enough in a row.
    pub fn refused(&self, customer: Uuid) -> Option<Refusal> {
        let streaks = self.streaks.lock().ok()?;
        streaks
            .get(&customer)
            .filter(|r| r.count >= self.threshold)
            .cloned()
    }
}

/// The record of a row not sent because its customer refused: `failed` (for an audit,
/// `forbidden` or `not_found` as its answer would have been) with the refusal's status and code.
pub fn held_record(row: &Row, refusal: &Refusal, operation: Operation) -> Record {
    let code = refusal
        .code
        .as_deref()
        .map(|c| format!(", code {c}"))
        .unwrap_or_default();
    if refusal.count == 0 {
        return token_held_record(row, refusal, operation, &code);
    }
    let (outcome, verb, then) = match (operation, refusal.status) {
        (Operation::Audit, 403) => (Outcome::Forbidden, "not read", "audit again"),
        (Operation::Audit, 404) => (Outcome::NotFound, "not read", "audit again"),
        (Operation::Audit, _) => (Outcome::Failed, "not read", "audit again"),
        (Operation::Patch { .. }, _) => (
            Outcome::Failed,
            "not sent",
            "run again with --resume --retry-failed",
        ),
    };
    let message = format!(
        "{verb}: customer {} refused {} rows in a row ({}{code}: {}); once it accepts requests, {then}",
        row.customer, refusal.count, refusal.status, refusal.reason
    );
    Record {
        outcome,
        http_status: Some(refusal.status),
        error_code: refusal.code.clone(),
        message,
        ..Record::unsent(row)
    }
}

/// The record of a row not sent because its tenant refused an access token.
fn token_held_record(row: &Row, refusal: &Refusal, operation: Operation, code: &str) -> Record {
    let (outcome, verb) = match operation {
        Operation::Audit => (Outcome::Forbidden, "not read"),
        Operation::Patch { .. } => (Outcome::Failed, "not sent"),
    };
    let message = format!(
        "{verb}: customer tenant {} refused an access token for the partner's user{code}: {}; once it grants access (a GDAP relationship with the needed roles), run again with --resume --retry-failed",
        row.customer, refusal.reason
    );
    Record {
        outcome,
        error_code: refusal.code.clone(),
        message,
        ..Record::unsent(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> Seen {
        Seen::Refused {
            status: 403,
            code: Some(code.into()),
            reason: "no relationship",
        }
    }

    #[test]
    fn a_customer_is_refused_after_the_threshold_in_a_row_and_reset_by_an_answer_that_reached_it() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let tenants = Tenants::new(3);
        tenants.observe(a, refused("20002"));
        tenants.observe(a, refused("20002"));
        tenants.observe(b, refused("20002"));
        assert_eq!(tenants.refused(a), None, "two are not yet three");
        // Neither a transient failure nor another customer's answer breaks a's streak.
        tenants.observe(a, Seen::Nothing);
        tenants.observe(b, Seen::Reached);
        tenants.observe(a, refused("900308"));
        let refusal = tenants.refused(a).expect("three in a row");
        assert_eq!(
            (refusal.status, refusal.code.as_deref(), refusal.count),
            (403, Some("900308"), 3)
        );
        assert_eq!(tenants.refused(b), None);
        // A success (or a user-level error) starts the count again, and frees the entry.
        tenants.observe(a, Seen::Reached);
        assert_eq!(tenants.refused(a), None);
        tenants.observe(a, refused("20002"));
        tenants.observe(a, refused("20002"));
        assert_eq!(tenants.refused(a), None);
        assert!(tenants.streaks.lock().unwrap().len() == 1, "b has no entry");
        // The count never overflows.
        for _ in 0..300 {
            tenants.observe(a, refused("20002"));
        }
        assert_eq!(tenants.refused(a).unwrap().count, u8::MAX);
    }

    #[test]
    fn a_held_row_is_recorded_with_the_refusal_and_how_to_send_it_again() {
        let row = Row {
            line: 7,
            customer: Uuid::from_u128(1),
            user: Uuid::from_u128(2),
            changes: Default::default(),
            hash: 9,
            context: Default::default(),
        };
        let refusal = Refusal {
            status: 403,
            code: Some("20002".into()),
            reason: "no relationship",
            count: 3,
        };
        let patch = Operation::Patch {
            skip_unchanged: false,
        };
        let r = held_record(&row, &refusal, patch);
        assert_eq!(
            (
                r.outcome,
                r.http_status,
                r.error_code.as_deref(),
                r.attempts
            ),
            (Outcome::Failed, Some(403), Some("20002"), 0)
        );
        assert_eq!(
            r.message,
            format!(
                "not sent: customer {} refused 3 rows in a row (403, code 20002: no relationship); \
                 once it accepts requests, run again with --resume --retry-failed",
                row.customer
            )
        );
        assert_eq!(r.row_hash, 9);
        let audit = held_record(&row, &refusal, Operation::Audit);
        assert_eq!(audit.outcome, Outcome::Forbidden);
        assert!(audit.message.starts_with("not read: "), "{}", audit.message);
    }
}
