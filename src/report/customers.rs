//! The per-customer table of a report: rows, updated (a plan: rows to change), failed, other
//! problems, 429s and pace per `customer_id`, counted record by record while the report reads the results file.
//! Bounded: a few numbers per customer (at most `MAX_TRACKED` customers; the rest are counted
//! together), and only the `SHOWN` customers with the most problems, then the most rows, are
//! rendered. Uses only `core`.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::core::run_state::Outcome;

/// Customers shown in the table; the rest are summed up as "and N more".
pub const SHOWN: usize = 50;
/// Distinct customers counted one by one (a crafted file cannot grow the map without bound).
const MAX_TRACKED: usize = 200_000;

/// What is counted per customer.
#[derive(Default, Clone, Copy)]
struct Counts {
    rows: u64,
    updated: u64,
    /// Planned (a dry run) or would change (an audit).
    to_change: u64,
    failed: u64,
    other_problems: u64,
    throttled: u64,
    /// Rows with a finish time (sent rows), and the first and last of those times (ms).
    timed: u64,
    first_ms: u64,
    last_ms: u64,
}

/// One line of the table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CustomerRow {
    pub customer_id: String,
    /// The customer's domain, from the first row that named it (empty when none did).
    pub customer_domain: String,
    pub rows: u64,
    pub updated: u64,
    /// Rows a dry run plans, or an audit finds would change (a plan shows them).
    pub to_change: u64,
    pub failed: u64,
    /// Invalid, interrupted, not found and forbidden rows.
    pub other_problems: u64,
    /// 429 answers (the sum of the `throttled` column).
    pub throttled: u64,
    /// Rows finished per second between this customer's first and last finished row
    /// ("-" with fewer than two finished rows or no time between them).
    pub pace: String,
}

/// The table a report shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CustomerTable {
    /// Customers in the file (those past `MAX_TRACKED` counted as one).
    pub total: u64,
    /// Customers with at least one problem row.
    pub with_problems: u64,
    pub shown: Vec<CustomerRow>,
    /// Customers not shown.
    pub more: u64,
}

/// Counts per customer while a file is read.
#[derive(Default)]
pub struct CustomerTally {
    map: HashMap<String, Counts>,
    /// The domain a row named each counted customer by (one per customer, as `map`).
    domains: HashMap<String, String>,
}

impl CustomerTally {
    /// Counts one row (once per row: the caller skips an audit's extra field records).
    pub fn add(
        &mut self,
        customer: &str,
        outcome: Outcome,
        throttled: u64,
        finished: Option<SystemTime>,
    ) {
        let key = if self.map.len() < MAX_TRACKED || self.map.contains_key(customer) {
            customer
        } else {
            "(other customers)"
        };
        if !self.map.contains_key(key) {
            self.map.insert(key.to_string(), Counts::default());
        }
        let c = self.map.get_mut(key).expect("just inserted");
        c.rows += 1;
        match outcome {
            Outcome::Updated => c.updated += 1,
            Outcome::Planned | Outcome::WouldChange => c.to_change += 1,
            Outcome::Failed => c.failed += 1,
            o if o.is_problem() => c.other_problems += 1,
            _ => {}
        }
        c.throttled = c.throttled.saturating_add(throttled);
        let sent = !matches!(outcome, Outcome::Invalid | Outcome::Planned);
        if let Some(ms) = finished.filter(|_| sent).map(millis) {
            c.first_ms = if c.timed == 0 { ms } else { c.first_ms.min(ms) };
            c.last_ms = c.last_ms.max(ms);
            c.timed += 1;
        }
    }

    /// Names a counted customer by the domain a row gave (the first one given is kept).
    pub fn name(&mut self, customer: &str, domain: &str) {
        if !domain.is_empty()
            && self.map.contains_key(customer)
            && !self.domains.contains_key(customer)
        {
            self.domains
                .insert(customer.to_string(), domain.to_string());
        }
    }

    /// The table: the customers with the most problems, then the most rows, first.
    pub fn table(mut self) -> CustomerTable {
        let total = self.map.len() as u64;
        let with_problems = self
            .map
            .values()
            .filter(|c| c.failed + c.other_problems > 0)
            .count() as u64;
        let mut all: Vec<(String, Counts)> = self.map.into_iter().collect();
        let key = |c: &Counts| std::cmp::Reverse((c.failed + c.other_problems, c.rows));
        all.sort_by(|a, b| key(&a.1).cmp(&key(&b.1)).then_with(|| a.0.cmp(&b.0)));
        let more = all.len().saturating_sub(SHOWN) as u64;
        all.truncate(SHOWN);
        let shown = all
            .into_iter()
            .map(|(id, c)| {
                let domain = self.domains.remove(&id).unwrap_or_default();
                row_of(id, domain, &c)
            })
            .collect();
        CustomerTable {
            total,
            with_problems,
            shown,
            more,
        }
    }
}

fn row_of(customer_id: String, customer_domain: String, c: &Counts) -> CustomerRow {
    let span_ms = c.last_ms.saturating_sub(c.first_ms);
    let pace = if c.timed >= 2 && span_ms > 0 {
        format!("{:.1}/s", (c.timed - 1) as f64 * 1000.0 / span_ms as f64)
    } else {
        "-".to_string()
    };
    CustomerRow {
        customer_id,
        customer_domain,
        rows: c.rows,
        updated: c.updated,
        to_change: c.to_change,
        failed: c.failed,
        other_problems: c.other_problems,
        throttled: c.throttled,
        pace,
    }
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_table_is_bounded_and_puts_problems_first() {
        let mut t = CustomerTally::default();
        for i in 0..60u64 {
            for _ in 0..=i % 3 {
                t.add(&format!("c{i:02}"), Outcome::Updated, 0, None);
            }
        }
        t.add("c59", Outcome::Failed, 2, None);
        let table = t.table();
        assert_eq!((table.total, table.with_problems), (60, 1));
        assert_eq!((table.shown.len(), table.more), (SHOWN, 10));
        assert_eq!(table.shown[0].customer_id, "c59");
        assert_eq!((table.shown[0].failed, table.shown[0].throttled), (1, 2));
        assert!(
            table.shown[1..].windows(2).all(|w| w[0].rows >= w[1].rows),
            "then most rows"
        );
        let one_row = table.shown.iter().filter(|r| r.rows == 1).count();
        assert_eq!(one_row, 10, "ten of the twenty one-row customers left out");
    }

    #[test]
    fn pace_is_rows_per_second_between_first_and_last_finish() {
        let mut t = CustomerTally::default();
        let at = |s| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        for s in [10, 12, 14] {
            t.add("c", Outcome::Updated, 0, at(s));
        }
        t.add("c", Outcome::Invalid, 0, at(100)); // not sent: no pace
        t.add("d", Outcome::Updated, 0, at(10));
        let table = t.table();
        let pace = |id: &str| {
            table
                .shown
                .iter()
                .find(|r| r.customer_id == id)
                .unwrap()
                .pace
                .clone()
        };
        assert_eq!(pace("c"), "0.5/s");
        assert_eq!(pace("d"), "-");
    }
}
