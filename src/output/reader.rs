//! Owns the results and audit files' schema (`COLUMNS`, `AUDIT_COLUMNS`) and reading them
//! back, for every reader: a resume, a compaction, the secrets hand-over and the writer's
//! append (`read`: typed, strictly checked records), the reports (`RowReader`: every column
//! as text) and the audit compaction (`Scanner`). All share one framing: a torn record (the
//! process killed mid-write, the disk full) is dropped with a warning and never swallows the
//! records after it; `read` refuses a crafted value with the file, line and column.
//! Uses `csv` and `core`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::core::run_state::Outcome;

/// What one pass over a results file found besides its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Torn or malformed records left out.
    pub skipped: u64,
    /// Where the last well-formed record ends (the header's end when there is none): what
    /// follows is torn or malformed, and an append starts here.
    pub complete_len: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ResumeError + '_ {
    move |source| ResumeError::Io {
        path: path.to_owned(),
        source,
    }
}

fn csv_io(path: &Path) -> impl Fn(csv::Error) -> ResumeError + '_ {
    move |e| io(path)(std::io::Error::other(e.to_string()))
}

/// An open results or audit file read record by record: the framing every reader shares.
///
/// It knows where each record starts and ends, which record is torn at the file's end (no
/// line end after it) and how to start again after a malformed record, so a quoted field cut
/// short does not run on through every later record. What a well-formed record holds is the
/// caller's check.
pub(crate) struct Scanner<'p> {
    path: &'p Path,
    reader: csv::Reader<BufReader<File>>,
    /// A second handle on the file, to find where a malformed record's second line starts.
    lines: BufReader<File>,
    len: u64,
    ends_cleanly: bool,
    pass: Pass,
}

/// One record the scanner read: where it sits and whether it was torn at the file's end.
pub(crate) struct Found {
    start: csv::Position,
    end: u64,
    /// The record's place in the file.
    pub span: Span,
    /// The record ends the file without a line end: the writer was stopped inside it.
    pub torn: bool,
}

impl Found {
    /// The results file's line where the record starts (the header is line 1).
    pub fn line(&self) -> u64 {
        self.start.line()
    }
}

impl<'p> Scanner<'p> {
    /// Opens `path` and reads its first record, the header, into `header` (empty when the
    /// file is).
    pub fn open(path: &'p Path, header: &mut csv::ByteRecord) -> Result<Self, ResumeError> {
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        let ends_cleanly = last_byte(path).map_err(io(path))? == Some(b'\n');
        let lines = BufReader::new(File::open(path).map_err(io(path))?);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(64 * 1024, file));
        if !reader.read_byte_record(header).map_err(csv_io(path))? {
            header.clear();
        }
        let pass = Pass {
            skipped: 0,
            complete_len: reader.position().byte(),
        };
        Ok(Scanner {
            path,
            reader,
            lines,
            len,
            ends_cleanly,
            pass,
        })
    }

    /// The next record into `record`, or `None` at the file's end.
    pub fn next(&mut self, record: &mut csv::ByteRecord) -> Result<Option<Found>, ResumeError> {
        let start = self.reader.position().clone();
        if !self
            .reader
            .read_byte_record(record)
            .map_err(csv_io(self.path))?
        {
            return Ok(None);
        }
        let end = self.reader.position().byte();
        Ok(Some(Found {
            span: Span {
                start: start.byte(),
                len: end - start.byte(),
            },
            torn: end >= self.len && !self.ends_cleanly,
            start,
            end,
        }))
    }

    /// Counts `found` as well-formed: an append may start after it.
    pub fn keep(&mut self, found: &Found) {
        self.pass.complete_len = found.end;
    }

    /// Leaves `found` out as torn or malformed and starts again on its second line, if it has
    /// one, so the records after it are kept.
    pub fn skip(&mut self, found: &Found) -> Result<(), ResumeError> {
        self.pass.skipped += 1;
        let next = next_line(&mut self.lines, found.start.byte()).map_err(io(self.path))?;
        if next < found.end {
            let mut at = csv::Position::new();
            at.set_byte(next).set_line(found.start.line() + 1);
            self.reader.seek(at).map_err(csv_io(self.path))?;
        }
        Ok(())
    }

    /// What the pass found; with records left out, a warning that says what that means.
    pub fn finish(self, meaning: &str) -> Pass {
        if self.pass.skipped > 0 {
            tracing::warn!(
                file = %self.path.display(),
                records = self.pass.skipped,
                "left out torn or malformed records (a run killed mid-write leaves one): {meaning}"
            );
        }
        self.pass
    }
}

