//! Sums up a run: counts per outcome and per error, attempts and 429s, time and rate, the exit code, as text for stderr and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::pool::StopReason;
use crate::results::{Outcome, Record};

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ROWS_FAILED: u8 = 1;
    pub const FATAL: u8 = 2;
    pub const INTERRUPTED: u8 = 130;
}

/// Counts kept by the results writer as records are written.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub outcomes: BTreeMap<Outcome, u64>,
    /// (HTTP status, Partner Center code) of failed rows -> (count, first message).
    pub errors: BTreeMap<(Option<u16>, Option<i64>), (u64, String)>,
    pub recorded: u64,
}

impl Tally {
    pub fn add(&mut self, r: &Record) {
        self.recorded += 1;
        *self.outcomes.entry(r.outcome).or_default() += 1;
        if r.outcome == Outcome::Failed {
            let e = self
                .errors
                .entry((r.http_status, r.error_code))
                .or_insert_with(|| (0, r.message.clone()));
            e.0 += 1;
        }
    }

    pub fn count(&self, o: Outcome) -> u64 {
        self.outcomes.get(&o).copied().unwrap_or(0)
    }
}

/// One group of failures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ErrorGroup {
    pub http_status: Option<u16>,
    pub error_code: Option<i64>,
    pub count: u64,
    pub example: String,
}

/// The end-of-run summary (also written by `--summary-json`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub input: PathBuf,
    pub results: PathBuf,
    pub dry_run: bool,
    /// Data rows in the input.
    pub rows: u64,
    /// Rows with a record in the results file.
    pub recorded: u64,
    /// Rows the run never reached (it stopped early).
    pub not_attempted: u64,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub errors: Vec<ErrorGroup>,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Requests answered 429.
    pub throttled: u64,
    pub elapsed_seconds: f64,
    /// Rows recorded per second.
    pub rows_per_second: f64,
    /// Requests sent per second.
    pub requests_per_second: f64,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    pub exit_code: u8,
}

/// What the summary is built from.
pub struct SummaryInput<'a> {
    pub input: PathBuf,
    pub results: PathBuf,
    pub dry_run: bool,
    pub rows: u64,
    pub tally: &'a Tally,
    pub attempts: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    pub stopped: Option<&'a StopReason>,
}

impl Summary {
    pub fn new(s: SummaryInput<'_>) -> Summary {
        let t = s.tally;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let outcomes = Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), t.count(*o)))
            .collect();
        let mut errors: Vec<ErrorGroup> = t
            .errors
            .iter()
            .map(|((status, code), (count, example))| ErrorGroup {
                http_status: *status,
                error_code: *code,
                count: *count,
                example: example.clone(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        let bad_rows =
            t.count(Outcome::Failed) + t.count(Outcome::Invalid) + t.count(Outcome::Interrupted);
        let exit_code = match s.stopped {
            Some(StopReason::Interrupted) => exit::INTERRUPTED,
            Some(_) => exit::FATAL,
            None if bad_rows > 0 || t.recorded < s.rows => exit::ROWS_FAILED,
            None => exit::OK,
        };
        Summary {
            input: s.input,
            results: s.results,
            dry_run: s.dry_run,
            rows: s.rows,
            recorded: t.recorded,
            not_attempted: s.rows.saturating_sub(t.recorded),
            outcomes,
            errors,
            attempts: s.attempts,
            throttled: s.throttled,
            elapsed_seconds: round3(s.elapsed.as_secs_f64()),
            rows_per_second: round3(t.recorded as f64 / secs),
            requests_per_second: round3(s.attempts as f64 / secs),
            stopped: s.stopped.map(|r| r.to_string()),
            exit_code,
        }
    }

    /// The human-readable summary printed on stderr.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let title = if self.dry_run { "Dry run" } else { "Run" };
        let _ = writeln!(
            out,
            "{title} finished in {:.1}s: {} of {} rows recorded in {}",
            self.elapsed_seconds,
            self.recorded,
            self.rows,
            self.results.display()
        );
        let counts: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  outcomes: {}",
            if counts.is_empty() {
                "none".into()
            } else {
                counts.join(", ")
            }
        );
        if !self.dry_run {
            let _ = writeln!(
                out,
                "  requests: {} sent ({} answered 429), {:.1} rows/s, {:.1} requests/s",
                self.attempts, self.throttled, self.rows_per_second, self.requests_per_second
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "  failures:");
            for e in &self.errors {
                let status = e
                    .http_status
                    .map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}"));
                let code = e
                    .error_code
                    .map(|c| format!(", code {c}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {:>6} × {status}{code}: {}", e.count, e.example);
            }
        }
        if let Some(outcome) = self.outcomes.get("invalid").filter(|n| **n > 0) {
            let _ = writeln!(
                out,
                "  {outcome} invalid rows were not sent: the results file gives each line and reason"
            );
        }
        if let Some(reason) = &self.stopped {
            let _ = writeln!(out, "  STOPPED: {reason}");
        }
        if self.not_attempted > 0 {
            let _ = writeln!(
                out,
                "  {} rows not attempted: they have no record in the results file; run them again{}",
                self.not_attempted,
                if self.stopped.is_some() {
                    " once the cause is fixed"
                } else {
                    ""
                }
            );
        }
        out
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
