//! Sums up a run: counts per outcome and per error, attempts and 429s, time and rate, the exit code, as text for stderr and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::output::results::Tally;

use crate::core::run_state::Outcome;
use crate::core::run_state::StopReason;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ROWS_FAILED: u8 = 1;
    pub const FATAL: u8 = 2;
    pub const INTERRUPTED: u8 = 130;
}

/// One group of failures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ErrorGroup {
    pub http_status: Option<u16>,
    /// Written as a JSON number when it is one (Partner Center's, as before), else as a string.
    #[serde(serialize_with = "code_as_json")]
    pub error_code: Option<String>,
    pub count: u64,
    pub example: String,
}

/// An error code in the summary JSON: a number when it is a decimal integer (so a file written
/// before codes became text reads the same), else a string.
fn code_as_json<S: serde::Serializer>(code: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match code.as_deref().map(|c| (c, c.parse::<i64>())) {
        None => s.serialize_none(),
        Some((_, Ok(n))) => s.serialize_i64(n),
        Some((c, Err(_))) => s.serialize_str(c),
    }
}

/// The end-of-run summary (also written by `--summary-json`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub input: PathBuf,
    pub results: PathBuf,
    pub dry_run: bool,
    /// An audit (reads only).
    pub audit: bool,
    /// Data rows in the input.
    pub rows: u64,
    /// The SHA-256 of the input file, in hex (None when the run stopped before reading it).
    pub input_sha256: Option<String>,
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
    /// Of the requests, those that read a user first (`--skip-unchanged`, `--undo-file`).
    pub reads: u64,
    /// The requests that carried several rows (Graph `$batch`); `attempts` counts their rows.
    pub batches: u64,
    /// Rows whose password change an undo file cannot revert (a password cannot be read back).
    pub not_undoable: u64,
    pub elapsed_seconds: f64,
    /// Rows recorded per second.
    pub rows_per_second: f64,
    /// Requests sent per second.
    pub requests_per_second: f64,
    /// Rows an earlier run had already finished (a resume): not sent again.
    pub skipped: u64,
    /// Outcomes of every input row as the results file now stands (earlier runs included).
    pub final_outcomes: BTreeMap<&'static str, u64>,
    /// Customers in the results file as it now stands, and those with a failed, invalid,
    /// interrupted, not-found or forbidden row.
    pub customers: u64,
    pub customers_with_problems: u64,
    /// The pace at the end, in requests per second, when 429s or rate-limit headers made it
    /// adapt below the ceiling.
    pub adapted_pace: Option<f64>,
    /// Customers that were throttled on their own and paced below the others.
    pub customers_paced_alone: usize,
    /// The slowest of those, slowest first (at most 3): customer and pace (requests/s).
    pub slowest_customers: Vec<SlowCustomer>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    pub exit_code: u8,
    /// The input had no data rows: nothing was sent, no results file written.
    #[serde(skip)]
    pub nothing_to_do: bool,
}

/// A customer paced on its own, below the others.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SlowCustomer {
    pub customer_id: String,
    /// Requests per second.
    pub pace: f64,
}

/// What the summary is built from.
pub struct SummaryInput<'a> {
    pub input: PathBuf,
    pub results: PathBuf,
    pub dry_run: bool,
    pub audit: bool,
    pub rows: u64,
    pub tally: &'a Tally,
    pub attempts: u64,
    pub throttled: u64,
    pub reads: u64,
    pub batches: u64,
    pub not_undoable: u64,
    pub elapsed: Duration,
    pub stopped: Option<&'a StopReason>,
    pub skipped: u64,
    /// The results file's tally after compaction: every row's final outcome.
    pub final_tally: &'a Tally,
    /// How the run was paced at the end, and the ceiling.
    pub pace: crate::core::run_state::PaceNow,
    pub ceiling: crate::settings::Rate,
}