/// Reads `path`'s records in file order, calling `each(span, record)` for each well-formed one.
///
/// A record is well-formed when it has the header's number of fields, ends with a line end and
/// each column holds what the writer writes there. A malformed record that runs over several
/// lines (a quoted field cut short, which would otherwise run on through every later record)
/// is dropped and reading starts again on its second line, so the records after it are kept.
/// A `line` above `max_line` (no input has that line) is an error naming the file, the
/// results file's line and the column.
pub fn read(
    path: &Path,
    max_line: u64,
    mut each: impl FnMut(Span, Earlier),
) -> Result<Pass, ResumeError> {
    let mut record = csv::ByteRecord::new();
    let mut scan = Scanner::open(path, &mut record)?;
    // An older version's file lacks the context columns: its records are read all the same.
    let header_ok = record
        .iter()
        .take(COLUMNS.len())
        .eq(COLUMNS.iter().take(record.len()).map(|c| c.as_bytes()));
    if !header_ok || record.len() < READ_AT_LEAST {
        return Err(ResumeError::NotResults {
            path: path.to_owned(),
        });
    }
    let fields = record.len();
    while let Some(found) = scan.next(&mut record)? {
        let parsed = match parse(&record, fields) {
            Ok(e) if !found.torn => e,
            _ => {
                scan.skip(&found)?;
                continue;
            }
        };
        if parsed.line > max_line {
            return Err(crafted(path, found.line(), "line", parsed.line, max_line));
        }
        scan.keep(&found);
        each(found.span, parsed);
    }
    Ok(scan.finish("their rows count as not done"))
}

/// Which file a header says a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A run's results file: `COLUMNS` (an older version's file may lack the last two).
    Results,
    /// An audit file: `AUDIT_COLUMNS`, one line per field a row sets.
    Audit,
}

/// The columns a results file of an older version starts with (before `row_hash`).
const OLDEST_COLUMNS: usize = 13;

/// The columns a file needs to be resumed from (`row_hash` and `throttled`; the context
/// columns after them came later).
const READ_AT_LEAST: usize = 15;

/// The number of columns in the header of the file at `path`.
pub fn header_width(path: &Path) -> Result<usize, ResumeError> {
    let mut header = csv::ByteRecord::new();
    Scanner::open(path, &mut header)?;
    Ok(header.len())
}

/// A file's header: its layout and its column names.
#[derive(Clone, Debug)]
pub struct Header {
    pub layout: Layout,
    names: Vec<String>,
}

impl Header {
    /// The layout whose columns `record` starts with, or `None` for another file.
    fn of(record: &csv::ByteRecord) -> Option<Header> {
        let starts_with = |cols: &[&str]| {
            record.len() >= cols.len() && record.iter().zip(cols).all(|(a, b)| a == b.as_bytes())
        };
        let layout = if starts_with(&AUDIT_COLUMNS[..AUDIT_COLUMNS.len() - CONTEXT_COLUMNS.len()]) {
            Layout::Audit
        } else if starts_with(&COLUMNS[..OLDEST_COLUMNS]) {
            Layout::Results
        } else {
            return None;
        };
        let names = record
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned());
        Some(Header {
            layout,
            names: names.collect(),
        })
    }

    /// Where the column `name` is, if the file has it.
    pub fn at(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Every column of one well-formed record of a results or audit file, as text.
pub struct Row<'a> {
    record: &'a csv::StringRecord,
    /// The record's outcome (a record without a known one is not well-formed).
    pub outcome: Outcome,
}

