//! Owns reading a results file back record by record, as a resume, a compaction and the
//! writer's append see it: a torn record (the process killed mid-write, the disk full) is
//! dropped with a warning and never swallows the records after it, and a crafted value is
//! refused with the file, line and column. Uses `csv` and the results file's `COLUMNS`.

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
    let file = File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let ends_cleanly = last_byte(path).map_err(io(path))? == Some(b'\n');
    let mut lines = BufReader::new(File::open(path).map_err(io(path))?);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(64 * 1024, file));
    let mut record = csv::ByteRecord::new();
    let header_ok = reader.read_byte_record(&mut record).map_err(csv_io(path))?
        && record
            .iter()
            .take(COLUMNS.len())
            .eq(COLUMNS.iter().map(|c| c.as_bytes()));
    if !header_ok || record.len() < COLUMNS.len() {
        return Err(ResumeError::NotResults {
            path: path.to_owned(),
        });
    }
    let fields = record.len();
    let mut pass = Pass {
        skipped: 0,
        complete_len: reader.position().byte(),
    };
    loop {
        let start = reader.position().clone();
        if !reader.read_byte_record(&mut record).map_err(csv_io(path))? {
            break;
        }
        let end = reader.position().byte();
        let span = Span {
            start: start.byte(),
            len: end - start.byte(),
        };
        let torn_at_end = end >= len && !ends_cleanly;
        let parsed = match parse(&record, fields) {
            Ok(e) if !torn_at_end => e,
            _ => {
                pass.skipped += 1;
                // Start again on the record's second line, if it has one.
                let next = next_line(&mut lines, start.byte()).map_err(io(path))?;
                if next < end {
                    let mut at = csv::Position::new();
                    at.set_byte(next).set_line(start.line() + 1);
                    reader.seek(at).map_err(csv_io(path))?;
                }
                continue;
            }
        };
        if parsed.line > max_line {
            return Err(crafted(path, start.line(), "line", parsed.line, max_line));
        }
        pass.complete_len = end;
        each(span, parsed);
    }
    if pass.skipped > 0 {
        tracing::warn!(
            file = %path.display(),
            records = pass.skipped,
            "left out torn or malformed records (a run killed mid-write leaves one): their rows count as not done"
        );
    }
    Ok(pass)
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

/// Where a torn last record starts, for readers that stream a file with `csv` themselves: the
/// byte after the last line end when the file does not end with one, else the file's length.
/// A record that ends past it was torn.
pub fn torn_tail_start(path: &Path) -> std::io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    if last_byte(path)? == Some(b'\n') || len == 0 {
        return Ok(len);
    }
    last_line_end(path)
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

/// The results file's columns, in order. Later features append columns after these.
pub const COLUMNS: [&str; 15] = [
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
];

/// The audit file's columns: one line per field a row sets.
pub const AUDIT_COLUMNS: [&str; 15] = [
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
    fn error_codes_are_read_as_text_numbers_as_before() {
        let code = |c: &str| parse(&record(c), COLUMNS.len()).map(|e| e.error_code);
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