impl Summary {
    pub fn new(s: SummaryInput<'_>) -> Summary {
        let t = s.tally;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let outcomes = outcome_counts(t);
        let mut errors: Vec<ErrorGroup> = t
            .errors
            .iter()
            .map(|((status, code), (count, example))| ErrorGroup {
                http_status: *status,
                error_code: code.clone(),
                count: *count,
                example: example.clone(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        let f = s.final_tally;
        let bad_rows: u64 = Outcome::ALL
            .iter()
            .filter(|o| o.is_problem())
            .map(|o| f.count(*o))
            .sum();
        let (customers, customers_with_problems) = f.customer_counts();
        let exit_code = match s.stopped {
            Some(StopReason::Interrupted) => exit::INTERRUPTED,
            Some(_) => exit::FATAL,
            None if bad_rows > 0 || f.recorded < s.rows => exit::ROWS_FAILED,
            None => exit::OK,
        };
        Summary {
            input: s.input,
            results: s.results,
            dry_run: s.dry_run,
            audit: s.audit,
            rows: s.rows,
            input_sha256: None,
            recorded: t.recorded,
            not_attempted: s
                .rows
                .saturating_sub(f.recorded.max(t.recorded + s.skipped)),
            skipped: s.skipped,
            final_outcomes: outcome_counts(f),
            customers,
            customers_with_problems,
            outcomes,
            errors,
            attempts: s.attempts,
            throttled: s.throttled,
            reads: s.reads,
            batches: s.batches,
            not_undoable: s.not_undoable,
            elapsed_seconds: round3(s.elapsed.as_secs_f64()),
            rows_per_second: round3(t.recorded as f64 / secs),
            requests_per_second: round3(s.attempts as f64 / secs),
            customers_paced_alone: s.pace.customers_paced,
            slowest_customers: s
                .pace
                .slowest
                .iter()
                .map(|(c, pace)| SlowCustomer {
                    customer_id: c.to_string(),
                    pace: round3(*pace),
                })
                .collect(),
            adapted_pace: s
                .pace
                .adapted()
                .filter(|p| match s.ceiling {
                    crate::settings::Rate::PerSecond(c) => *p < c * 0.999,
                    crate::settings::Rate::Unlimited => true,
                })
                .map(round3),
            stopped: s.stopped.map(|r| r.to_string()),
            exit_code,
            nothing_to_do: false,
        }
    }

    /// The summary of `--compact`: the results file's final state.
    pub fn compacted(input: PathBuf, results: PathBuf, rows: u64, tally: &Tally) -> Summary {
        let mut s = Summary::new(SummaryInput {
            input,
            results,
            dry_run: false,
            audit: false,
            rows,
            tally,
            attempts: 0,
            throttled: 0,
            reads: 0,
            batches: 0,
            not_undoable: 0,
            elapsed: Duration::ZERO,
            stopped: None,
            skipped: 0,
            final_tally: tally,
            pace: Default::default(),
            ceiling: crate::settings::Rate::Unlimited,
        });
        s.recorded = tally.recorded;
        s
    }

    /// The summary of a run whose input has a header and no data rows: nothing is sent, no
    /// results file is written, and the exit code is 1 (a broken export is not a success).
    pub fn no_data_rows(input: PathBuf, results: PathBuf, dry_run: bool, audit: bool) -> Summary {
        let empty = Tally::default();
        let mut s = Summary::new(SummaryInput {
            input,
            results,
            dry_run,
            audit,
            rows: 0,
            tally: &empty,
            attempts: 0,
            throttled: 0,
            reads: 0,
            batches: 0,
            not_undoable: 0,
            elapsed: Duration::ZERO,
            stopped: None,
            skipped: 0,
            final_tally: &empty,
            pace: Default::default(),
            ceiling: crate::settings::Rate::Unlimited,
        });
        let name = s.input.file_name().unwrap_or(s.input.as_os_str());
        s.stopped = Some(format!(
            "no data rows in {}: nothing to do",
            name.to_string_lossy()
        ));
        s.exit_code = exit::ROWS_FAILED;
        s.nothing_to_do = true;
        s
    }

    /// The summary written when a fatal error ends the run (exit 2): `stopped` is the error.
    /// Counts are those known without the run (zero).
    pub fn fatal(
        input: PathBuf,
        results: PathBuf,
        dry_run: bool,
        audit: bool,
        error: String,
    ) -> Summary {
        let mut s = Summary::no_data_rows(input, results, dry_run, audit);
        s.stopped = Some(error);
        s.exit_code = exit::FATAL;
        s.nothing_to_do = false;
        s
    }

    /// The summary as one log event (for `--log-format json`): its fields, the maps as JSON.
    pub fn log(&self) {
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    input = %self.input.display(),
                    results = %self.results.display(),
                    dry_run = self.dry_run,
                    audit = self.audit,
                    rows = self.rows,
                    input_sha256 = self.input_sha256.as_deref(),
                    recorded = self.recorded,
                    not_attempted = self.not_attempted,
                    outcomes = %to_json(&self.outcomes),
                    errors = %to_json(&self.errors),
                    attempts = self.attempts,
                    throttled = self.throttled,
                    reads = self.reads,
                    batches = self.batches,
                    not_undoable = self.not_undoable,
                    elapsed_seconds = self.elapsed_seconds,
                    rows_per_second = self.rows_per_second,
                    requests_per_second = self.requests_per_second,
                    skipped = self.skipped,
                    final_outcomes = %to_json(&self.final_outcomes),
                    customers = self.customers,
                    customers_with_problems = self.customers_with_problems,
                    adapted_pace = self.adapted_pace,
                    customers_paced_alone = self.customers_paced_alone,
                    slowest_customers = %to_json(&self.slowest_customers),
                    stopped = self.stopped.as_deref(),
                    exit_code = self.exit_code,
                    "summary"
                )
            };
        }
        // A run that did not succeed is a warning, so that -q still shows it.
        if self.exit_code == exit::OK {
            event!(tracing::Level::INFO);
        } else {
            event!(tracing::Level::WARN);
        }
    }