impl<'a> Row<'a> {
    /// The cell at `at` (a position from `Header::at`), empty when the file has no such column.
    pub fn cell(&self, at: Option<usize>) -> &'a str {
        at.and_then(|i| self.record.get(i)).unwrap_or("")
    }

    /// A count from the (possibly crafted) cell at `at`: digits beyond `max` give `max`,
    /// anything else 0, so sums saturate and never overflow.
    pub fn count(&self, at: Option<usize>, max: u64) -> u64 {
        let text = self.cell(at);
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return 0;
        }
        text.parse::<u64>().map_or(max, |v| v.min(max))
    }

    /// The time in the cell at `at`, when it holds one.
    pub fn time(&self, at: Option<usize>) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339(self.cell(at)).ok()
    }
}

/// Reads every column of a results or audit file's records, for a report: the same framing as
/// `read` (a torn last record and a malformed one are left out, and reading starts again on a
/// malformed record's second line), with each record's cells as text. A record is well-formed
/// when it has the header's number of fields, is UTF-8 and has a known outcome; the other
/// cells are shown as written (escaped by the report), so they are not checked here.
pub struct RowReader<'p> {
    scan: Scanner<'p>,
    header: Header,
}

impl<'p> RowReader<'p> {
    /// Opens `path`; `NotResults` when its header is neither a results file's nor an audit file's.
    pub fn open(path: &'p Path) -> Result<Self, ResumeError> {
        let mut record = csv::ByteRecord::new();
        let scan = Scanner::open(path, &mut record)?;
        let header = Header::of(&record).ok_or_else(|| ResumeError::NotResults {
            path: path.to_owned(),
        })?;
        Ok(RowReader { scan, header })
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Calls `each` for every well-formed record, in file order.
    pub fn for_each(mut self, mut each: impl FnMut(Row<'_>)) -> Result<Pass, ResumeError> {
        let fields = self.header.names.len();
        let outcome_at = self.header.at("outcome");
        let mut record = csv::ByteRecord::new();
        while let Some(found) = self.scan.next(&mut record)? {
            let text = match csv::StringRecord::from_byte_record(std::mem::take(&mut record)) {
                Ok(text) => text,
                Err(e) => {
                    record = e.into_byte_record();
                    self.scan.skip(&found)?;
                    continue;
                }
            };
            let outcome = (!found.torn && text.len() == fields)
                .then(|| {
                    outcome_at
                        .and_then(|i| text.get(i))
                        .and_then(Outcome::parse)
                })
                .flatten();
            match outcome {
                Some(outcome) => {
                    self.scan.keep(&found);
                    each(Row {
                        record: &text,
                        outcome,
                    });
                }
                None => self.scan.skip(&found)?,
            }
            record = text.into_byte_record();
        }
        Ok(self.scan.finish("the report does not count them"))
    }
}

fn crafted(path: &Path, at: u64, column: &'static str, value: u64, max: u64) -> ResumeError {
    ResumeError::Crafted {
        path: path.to_owned(),
        line: at,
        column,
        message: format!("{value} is beyond the input's last possible line ({max})"),
    }
}

/// The byte where the line after the one starting at `start` begins (the file's end if none).
fn next_line(lines: &mut BufReader<File>, start: u64) -> std::io::Result<u64> {
    lines.seek(SeekFrom::Start(start))?;
    let mut skipped = 0u64;
    loop {
        let buf = lines.fill_buf()?;
        if buf.is_empty() {
            return Ok(start + skipped);
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            return Ok(start + skipped + i as u64 + 1);
        }
        let n = buf.len();
        skipped += n as u64;
        lines.consume(n);
    }
}

fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(Some(last[0]))
}

/// A record as the writer writes it, or the first column that is not.
fn parse(record: &csv::ByteRecord, fields: usize) -> Result<Earlier, &'static str> {
    if record.len() != fields {
        return Err("fields");
    }
    let at = |name: &str| COLUMNS.iter().position(|c| *c == name).expect("a column");
    let text = |name: &str| std::str::from_utf8(&record[at(name)]).map_err(|_| "utf-8");
    let digits = |name: &'static str, empty_ok: bool| -> Result<&str, &'static str> {
        let t = text(name)?;
        let ok = (empty_ok || !t.is_empty()) && t.bytes().all(|b| b.is_ascii_digit());
        ok.then_some(t).ok_or(name)
    };
    let line = digits("line", false)?.parse::<u64>().map_err(|_| "line")?;
    let outcome = Outcome::parse(text("outcome")?).ok_or("outcome")?;
    let status = digits("http_status", true)?;
    let code = text("error_code")?;
    if !code.is_empty() && crate::core::text::error_code(code).is_none() {
        return Err("error_code");
    }
    for name in ["attempts", "elapsed_ms", "throttled"] {
        digits(name, false)?;
    }
    for name in ["request_id", "correlation_id"] {
        let t = text(name)?;
        if !t.is_empty() && uuid::Uuid::parse_str(t).is_err() {
            return Err(name);
        }
    }
    humantime::parse_rfc3339(text("finished_at")?).map_err(|_| "finished_at")?;
    let hash = text("row_hash")?;
    if hash.len() != 16 {
        return Err("row_hash");
    }
    let row_hash = u64::from_str_radix(hash, 16).map_err(|_| "row_hash")?;
    Ok(Earlier {
        line,
        customer_id: text("customer_id")?.to_string(),
        user_id: text("user_id")?.to_string(),
        outcome: Some(outcome),
        http_status: status.parse().ok(),
        error_code: crate::core::text::error_code(code),
        message: text("message")?.to_string(),
        row_hash: Some(row_hash),
    })
}

