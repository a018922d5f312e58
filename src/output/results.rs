//! Writes the results file: one CSV record per input row, from a single writer thread that workers never wait on, flushed as rows finish.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::core::run_state::Counters;
use crate::core::run_state::Outcome;
use crate::core::run_state::{Stop, StopReason};
use crate::output::reader::{AUDIT_COLUMNS, COLUMNS};
use std::collections::BTreeMap;

/// One line of the results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub line: u64,
    pub customer_id: String,
    pub user_id: String,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    /// Short, single line, no secrets.
    pub message: String,
    pub attempts: u32,
    pub elapsed_ms: u64,
    pub request_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub finished_at: SystemTime,
    /// The body a dry run would send (passwords redacted); empty otherwise.
    pub body: Option<String>,
    /// FNV-1a of the input row's fields: a resume sends a row again when its content changed.
    pub row_hash: u64,
    /// Requests for the row answered 429.
    pub throttled: u32,
    /// An audit (or a skipped unchanged row): each field the row sets, live against desired.
    pub fields: Vec<crate::targets::FieldChange>,
    /// What names the user and tenant besides the GUIDs (the last columns).
    pub context: crate::input::context::Context,
}

impl Record {
    /// A record for a row that failed validation.
    pub fn invalid(inv: &crate::input::rows::Invalid) -> Record {
        let ids = (inv.customer.clone(), inv.user.clone());
        Record {
            outcome: Outcome::Invalid,
            message: inv.reason.clone(),
            ..Record::nothing_sent(inv.line, ids, inv.hash, (*inv.context).clone())
        }
    }

    /// A record for a row nothing was sent for (its outcome and message still to be set).
    pub fn unsent(row: &crate::input::rows::Row) -> Record {
        let ids = (row.customer.to_string(), row.user.to_string());
        Record::nothing_sent(row.line, ids, row.hash, row.context.clone())
    }

    fn nothing_sent(
        line: u64,
        (customer_id, user_id): (String, String),
        row_hash: u64,
        context: crate::input::context::Context,
    ) -> Record {
        Record {
            line,
            customer_id,
            user_id,
            outcome: Outcome::Failed,
            http_status: None,
            error_code: None,
            message: String::new(),
            attempts: 0,
            elapsed_ms: 0,
            request_id: None,
            correlation_id: None,
            finished_at: SystemTime::now(),
            body: None,
            row_hash,
            throttled: 0,
            fields: Vec::new(),
            context,
        }
    }

    /// The context columns' cells (`CONTEXT_COLUMNS`), made safe for spreadsheets.
    fn context_cells(&self) -> [Cow<'_, str>; 3] {
        [
            spreadsheet_safe(&self.context.upn),
            spreadsheet_safe(&self.context.customer_domain),
            Cow::Owned(self.context.kept_cell()),
        ]
    }

    /// The record's cells, in `COLUMNS` order, made safe for spreadsheets.
    pub fn cells(&self) -> [Cow<'_, str>; 18] {
        let opt = |v: Option<String>| Cow::Owned(v.unwrap_or_default());
        let [upn, domain, kept] = self.context_cells();
        [
            Cow::Owned(self.line.to_string()),
            spreadsheet_safe(&self.customer_id),
            spreadsheet_safe(&self.user_id),
            Cow::Borrowed(self.outcome.as_str()),
            opt(self.http_status.map(|s| s.to_string())),
            opt(self.error_code.clone()),
            spreadsheet_safe(&self.message),
            Cow::Owned(self.attempts.to_string()),
            Cow::Owned(self.elapsed_ms.to_string()),
            opt(self.request_id.map(|u| u.to_string())),
            opt(self.correlation_id.map(|u| u.to_string())),
            Cow::Owned(humantime::format_rfc3339_millis(self.finished_at).to_string()),
            self.body
                .as_deref()
                .map_or(Cow::Borrowed(""), spreadsheet_safe),
            Cow::Owned(format!("{:016x}", self.row_hash)),
            Cow::Owned(self.throttled.to_string()),
            upn,
            domain,
            kept,
        ]
    }