    /// The human-readable summary printed on stderr.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.nothing_to_do {
            let _ = writeln!(
                out,
                "{} (no results file written)",
                self.stopped.as_deref().unwrap_or_default()
            );
            return out;
        }
        let title = match (self.audit, self.dry_run) {
            (true, _) => "Audit",
            (false, true) => "Dry run",
            (false, false) => "Run",
        };
        let _ = writeln!(
            out,
            "{title} finished in {:.1}s: {} of {} rows recorded in {}",
            self.elapsed_seconds,
            self.recorded,
            self.rows,
            self.results.display()
        );
        if let Some(sha256) = &self.input_sha256 {
            let _ = writeln!(out, "  input: {} data rows, SHA-256 {sha256}", self.rows);
        }
        let _ = writeln!(out, "  outcomes: {}", nonzero(&self.outcomes));
        if self.customers > 0 {
            let _ = writeln!(
                out,
                "  customers: {}, {} with problem rows",
                self.customers, self.customers_with_problems
            );
        }
        self.write_requests(&mut out);
        self.write_failures(&mut out);
        self.write_ending(&mut out);
        out
    }

    /// The requests, pace, undo and per-customer lines of [`Summary::to_text`].
    fn write_requests(&self, out: &mut String) {
        if !self.dry_run && self.attempts > 0 {
            let reads = match self.reads {
                0 => String::new(),
                r => format!("{r} reads and {} writes, ", self.attempts.saturating_sub(r)),
            };
            let batches = match self.batches {
                0 => String::new(),
                b => format!(" in {b} batches"),
            };
            let _ = writeln!(
                out,
                "  requests: {} sent{batches} ({reads}{} answered 429), {:.1} rows/s, {:.1} requests/s",
                self.attempts, self.throttled, self.rows_per_second, self.requests_per_second
            );
        }
        if let Some(pace) = self.adapted_pace {
            let _ = writeln!(
            out,
            "  pace adapted to the API: {pace:.1} requests/s at the end (429s or rate-limit headers)"
        );
        }
        if self.not_undoable > 0 {
            let _ = writeln!(
            out,
            "  not undoable: {} password changes (a password cannot be read back; they are not in the undo file)",
            self.not_undoable
        );
        }
        if self.customers_paced_alone > 0 {
            let slowest: Vec<String> = self
                .slowest_customers
                .iter()
                .map(|c| format!("{} {:.1}/s", c.customer_id, c.pace))
                .collect();
            let _ = writeln!(
                out,
                "  customers throttled on their own: {}, slowest: {}",
                self.customers_paced_alone,
                slowest.join(", ")
            );
        }
    }

    /// The failures by kind, with an example each.
    fn write_failures(&self, out: &mut String) {
        if !self.errors.is_empty() {
            let _ = writeln!(out, "  failures:");
            for e in &self.errors {
                let status = e
                    .http_status
                    .map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}"));
                let code = e
                    .error_code
                    .as_ref()
                    .map(|c| format!(", code {c}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {:>6} × {status}{code}: {}", e.count, e.example);
            }
        }
    }

    /// What an earlier run did, invalid rows, why the run stopped and what to do next.
    fn write_ending(&self, out: &mut String) {
        if self.skipped > 0 {
            let _ = writeln!(
                out,
                "  {} rows were already done by an earlier run; the results file now has: {}",
                self.skipped,
                nonzero(&self.final_outcomes)
            );
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
                "  {} rows not attempted: {}{}",
                self.not_attempted,
                // `audit` has no --resume: it only reads, so it is simply run again.
                if self.audit {
                    "run the audit again"
                } else {
                    "run again with --resume"
                },
                match self.stopped.as_deref() {
                    Some("interrupted") | None => "",
                    Some(_) => " once the cause is fixed",
                }
            );
        }
    }
}