/// Cuts a torn or malformed tail off a results file before records are appended to it, so
/// that they start on a line of their own and no open quote swallows them. What is cut holds
/// no complete record: its rows count as not done and are sent again.
pub fn cut_torn_tail(path: &Path) -> Result<(), ResumeError> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    let pass = match read(path, u64::MAX, |_, _| {}) {
        Ok(pass) => pass,
        // Another layout (an audit file): cut only what follows the last line end.
        Err(ResumeError::NotResults { .. }) => Pass {
            skipped: 0,
            complete_len: last_line_end(path).map_err(io(path))?,
        },
        Err(e) => return Err(e),
    };
    if pass.complete_len < len {
        tracing::warn!(
            file = %path.display(),
            bytes = len - pass.complete_len,
            "cut a torn last record off the results file before appending"
        );
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(pass.complete_len).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
    }
    if last_byte(path)
        .map_err(io(path))?
        .is_some_and(|b| b != b'\n')
    {
        // Only a header without its line end is left: end it, so no record joins it.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        std::io::Write::write_all(&mut file, b"\n").map_err(io(path))?;
    }
    Ok(())
}

/// Where the last line end of `path` is, plus one (0 when it has none).
fn last_line_end(path: &Path) -> std::io::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i as u64 + 1))
}

/// A fatal problem with resuming or locking.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("nothing to resume: there is no results file at {path} (run without --resume to start, or give the results file with --out)")]
    NoResults { path: PathBuf },
    #[error("results file {path} is being written by another bulkpatch run{}: wait for it to finish or stop it", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("results file {path} belongs to a different run: {difference}; pass --force to resume anyway, or start a new results file with --out")]
    Mismatch { path: PathBuf, difference: String },
    #[error("results file {path} has no fingerprint ({meta} is missing or unreadable): it was not written by this tool, or by an older version; pass --force to resume anyway")]
    NoFingerprint { path: PathBuf, meta: PathBuf },
    #[error("results file {path} does not start with the expected columns: is it a results file of bulkpatch?")]
    NotResults { path: PathBuf },
    #[error("results file {path}, line {line}, column {column}: {message}")]
    Crafted {
        path: PathBuf,
        line: u64,
        column: &'static str,
        message: String,
    },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One record of a results file, as read back.
