//! Owns what makes a run resumable: the results file's fingerprint sidecar and its lock, what earlier runs finished (read back from the results file), and compaction to one record per input row.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::run_state::Outcome;
use crate::output::reader::{Earlier, ResumeError, Span};
use crate::output::results::Tally;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ResumeError + '_ {
    move |source| ResumeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The run's identity, stored beside the results file so a resume can refuse a mismatched one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub tool: String,
    pub version: String,
    /// The input file, as an absolute path.
    pub input: PathBuf,
    /// FNV-1a of the header row's fields, in hex.
    pub header_hash: String,
    /// Data rows in the input.
    pub rows: u64,
    /// The API the run sent to (`--target`); files from before targets were partner-center's.
    #[serde(default = "partner_center")]
    pub target: String,
    /// The SHA-256 of the whole input file, in hex (reports show it; a resume does not compare
    /// it: rows are recognised one by one). None in a file of an older version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    /// Written by a dry run (its report is a plan). Not compared on a resume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

fn partner_center() -> String {
    "partner-center".into()
}

impl Fingerprint {
    pub fn new(input: &Path, header_hash: u64, rows: u64) -> Fingerprint {
        Fingerprint {
            tool: "bulkpatch".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            input: input.canonicalize().unwrap_or_else(|_| input.to_owned()),
            header_hash: format!("{header_hash:016x}"),
            rows,
            target: partner_center(),
            input_sha256: None,
            dry_run: false,
        }
    }

    /// What differs from an earlier run's fingerprint, in words, or None.
    fn difference(&self, earlier: &Fingerprint) -> Option<String> {
        if self.input != earlier.input {
            return Some(format!(
                "it was written for input {}, not {}",
                earlier.input.display(),
                self.input.display()
            ));
        }
        if self.header_hash != earlier.header_hash {
            return Some("the input's header row has changed since".into());
        }
        if self.rows != earlier.rows {
            return Some(format!(
                "the input had {} data rows then and has {} now",
                earlier.rows, self.rows
            ));
        }
        if self.target != earlier.target {
            return Some(format!(
                "it was written by a run through --target {}, this one is through {}",
                earlier.target, self.target
            ));
        }
        if self.version != earlier.version {
            return Some(format!(
                "it was written by bulkpatch {}, this is {}",
                earlier.version, self.version
            ));
        }
        None
    }
}

#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub fingerprint: Fingerprint,
    /// The process writing the results now (for the lock's message).
    pub pid: u32,
    /// This run's id (reports show it).
    #[serde(default)]
    pub run_id: Option<Uuid>,
}