/// "updated 12, failed 1": the outcomes with rows, or "none".
fn nonzero(counts: &BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn outcome_counts(t: &Tally) -> BTreeMap<&'static str, u64> {
    Outcome::ALL
        .iter()
        .map(|o| (o.as_str(), t.count(*o)))
        .collect()
}

/// A value as compact JSON, for a log field.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped_summary(audit: bool) -> Summary {
        let tally = Tally::default();
        Summary::new(SummaryInput {
            input: "in.csv".into(),
            results: "out.csv".into(),
            dry_run: false,
            audit,
            rows: 10,
            tally: &tally,
            attempts: 0,
            throttled: 0,
            reads: 0,
            batches: 0,
            not_undoable: 0,
            elapsed: Duration::from_secs(1),
            stopped: Some(&StopReason::Interrupted),
            skipped: 0,
            final_tally: &tally,
            pace: Default::default(),
            ceiling: crate::settings::Rate::Unlimited,
        })
    }

    #[test]
    fn resume_is_advised_only_where_the_command_takes_it() {
        let run = stopped_summary(false).to_text();
        assert!(
            run.contains("10 rows not attempted: run again with --resume"),
            "{run}"
        );
        let audit = stopped_summary(true).to_text();
        assert!(
            audit.contains("10 rows not attempted: run the audit again"),
            "{audit}"
        );
        assert!(!audit.contains("--resume"), "{audit}");
    }

    #[test]
    fn no_data_rows_is_exit_1_and_says_so() {
        let s = Summary::no_data_rows("dir/users.csv".into(), "out.csv".into(), false, false);
        assert_eq!(s.exit_code, exit::ROWS_FAILED);
        assert_eq!(
            s.to_text(),
            "no data rows in users.csv: nothing to do (no results file written)\n"
        );
    }

    #[test]
    fn error_codes_in_the_json_are_numbers_when_they_are_numbers() {
        let group = |code: Option<&str>| ErrorGroup {
            http_status: Some(404),
            error_code: code.map(str::to_string),
            count: 1,
            example: String::new(),
        };
        let json = |code| serde_json::to_value(group(code)).unwrap()["error_code"].clone();
        assert_eq!(json(Some("60002")), serde_json::json!(60002));
        assert_eq!(
            json(Some("Request_ResourceNotFound")),
            serde_json::json!("Request_ResourceNotFound")
        );
        assert_eq!(json(None), serde_json::Value::Null);
    }
}