#[derive(Clone, Debug)]
pub struct Earlier {
    pub line: u64,
    pub customer_id: String,
    pub user_id: String,
    pub outcome: Option<Outcome>,
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub message: String,
    pub row_hash: Option<u64>,
}

/// Where a record sits in the results file: its first byte and its length (terminator included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

/// The results file's columns, in order. Later features append columns after these; a reader
/// takes a file without the last ones (`CONTEXT_COLUMNS`, from an older version).
pub const COLUMNS: [&str; 18] = [
    "line",
    "customer_id",
    "user_id",
    "outcome",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "elapsed_ms",
    "request_id",
    "correlation_id",
    "finished_at",
    "body",
    "row_hash",
    "throttled",
    "user_principal_name",
    "customer_domain",
    "context",
];

/// The columns that name the user and tenant besides the GUIDs, last in both files: the row's
/// UPN, its customer's domain, and the kept columns as one JSON object.
pub const CONTEXT_COLUMNS: [&str; 3] = ["user_principal_name", "customer_domain", "context"];

/// The audit file's columns: one line per field a row sets.
pub const AUDIT_COLUMNS: [&str; 18] = [
    "line",
    "customer_id",
    "user_id",
    "outcome",
    "field",
    "current",
    "desired",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "elapsed_ms",
    "request_id",
    "correlation_id",
    "finished_at",
    "user_principal_name",
    "customer_domain",
    "context",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: &str) -> csv::ByteRecord {
        csv::ByteRecord::from(vec![
            "2",
            "c",
            "u",
            "failed",
            "404",
            code,
            "m",
            "1",
            "5",
            "",
            "",
            "2026-01-01T00:00:00.000Z",
            "",
            "00000000000000ab",
            "0",
        ])
    }

    #[test]
    fn an_audit_file_is_read_with_every_column_and_a_torn_record_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.csv");
        let line = |n: u64, field: &str, current: &str| {
            format!("{n},c,u,would_change,{field},{current},DE,,,,1,5,,,2026-01-01T00:00:00.000Z\n")
        };
        let mut text = AUDIT_COLUMNS[..15].join(",") + "\n";
        text += &line(2, "usageLocation", "US");
        text += "3,c,u,would_change,usageLocation,\"cut short\n";
        text += &line(3, "displayName", "\"a, \"\"b\"\"\"");
        text += line(4, "usageLocation", "FR").trim_end();
        std::fs::write(&path, text).unwrap();
        let rows = RowReader::open(&path).unwrap();
        assert_eq!(rows.header().layout, Layout::Audit);
        let (field, current) = (rows.header().at("field"), rows.header().at("current"));
        let mut seen = Vec::new();
        let pass = rows
            .for_each(|r| seen.push((r.cell(field).to_string(), r.cell(current).to_string())))
            .unwrap();
        assert_eq!(
            seen,
            [
                ("usageLocation".to_string(), "US".to_string()),
                ("displayName".to_string(), "a, \"b\"".to_string())
            ]
        );
        assert_eq!(
            pass.skipped, 2,
            "the torn middle record and the torn last one"
        );
    }

    #[test]
    fn error_codes_are_read_as_text_numbers_as_before() {
        let code = |c: &str| parse(&record(c), 15).map(|e| e.error_code);
        assert_eq!(
            code("60002"),
            Ok(Some("60002".into())),
            "an earlier version's file"
        );
        assert_eq!(
            code("Request_ResourceNotFound"),
            Ok(Some("Request_ResourceNotFound".into()))
        );
        assert_eq!(code(""), Ok(None));
        assert_eq!(code("=1+1"), Err("error_code"), "a crafted cell is refused");
    }
}
