//! The run's shared state: why and how it stops, what the workers do with each row, and the
//! counters that progress and the summary read. Uses no other module of the crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// Why a run stopped before reaching the end of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The API refused the access token (401).
    Unauthorized,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The results file (or the secrets file) could not be written.
    WriteFailed(String),
    /// No access token could be had (the refresh token was refused, say).
    AuthFailed(String),
    /// The input file read to its end is not the file first read (hashed): it changed while
    /// the run read it. Both SHA-256 digests, in hex.
    InputChanged { first: String, now: String },
    /// `--max-changes` with users read first: more rows than the limit would be written;
    /// nothing was written.
    TooManyChanges { limit: u64 },
    /// No connection to the API could be opened, and nothing ever answered.
    NothingConnects {
        host: String,
        attempts: u32,
        error: String,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Unauthorized => write!(
                f,
                "the API refused the access token (401): it is invalid or has expired; get a new token and run again"
            ),
            StopReason::Interrupted => write!(f, "interrupted"),
            StopReason::WriteFailed(e) => write!(
                f,
                "a file could not be written ({e}); stopped so that no update goes unrecorded"
            ),
            StopReason::AuthFailed(e) => write!(f, "{e}"),
            StopReason::InputChanged { first, now } => write!(
                f,
                "the input file changed while the run read it (SHA-256 {first} when checked, {now} when read to its end): stopped; rows read before the end may have been sent from the changed file, and the results file records each one sent"
            ),
            StopReason::TooManyChanges { limit } => write!(
                f,
                "more than --max-changes {limit} rows would be written (users read first): nothing was written; rows already as desired are recorded `unchanged`"
            ),
            StopReason::NothingConnects {
                host,
                attempts,
                error,
            } => write!(
                f,
                "nothing connects: {attempts} attempts to connect to {host} failed and none has succeeded ({error}); check the base URL, DNS, the network or the proxy"
            ),
        }
    }
}

/// The run's stop control: a graceful stop (take no new rows, let requests in flight finish) and an abort (stop at once).
#[derive(Debug, Default)]
pub struct Stop {
    graceful: CancellationToken,
    abort: CancellationToken,
    reason: OnceLock<StopReason>,
}

impl Stop {
    /// Stops taking new rows; the first reason given is the one reported.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.graceful.cancel();
    }

    /// Stops at once: requests in flight are abandoned.
    pub fn abort(&self, reason: StopReason) {
        self.stop(reason);
        self.abort.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.graceful.is_cancelled()
    }

    pub fn reason(&self) -> Option<&StopReason> {
        self.reason.get()
    }

    /// Completes when a graceful stop (or an abort) is asked for.
    pub async fn stopping(&self) {
        self.graceful.cancelled().await
    }

    /// Completes when an abort is asked for.
    pub async fn aborted(&self) {
        self.abort.cancelled().await
    }
}

/// What the workers do with each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Send the update; with `skip_unchanged`, read the user first and skip it when already as desired.
    Patch { skip_unchanged: bool },
    /// Read the user and compare; never write.
    Audit,
}

/// Live counts shared by the workers, the results writer and the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub done: AtomicU64,
    /// Rows recorded, by outcome (indexed like `Outcome::ALL`).
    outcomes: [AtomicU64; Outcome::ALL.len()],
    /// Rows an earlier run already finished (a resume).
    pub skipped: AtomicU64,
    /// Requests sent (all attempts).
    pub attempts: AtomicU64,
    /// Requests answered 429.
    pub throttled: AtomicU64,
    /// Of the requests sent, those that read a user (`--skip-unchanged`, `--undo-file`, audits).
    pub reads: AtomicU64,
    /// Requests that carried several rows (Graph `$batch`): each of their rows' attempts is
    /// counted in `attempts` too.
    pub batches: AtomicU64,
    /// Rows whose password change cannot be undone (an undo file cannot read a password back).
    pub not_undoable: AtomicU64,
    /// An audit's counts: its outcomes are shown, not `updated`.
    audit: bool,
    /// Customers done of those in the input (set once the input's first pass counted them).
    customers: OnceLock<CustomerProgress>,
}

impl Counters {
    /// The counters of an audit.
    pub fn for_audit() -> Counters {
        Counters {
            audit: true,
            ..Counters::default()
        }
    }