    /// The audit file's lines for this record: one per field (one with no field when there is none).
    pub fn audit_lines(&self) -> Vec<[Cow<'_, str>; 18]> {
        let opt = |v: Option<String>| Cow::Owned(v.unwrap_or_default());
        let line = |field: &'static str, current: Option<&str>, desired: Option<&str>| {
            let [upn, domain, kept] = self.context_cells();
            [
                Cow::Owned(self.line.to_string()),
                spreadsheet_safe(&self.customer_id),
                spreadsheet_safe(&self.user_id),
                Cow::Borrowed(self.outcome.as_str()),
                Cow::Borrowed(field),
                current.map_or(Cow::Borrowed(""), |c| {
                    Cow::Owned(spreadsheet_safe(c).into_owned())
                }),
                desired.map_or(Cow::Borrowed(""), |d| {
                    Cow::Owned(spreadsheet_safe(d).into_owned())
                }),
                opt(self.http_status.map(|s| s.to_string())),
                opt(self.error_code.clone()),
                spreadsheet_safe(&self.message),
                Cow::Owned(self.attempts.to_string()),
                Cow::Owned(self.elapsed_ms.to_string()),
                opt(self.request_id.map(|u| u.to_string())),
                opt(self.correlation_id.map(|u| u.to_string())),
                Cow::Owned(humantime::format_rfc3339_millis(self.finished_at).to_string()),
                upn,
                domain,
                kept,
            ]
        };
        // Unchanged rows list their fields too, so a report can say "23 already DE".
        let fields: Vec<_> = self
            .fields
            .iter()
            .filter(|f| f.changes || self.outcome == Outcome::Unchanged)
            .collect();
        if fields.is_empty() {
            return vec![line("", None, None)];
        }
        fields
            .iter()
            .map(|f| line(f.field, f.current.as_deref(), f.desired.as_deref()))
            .collect()
    }
}

/// Prefixes a cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) with `'`.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A fatal problem with the results file itself.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("results file {path} already exists: pass --force to overwrite it, or choose another with --out")]
    Exists { path: PathBuf },
    #[error("cannot create results file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write results file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Records the input reader may have queued before it waits for the writer.
const READER_BACKLOG: usize = 4096;

/// Where finished rows go. Workers' sends never wait; the input reader's wait while the writer
/// is far behind, so a dry run of millions of rows cannot queue them all in memory.
#[derive(Clone, Debug)]
pub struct Sink {
    tx: mpsc::UnboundedSender<Record>,
    backlog: Arc<Backlog>,
}

/// Records sent and not yet written. The count is atomic so that the workers' sends and the
/// writer never take a lock; the lock and condvar are only for the reader waiting on a long
/// backlog, and the writer only wakes it when the count drops below the limit.
#[derive(Debug, Default)]
struct Backlog {
    queued: AtomicUsize,
    lock: std::sync::Mutex<()>,
    drained: std::sync::Condvar,
}

impl Sink {
    /// Queues a record; never waits (for the workers).
    pub fn send(&self, mut record: Record) {
        // Every record passes here: redacted once more (a worker still holds its row's password).
        if let std::borrow::Cow::Owned(clean) = crate::core::redact::redact(&record.message) {
            record.message = clean;
        }
        let context = record.context.values_mut();
        for value in record
            .fields
            .iter_mut()
            .filter_map(|f| f.current.as_mut())
            .chain(context)
        {
            if let std::borrow::Cow::Owned(clean) = crate::core::redact::redact(value) {
                *value = clean;
            }
        }
        self.backlog.queued.fetch_add(1, Ordering::Relaxed);
        // The writer only goes away after every sender is dropped: it drains even after a
        // write error (which stops the run).
        let _ = self.tx.send(record);
    }

    /// Queues a record, first waiting while the writer is more than a few thousand records
    /// behind (for the input reader's thread: never call it from an async task).
    pub fn send_paced(&self, record: Record) {
        if self.backlog.queued.load(Ordering::Acquire) >= READER_BACKLOG {
            let mut guard = self.backlog.lock.lock().expect("backlog lock");
            // Checked under the lock the writer takes to notify: no wake-up is missed.
            while self.backlog.queued.load(Ordering::Acquire) >= READER_BACKLOG {
                guard = self.backlog.drained.wait(guard).expect("backlog lock");
            }
        }
        self.send(record);
    }
}

impl Backlog {
    fn written(&self) {
        if self.queued.fetch_sub(1, Ordering::AcqRel) == READER_BACKLOG {
            // Just dropped below the limit: the reader may be waiting.
            let _guard = self.lock.lock().expect("backlog lock");
            self.drained.notify_all();
        }
    }
}

/// The writer thread; `finish` waits for it after every `Sink` is dropped.
pub struct Writer {
    thread: std::thread::JoinHandle<(Tally, Option<ResultsError>)>,
}

impl Writer {
    /// The tally of what was recorded, and the write error that stopped the writer, if any.
    pub fn finish(self) -> (Tally, Option<ResultsError>) {
        self.thread
            .join()
            .expect("the results writer thread panicked")
    }
}

/// How the results file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new file; an existing one is refused unless `overwrite`.
    Create { overwrite: bool },
    /// Records are added to an existing results file (a resume).
    Append,
}