impl Meta {
    /// The sidecar of a results file, if it has a readable one.
    pub fn read(results: &Path) -> Option<Meta> {
        let text = std::fs::read_to_string(meta_path(results)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The fingerprint sidecar of a results file: `<results>.meta`.
pub fn meta_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

/// Holds the lock on a results file for as long as it lives.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    /// This run created the sidecar: a run refused before it starts removes it again.
    created: bool,
    /// The sidecar to write once the run starts (`commit`); None once written.
    pending: Option<Vec<u8>>,
}

impl RunLock {
    /// Locks the results file (through its sidecar) and records the fingerprint. With `resume`,
    /// the earlier fingerprint must match unless `force`.
    pub fn acquire(
        results: &Path,
        fingerprint: &Fingerprint,
        resume: bool,
        force: bool,
    ) -> Result<RunLock, ResumeError> {
        let path = meta_path(results);
        let existed = path.exists();
        let mut file = crate::core::files::open_sidecar(&path).map_err(io_error(&path))?;
        let mut text = String::new();
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            let _ = file.read_to_string(&mut text);
            let pid = serde_json::from_str::<Meta>(&text).ok().map(|m| m.pid);
            return Err(ResumeError::Locked {
                path: results.to_owned(),
                pid,
            });
        }
        // From here on, a refusal removes a sidecar this run created.
        let lock = RunLock {
            file,
            path,
            created: !existed,
            pending: None,
        };
        let (mut file, path) = (&lock.file, &lock.path);
        file.read_to_string(&mut text).map_err(io_error(path))?;
        if resume && !force {
            match serde_json::from_str::<Meta>(&text) {
                Ok(earlier) => {
                    if let Some(difference) = fingerprint.difference(&earlier.fingerprint) {
                        return Err(ResumeError::Mismatch {
                            path: results.to_owned(),
                            difference,
                        });
                    }
                }
                Err(_) => {
                    if !existed || text.trim().is_empty() {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(ResumeError::NoFingerprint {
                        path: results.to_owned(),
                        meta: path.clone(),
                    });
                }
            }
        }
        let meta = Meta {
            fingerprint: fingerprint.clone(),
            pid: std::process::id(),
            run_id: Some(Uuid::new_v4()),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("the fingerprint serialises");
        let mut lock = lock;
        lock.pending = Some(json);
        Ok(lock)
    }

    /// Writes this run's fingerprint to the sidecar: call it once the run has started (its
    /// results file is open), so a run refused before that leaves the sidecar as it found it.
    pub fn commit(&mut self) -> Result<(), ResumeError> {
        let Some(json) = self.pending.take() else {
            return Ok(());
        };
        let path = &self.path;
        let mut file = &self.file;
        file.set_len(0).map_err(io_error(path))?;
        file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
        file.write_all(&json).map_err(io_error(path))?;
        file.sync_data().map_err(io_error(path))?;
        self.created = false;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// Reads a results file's records (see `output::reader::read`: a torn record is left out and
/// swallows nothing; a `line` above `max_line` is an error). Calls `each(span, record)` in
/// file order; returns how many records were left out.
pub fn read_results(
    path: &Path,
    max_line: u64,
    each: impl FnMut(Span, Earlier),
) -> Result<u64, ResumeError> {
    Ok(crate::output::reader::read(path, max_line, each)?.skipped)
}

/// What earlier runs finished: for each input line, the low 32 bits of the hash of the row
/// whose outcome is final (or 0: send it). Four bytes per line.
#[derive(Debug, Default)]
pub struct Finished {
    by_line: Vec<u32>,
    /// Rows with a final outcome.
    pub count: u64,
}

fn tag(hash: u64) -> u32 {
    (hash as u32) | 1
}

impl Finished {
    /// Reads the results file; the last record of each line wins.
    /// `max_line` bounds the lines a (crafted) file can name: see `paths::max_line`.
    pub fn load(path: &Path, retry_failed: bool, max_line: u64) -> Result<Finished, ResumeError> {
        let mut by_line: Vec<u32> = Vec::new();
        read_results(path, max_line, |_, e| {
            let i = e.line as usize;
            if by_line.len() <= i {
                by_line.resize(i + 1, 0);
            }
            by_line[i] = match (is_final(&e, retry_failed), e.row_hash) {
                (true, Some(h)) => tag(h),
                _ => 0,
            };
        })?;
        let count = by_line.iter().filter(|t| **t != 0).count() as u64;
        Ok(Finished { by_line, count })
    }

    /// Whether the row at `line` with content hash `hash` was finished by an earlier run.
    /// An edited row (another hash) is not.
    pub fn is_finished(&self, line: u64, hash: u64) -> bool {
        self.by_line
            .get(line as usize)
            .is_some_and(|t| *t != 0 && *t == tag(hash))
    }

    /// Whether an earlier run finished the row at `line`, whatever its content now.
    pub fn has_line(&self, line: u64) -> bool {
        self.by_line.get(line as usize).is_some_and(|t| *t != 0)
    }
}

/// Rewrites the results file with only the last record of each line, in line order, atomically,
/// and returns the tally of those final records. A file that is already so (a dry run's, say)
/// is left as it is.
/// `max_line` bounds the lines a (crafted) file can name: see `paths::max_line`.
pub fn compact(path: &Path, max_line: u64) -> Result<Tally, ResumeError> {
    // Pass 1: where the last record of each line is (8 bytes a line), and whether the file is
    // already one record per line in line order.
    let mut spans: Vec<u64> = Vec::new();
    let mut in_order = true;
    let mut superseded = false;
    let mut last_line = 0;
    let mut tally = Tally::default();
    let skipped = read_results(path, max_line, |span, e| {
        in_order &= e.line > last_line;
        last_line = e.line;
        let i = e.line as usize;
        if spans.len() <= i {
            spans.resize(i + 1, 0);
        }
        superseded |= spans[i] != 0;
        spans[i] = pack(span);
        if let Some(outcome) = e.outcome {
            tally.add_customer(&e.customer_id, outcome);
            tally.add_parts(outcome, e.http_status, e.error_code.as_deref(), &e.message);
        }
    })?;
    if in_order && skipped == 0 {
        return Ok(tally);
    }
    // Pass 2: copy those records, in line order, to a temp file with positioned reads.
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".compact-{}", std::process::id()));
        PathBuf::from(name)
    };
    let result = (|| -> std::io::Result<()> {
        // Records finish nearly in line order, so nearly every one is found in the buffer
        // the previous one was read into: a relative seek within it costs no system call.
        let mut source = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let mut header = Vec::new();
        source.read_until(b'\n', &mut header)?;
        let mut position = header.len() as u64;
        // A new file, not through a link someone planted at the temp file's name.
        let _ = std::fs::remove_file(&tmp);
        let created =
            crate::core::files::no_follow(OpenOptions::new().write(true).create_new(true))
                .open(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, created);
        out.write_all(&header)?;
        let mut record = Vec::new();
        for span in spans.iter().copied().filter(|s| *s != 0).map(unpack) {
            record.resize(span.len as usize, 0);
            source.seek_relative(span.start as i64 - position as i64)?;
            source.read_exact(&mut record)?;
            position = span.start + span.len;
            if !record.ends_with(b"\n") {
                record.push(b'\n');
            }
            out.write_all(&record)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path)(e));
    }
    // Pass 3, when a later record replaced an earlier one: the final tally, from the compacted
    // file. Otherwise every record read in pass 1 was copied, and its tally is the final one.
    if superseded {
        tally = Tally::default();
        read_results(&tmp, max_line, |_, e| {
            if let Some(outcome) = e.outcome {
                tally.add_customer(&e.customer_id, outcome);
                tally.add_parts(outcome, e.http_status, e.error_code.as_deref(), &e.message);
            }
        })?;
    }
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    Ok(tally)
}

/// A span in one u64: 40 bits of offset (1 TiB), 24 of length (16 MiB); 0 means none.
fn pack(span: Span) -> u64 {
    (span.start << 24) | span.len.min((1 << 24) - 1)
}

fn unpack(packed: u64) -> Span {
    Span {
        start: packed >> 24,
        len: packed & ((1 << 24) - 1),
    }
}

/// Whether this outcome is final for the row, so a resume leaves it alone.
fn is_final(earlier: &Earlier, retry_failed: bool) -> bool {
    match earlier.outcome {
        Some(Outcome::Updated | Outcome::Invalid) => true,
        Some(Outcome::Failed) => {
            !retry_failed
                && earlier
                    .http_status
                    // A refused token (401) stopped the run, not the row: sent again too.
                    .is_some_and(|s| s != 401 && !crate::core::transient::is_transient(s))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::fnv1a;

    #[test]
    fn fnv1a_is_stable_and_separates_fields() {
        assert_eq!(fnv1a([b"" as &[u8]]), 0xcbf29ce484222325);
        assert_eq!(fnv1a([b"a" as &[u8]]), 0xaf63dc4c8601ec8c);
        assert_ne!(fnv1a(["ab", "c"]), fnv1a(["a", "bc"]));
    }

    #[test]
    fn compact_orders_records_spread_wider_than_its_read_buffer() {
        use crate::core::run_state::Outcome;
        use crate::output::reader::COLUMNS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let record = |line: u64, outcome: &str, pad: usize| {
            let message = "x".repeat(pad);
            format!("{line},c,u,{outcome},200,,{message},1,5,,,2026-11-21T00:00:00.000Z,,{line:016x},0\n")
        };
        // About 1 MB, four times the read buffer: the last line first, so every record is read
        // by seeking backwards, and line 7 failed once before it was updated.
        let mut text = COLUMNS[..15].join(",") + "\n";
        text += &record(7, "failed", 10);
        for line in (1..=3000).rev() {
            text += &record(line, "updated", 300);
        }
        std::fs::write(&path, &text).unwrap();

        let tally = compact(&path, u64::MAX).unwrap();
        let out = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<u64> = out
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(lines, (1..=3000).collect::<Vec<_>>());
        assert!(out.lines().skip(1).all(|l| *l
            == record(
                l.split(',').next().unwrap().parse().unwrap(),
                "updated",
                300
            )[..l.len()]));
        assert_eq!(tally.count(Outcome::Updated), 3000);
        assert_eq!(tally.count(Outcome::Failed), 0);
    }

    #[test]
    fn compact_tallies_out_of_order_records_that_replace_none() {
        use crate::core::run_state::Outcome;
        use crate::output::reader::COLUMNS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let record = |line: u64, outcome: &str| {
            format!("{line},c,u,{outcome},200,,,1,5,,,2026-11-21T00:00:00.000Z,,{line:016x},0\n")
        };
        let mut text = COLUMNS[..15].join(",") + "\n";
        for line in [3, 1, 4, 2, 5] {
            text += &record(line, if line % 2 == 0 { "failed" } else { "updated" });
        }
        std::fs::write(&path, &text).unwrap();

        let tally = compact(&path, u64::MAX).unwrap();
        assert_eq!(
            (tally.count(Outcome::Updated), tally.count(Outcome::Failed)),
            (3, 2)
        );
        let out = std::fs::read_to_string(&path).unwrap();
        let expected: String = std::iter::once(COLUMNS[..15].join(",") + "\n")
            .chain((1..=5).map(|l| record(l, if l % 2 == 0 { "failed" } else { "updated" })))
            .collect();
        assert_eq!(out, expected);
    }
}

#[cfg(test)]
mod customer_tests {
    use super::*;

    #[test]
    fn compact_counts_customers_by_their_final_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let record = |line: u64, customer: &str, outcome: &str| {
            format!("{line},{customer},u,{outcome},200,,,1,5,,,2026-11-21T00:00:00.000Z,,{line:016x},0\n")
        };
        let mut text = crate::output::reader::COLUMNS[..15].join(",") + "\n";
        text += &record(1, "a", "failed"); // replaced below: a has no problem in the end
        text += &record(2, "b", "updated");
        text += &record(3, "b", "failed");
        text += &record(1, "a", "updated");
        std::fs::write(&path, &text).unwrap();
        let tally = compact(&path, u64::MAX).unwrap();
        assert_eq!(tally.customer_counts(), (2, 1));
    }
}