    /// Counts a recorded row.
    pub fn record(&self, outcome: Outcome) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the customers to count done: each one's rows in the input (from the first pass).
    pub fn set_customers(&self, rows_per_customer: std::collections::HashMap<uuid::Uuid, u64>) {
        let _ = self.customers.set(CustomerProgress::new(rows_per_customer));
    }

    /// One of `customer`'s rows is finished (recorded, or finished by an earlier run).
    pub fn customer_row_done(&self, customer: &str) {
        if let Ok(customer) = customer.parse() {
            self.customer_id_row_done(customer);
        }
    }

    /// The same for a customer id already parsed (no text round trip per row).
    pub fn customer_id_row_done(&self, customer: uuid::Uuid) {
        if let Some(progress) = self.customers.get() {
            progress.row_done(customer);
        }
    }

    /// Customers with every row finished, and customers in the input (None before the
    /// input was counted).
    pub fn customers_done(&self) -> Option<(u64, u64)> {
        let p = self.customers.get()?;
        Some((p.done.load(Ordering::Relaxed), p.total))
    }

    /// Whether these are an audit's counts (its outcomes are shown, not `updated`).
    pub fn is_audit(&self) -> bool {
        self.audit
    }

    /// Rows recorded with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Ordering::Relaxed)
    }
}

/// Customers done: rows left per customer, counted down as rows finish.
#[derive(Debug)]
struct CustomerProgress {
    left: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, u64>>,
    total: u64,
    done: AtomicU64,
}

impl CustomerProgress {
    fn new(rows_per_customer: std::collections::HashMap<uuid::Uuid, u64>) -> CustomerProgress {
        CustomerProgress {
            total: rows_per_customer.len() as u64,
            left: std::sync::Mutex::new(rows_per_customer),
            done: AtomicU64::new(0),
        }
    }

    fn row_done(&self, customer: uuid::Uuid) {
        let Ok(mut left) = self.left.lock() else {
            return;
        };
        if let Some(n) = left.get_mut(&customer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                left.remove(&customer);
                self.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How the run is paced right now, for the progress display and the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaceNow {
    /// The pool-wide adaptive pace (requests/s), when below the ceiling.
    pub pool: Option<f64>,
    /// Customers with a pace of their own (throttled on their own).
    pub customers_paced: usize,
    /// The slowest of those: customer and pace (requests/s), slowest first (at most 3).
    pub slowest: Vec<(uuid::Uuid, f64)>,
}

impl PaceNow {
    /// The run's pace as adapted to the API: the pool-wide one, or, when a single customer
    /// was paced on its own (a one-tenant run), the slower of it and the pool-wide one.
    pub fn adapted(&self) -> Option<f64> {
        match (self.pool, self.customers_paced, self.slowest.first()) {
            (Some(pool), 1, Some((_, pace))) => Some(pool.min(*pace)),
            (Some(pool), ..) => Some(pool),
            (None, 1, Some((_, pace))) => Some(*pace),
            _ => None,
        }
    }
}

/// A row's final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Updated,
    Failed,
    Invalid,
    Planned,
    Interrupted,
    /// Already as desired (an audit, or `run --skip-unchanged`).
    Unchanged,
    /// An audit: sending the row would change the user.
    WouldChange,
    /// An audit: the user or the customer does not exist (404).
    NotFound,
    /// An audit: the partner may not read this customer's users (403).
    Forbidden,
    /// Not changed on purpose: an administrator's password (`--include-admins` changes it), or
    /// a user listed in `--protect-file`.
    Protected,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Protected,
        Outcome::WouldChange,
        Outcome::Planned,
        Outcome::NotFound,
        Outcome::Forbidden,
        Outcome::Failed,
        Outcome::Invalid,
        Outcome::Interrupted,
    ];

    /// Whether the row needs a person's attention (it makes the exit code 1).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Outcome::Failed
                | Outcome::Invalid
                | Outcome::Interrupted
                | Outcome::NotFound
                | Outcome::Forbidden
        )
    }

    /// The outcome's place in `ALL`.
    pub fn index(self) -> usize {
        Outcome::ALL
            .iter()
            .position(|o| *o == self)
            .expect("every outcome is in ALL")
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Planned => "planned",
            Outcome::Interrupted => "interrupted",
            Outcome::Unchanged => "unchanged",
            Outcome::WouldChange => "would_change",
            Outcome::NotFound => "not_found",
            Outcome::Forbidden => "forbidden",
            Outcome::Protected => "protected",
        }
    }
}