/// What the file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A run's results: one record per row, `COLUMNS`.
    Results,
    /// An audit: one line per field a row sets, `AUDIT_COLUMNS`.
    Audit,
}

/// Opens the results file (a new one gets its header), checks it can be written, and starts the writer.
pub fn start(
    path: &Path,
    mode: Mode,
    layout: Layout,
    stop: Arc<Stop>,
    counters: Arc<Counters>,
) -> Result<(Sink, Writer), ResultsError> {
    let write_err = |source| ResultsError::Write {
        path: path.to_owned(),
        source,
    };
    let full = match layout {
        Layout::Results => COLUMNS.len(),
        Layout::Audit => AUDIT_COLUMNS.len(),
    };
    // Records added to an older version's file have its columns: the context columns, which
    // it has not, are left off, so every record keeps the header's number of fields.
    let mut width = full;
    if mode == Mode::Append {
        // A torn last record from a killed run is cut off: the new records start on a line of
        // their own, outside any quote it left open.
        crate::output::reader::cut_torn_tail(path)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
        width = crate::output::reader::header_width(path)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?
            .clamp(1, full);
    }
    let file = open(path, mode)?;
    let mut csv = csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(64 * 1024, file));
    if let Mode::Create { .. } = mode {
        let header: &[&str] = match layout {
            Layout::Results => &COLUMNS,
            Layout::Audit => &AUDIT_COLUMNS,
        };
        csv.write_record(header)
            .map_err(|e| write_err(into_io(e)))?;
    }
    csv.flush().map_err(write_err)?;

    let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
    let backlog = Arc::new(Backlog::default());
    let writer_backlog = backlog.clone();
    let path = path.to_owned();
    let thread = std::thread::Builder::new()
        .name("results-writer".into())
        .spawn(move || {
            let mut tally = Tally::default();
            let mut failure = None;
            while let Some(record) = next(&mut rx) {
                writer_backlog.written();
                tally.add(&record);
                counters.record(record.outcome);
                counters.customer_row_done(&record.customer_id);
                if failure.is_some() {
                    continue;
                }
                let mut result = match layout {
                    Layout::Results => csv
                        .write_record(record.cells().iter().take(width).map(|c| c.as_bytes()))
                        .map_err(into_io),
                    Layout::Audit => record.audit_lines().iter().try_for_each(|cells| {
                        csv.write_record(cells.iter().take(width).map(|c| c.as_bytes()))
                            .map_err(into_io)
                    }),
                };
                // Flush whenever the queue is empty: prompt when rows trickle in, batched when they pour.
                if result.is_ok() && rx.is_empty() {
                    result = csv.flush();
                }
                if let Err(e) = result {
                    tracing::error!(file = %path.display(), error = %e, "cannot write the results file");
                    stop.stop(StopReason::WriteFailed(e.to_string()));
                    failure = Some(e);
                }
            }
            if failure.is_none() {
                if let Err(e) = csv.flush().and_then(|_| {
                    csv.get_ref().get_ref().sync_data()
                }) {
                    failure = Some(e);
                }
            }
            let error = failure.map(|source| ResultsError::Write { path, source });
            (tally, error)
        })
        .expect("spawn the results writer thread");
    Ok((Sink { tx, backlog }, Writer { thread }))
}

/// How long the writer, finding its queue empty, waits before it sleeps until the next record.
/// Records that arrive meanwhile cost the workers no wake-up of this thread: under load it
/// wakes about once per interval instead of once per row. Nothing waits on it: the file was
/// flushed when the queue emptied.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// The next record for the writer, or None when every sender is gone.
fn next(rx: &mut mpsc::UnboundedReceiver<Record>) -> Option<Record> {
    match rx.try_recv() {
        Ok(record) => return Some(record),
        Err(mpsc::error::TryRecvError::Disconnected) => return None,
        Err(mpsc::error::TryRecvError::Empty) => {}
    }
    std::thread::sleep(LINGER);
    rx.blocking_recv()
}

fn open(path: &Path, mode: Mode) -> Result<File, ResultsError> {
    let mut options = std::fs::OpenOptions::new();
    match mode {
        Mode::Create { overwrite: true } => options.write(true).create(true).truncate(true),
        Mode::Create { overwrite: false } => options.write(true).create_new(true),
        Mode::Append => options.append(true),
    };
    options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            ResultsError::Exists {
                path: path.to_owned(),
            }
        } else {
            ResultsError::Create {
                path: path.to_owned(),
                source,
            }
        }
    })
}

fn into_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+1"), "'+1");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("plain"), "plain");
        assert_eq!(spreadsheet_safe(""), "");
    }

    fn record(line: u64) -> Record {
        Record {
            line,
            customer_id: "c".into(),
            user_id: "u".into(),
            outcome: Outcome::Updated,
            http_status: Some(200),
            error_code: None,
            message: String::new(),
            attempts: 1,
            elapsed_ms: 1,
            request_id: None,
            correlation_id: None,
            finished_at: SystemTime::UNIX_EPOCH,
            body: None,
            row_hash: 0,
            throttled: 0,
            fields: Vec::new(),
            context: Default::default(),
        }
    }

    #[test]
    fn the_reader_waits_on_a_full_backlog_until_the_writer_catches_up() {
        use std::time::Duration;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = Sink {
            tx,
            backlog: Arc::new(Backlog::default()),
        };
        // Workers never wait, even past the limit.
        for line in 0..=READER_BACKLOG as u64 {
            sink.send(record(line));
        }
        let reader = sink.clone();
        let (done, waited) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            reader.send_paced(record(u64::MAX));
            done.send(()).unwrap();
        });
        assert!(
            waited.recv_timeout(Duration::from_millis(200)).is_err(),
            "the reader queued on a full backlog"
        );
        // One record written leaves the backlog at the limit: still full.
        rx.try_recv().unwrap();
        sink.backlog.written();
        assert!(waited.recv_timeout(Duration::from_millis(200)).is_err());
        // The next one drops it below: the reader is woken and queues its record.
        rx.try_recv().unwrap();
        sink.backlog.written();
        waited
            .recv_timeout(Duration::from_secs(10))
            .expect("the reader was woken");
        thread.join().unwrap();
        assert_eq!(sink.backlog.queued.load(Ordering::Relaxed), READER_BACKLOG);
        let mut last = None;
        while let Ok(r) = rx.try_recv() {
            last = Some(r.line);
        }
        assert_eq!(last, Some(u64::MAX));
    }

    #[test]
    fn cells_follow_the_documented_columns() {
        let r = Record {
            outcome: Outcome::Failed,
            http_status: Some(404),
            error_code: Some("60002".into()),
            message: "User not found.".into(),
            elapsed_ms: 12,
            finished_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500),
            row_hash: 0xab,
            throttled: 2,
            ..record(7)
        };
        let cells: Vec<String> = r.cells().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cells,
            [
                "7",
                "c",
                "u",
                "failed",
                "404",
                "60002",
                "User not found.",
                "1",
                "12",
                "",
                "",
                "1970-01-01T00:00:01.500Z",
                "",
                "00000000000000ab",
                "2",
                "",
                "",
                ""
            ]
        );
    }
}

/// Counts kept by the results writer as records are written.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub outcomes: BTreeMap<Outcome, u64>,
    /// (HTTP status, Partner Center code) of failed rows -> (count, first message).
    pub errors: BTreeMap<(Option<u16>, Option<String>), (u64, String)>,
    pub recorded: u64,
    /// Customers seen -> whether one of their rows is a problem (at most `MAX_CUSTOMERS`).
    pub customers: std::collections::HashMap<String, bool>,
}

/// Customers a tally tells apart; a crafted file cannot grow it without bound.
const MAX_CUSTOMERS: usize = 200_000;

impl Tally {
    /// Counts a row's customer, and whether the row is a problem.
    pub fn add_customer(&mut self, customer: &str, outcome: Outcome) {
        let problem = outcome.is_problem();
        if let Some(p) = self.customers.get_mut(customer) {
            *p |= problem;
        } else if self.customers.len() < MAX_CUSTOMERS {
            self.customers.insert(customer.to_string(), problem);
        }
    }

    /// Customers seen, and those with a problem row.
    pub fn customer_counts(&self) -> (u64, u64) {
        let problems = self.customers.values().filter(|p| **p).count();
        (self.customers.len() as u64, problems as u64)
    }

    pub fn add(&mut self, r: &Record) {
        self.add_customer(&r.customer_id, r.outcome);
        self.add_parts(
            r.outcome,
            r.http_status,
            r.error_code.as_deref(),
            &r.message,
        );
    }

    pub fn add_parts(
        &mut self,
        outcome: Outcome,
        http_status: Option<u16>,
        error_code: Option<&str>,
        message: &str,
    ) {
        self.recorded += 1;
        *self.outcomes.entry(outcome).or_default() += 1;
        if outcome == Outcome::Failed {
            let e = self
                .errors
                .entry((http_status, error_code.map(str::to_string)))
                .or_insert_with(|| (0, message.to_string()));
            e.0 += 1;
        }
    }

    pub fn count(&self, o: Outcome) -> u64 {
        self.outcomes.get(&o).copied().unwrap_or(0)
    }
}
