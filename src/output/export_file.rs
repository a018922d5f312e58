//! The export file `bulkpatch export` writes, and what lets a stopped export be finished:
//! - the CSV (`customer_id,customer_domain,user_id,user_principal_name,display_name,first_name,
//!   last_name,usage_location`), each cell a spreadsheet would run as a formula prefixed with
//!   `'` as in the results file;
//! - a spool per customer being listed (`<out>.part-<customer>`, removed when done), so that
//!   the export file only ever receives a customer's users all at once;
//! - the state file (`<out>.export-state`): one `done <customer>` line per customer whose users
//!   are all in the export file, written after them. `--resume` keeps those customers' rows,
//!   drops any other (a customer cut short while being copied) and lists the rest again.
//!
//! Memory stays flat: rows stream to the spool and are copied file to file.
//! Uses `core`, `targets` and `output::results`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::output::results::spreadsheet_safe;
use crate::targets::{CustomerItem, UserItem};

/// The export file's columns, as `run` reads them.
pub const COLUMNS: [&str; 8] = [
    "customer_id",
    "customer_domain",
    "user_id",
    "user_principal_name",
    "display_name",
    "first_name",
    "last_name",
    "usage_location",
];

const STATE_HEADER: &str =
    "# bulkpatch export state: customers whose users are all in the export file";

/// A problem with the export file or its state file: fatal for the export.
#[derive(Debug, thiserror::Error)]
pub enum ExportFileError {
    #[error("cannot write the export file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resume the export {path}: {message}")]
    Resume { path: PathBuf, message: String },
}

/// `<out>.export-state`.
pub fn state_path(out: &Path) -> PathBuf {
    sibling(out, "export-state")
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export.csv".into());
    out.with_file_name(format!("{name}.{suffix}"))
}

fn writer(file: File, delimiter: u8) -> csv::Writer<BufWriter<File>> {
    csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(BufWriter::with_capacity(64 * 1024, file))
}

/// Opens a file to write without following a symbolic link.
fn open_new(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    crate::core::files::no_follow(&mut options).open(path)
}

/// The export file being written.
pub struct ExportFile {
    path: PathBuf,
    out: BufWriter<File>,
    state: File,
    delimiter: u8,
}

impl std::fmt::Debug for ExportFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ExportFile {
    /// A new export file (an existing one replaced: the settings asked `--force`) and state file.
    pub fn create(path: &Path, delimiter: u8) -> Result<ExportFile, ExportFileError> {
        let fail = |source| ExportFileError::Write {
            path: path.to_owned(),
            source,
        };
        let mut csv = writer(open_new(path, false).map_err(fail)?, delimiter);
        csv.write_record(COLUMNS).map_err(|e| fail(e.into()))?;
        let out = csv.into_inner().map_err(|e| fail(e.into_error()))?;
        let mut state = open_new(&state_path(path), false).map_err(fail)?;
        writeln!(state, "{STATE_HEADER}").map_err(fail)?;
        Ok(ExportFile {
            path: path.to_owned(),
            out,
            state,
            delimiter,
        })
    }

    /// Reopens a stopped export: keeps the rows of the customers its state file has as done,
    /// drops the others, and returns the done customers.
    pub fn resume(
        path: &Path,
        delimiter: u8,
    ) -> Result<(ExportFile, HashSet<Uuid>), ExportFileError> {
        let resume_error = |message: String| ExportFileError::Resume {
            path: path.to_owned(),
            message,
        };
        let state = state_path(path);
        let text = std::fs::read_to_string(&state).map_err(|e| {
            resume_error(format!(
                "cannot read its state file {}: {e}",
                state.display()
            ))
        })?;
        if text.lines().next() != Some(STATE_HEADER) {
            return Err(resume_error(format!(
                "{} is not an export state file",
                state.display()
            )));
        }
        let done: HashSet<Uuid> = text
            .lines()
            .filter_map(|l| l.strip_prefix("done "))
            .filter_map(|id| Uuid::parse_str(id.trim()).ok())
            .collect();
        keep_done_rows(path, delimiter, &done).map_err(resume_error)?;
        let fail = |source| ExportFileError::Write {
            path: path.to_owned(),
            source,
        };
        let file = ExportFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(64 * 1024, open_new(path, true).map_err(fail)?),
            state: open_new(&state, true).map_err(fail)?,
            delimiter,
        };
        Ok((file, done))
    }

    /// A spool for `customer`'s users.
    pub fn spool(&self, customer: &CustomerItem) -> Result<Spool, ExportFileError> {
        let path = sibling(&self.path, &format!("part-{}", customer.id));
        let fail = |source| ExportFileError::Write {
            path: path.clone(),
            source,
        };
        let _ = std::fs::remove_file(&path);
        let file = crate::core::files::create_private_file(&path).map_err(fail)?;
        Ok(Spool {
            csv: writer(file, self.delimiter),
            path,
            customer: customer.id.to_string(),
            domain: customer.domain.clone(),
            rows: 0,
        })
    }

    /// Copies a customer's spooled users into the export file, then marks the customer done.
    pub fn add(&mut self, customer: Uuid, spool: Spool) -> Result<u64, ExportFileError> {
        let fail = |source| ExportFileError::Write {
            path: self.path.clone(),
            source,
        };
        let rows = spool.rows;
        let mut file = spool.finish().map_err(fail)?;
        std::io::copy(&mut file, &mut self.out).map_err(fail)?;
        self.out.flush().map_err(fail)?;
        self.out.get_ref().sync_data().map_err(fail)?;
        writeln!(self.state, "done {customer}").map_err(fail)?;
        self.state.sync_data().map_err(fail)?;
        Ok(rows)
    }
}

/// Rewrites the export file with only the rows of `done` customers (streamed through a temp file).
fn keep_done_rows(path: &Path, delimiter: u8, done: &HashSet<Uuid>) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let header = reader
        .byte_headers()
        .map_err(|e| format!("cannot read its header: {e}"))?;
    if header.iter().ne(COLUMNS.iter().map(|c| c.as_bytes())) {
        return Err(
            "its header is not an export file's (is --delimiter the one it was written with?)"
                .into(),
        );
    }
    let tmp = sibling(path, "resume-tmp");
    let _ = std::fs::remove_file(&tmp);
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    let mut out = writer(
        crate::core::files::create_private_file(&tmp).map_err(fail)?,
        delimiter,
    );
    out.write_record(COLUMNS).map_err(|e| fail(e.into()))?;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // A record torn by a stop mid-copy: its customer is not done, and nothing follows it.
            Err(_) => break,
        }
        let customer = std::str::from_utf8(record.get(0).unwrap_or_default())
            .ok()
            .and_then(|c| Uuid::parse_str(c).ok());
        if record.len() == COLUMNS.len() && customer.is_some_and(|c| done.contains(&c)) {
            out.write_byte_record(&record).map_err(|e| fail(e.into()))?;
        }
    }
    out.flush().map_err(fail)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(fail)
}

/// One customer's users while they are listed.
pub struct Spool {
    path: PathBuf,
    csv: csv::Writer<BufWriter<File>>,
    customer: String,
    domain: String,
    rows: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Adds a user's row.
    pub fn push(&mut self, user: &UserItem) -> std::io::Result<()> {
        let id = user.id.to_string();
        let cells = [
            self.customer.as_str(),
            self.domain.as_str(),
            id.as_str(),
            user.user_principal_name.as_str(),
            user.display_name.as_str(),
            user.first_name.as_str(),
            user.last_name.as_str(),
            user.usage_location.as_str(),
        ];
        self.csv
            .write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The spooled rows, to read from the start (the spool file itself is already removed).
    fn finish(mut self) -> std::io::Result<File> {
        self.csv.flush()?;
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(n: u128) -> CustomerItem {
        CustomerItem {
            id: Uuid::from_u128(n),
            domain: format!("c{n}.onmicrosoft.com"),
            name: String::new(),
        }
    }

    fn user(n: u128, name: &str) -> UserItem {
        UserItem {
            id: Uuid::from_u128(1000 + n),
            user_principal_name: format!("u{n}@x.y"),
            display_name: name.into(),
            first_name: String::new(),
            last_name: String::new(),
            usage_location: "DE".into(),
        }
    }

    #[test]
    fn customers_land_whole_and_a_resume_keeps_only_those_marked_done() {
        let dir = std::env::temp_dir().join(format!("bp-export-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("e.csv");
        let mut file = ExportFile::create(&out, b',').unwrap();
        let mut spool = file.spool(&customer(1)).unwrap();
        spool.push(&user(1, "=cmd|' /C calc'!A0")).unwrap();
        spool.push(&user(2, "a,\"b\"\nc")).unwrap();
        assert_eq!(file.add(Uuid::from_u128(1), spool).unwrap(), 2);
        // Customer 2 is copied, but the stop comes before its `done` line.
        let mut spool = file.spool(&customer(2)).unwrap();
        spool.push(&user(3, "x")).unwrap();
        let spool_path = spool.path.clone();
        let rows = spool.rows();
        let f = spool.finish().unwrap();
        let mut f = f;
        std::io::copy(&mut f, &mut file.out).unwrap();
        file.out.flush().unwrap();
        assert_eq!(rows, 1);
        assert!(!spool_path.exists());
        drop(file);
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(written.contains("'=cmd|' /C calc'!A0"), "{written}");
        assert!(written.contains(&Uuid::from_u128(2).to_string()));
        let (_file, done) = ExportFile::resume(&out, b',').unwrap();
        assert_eq!(done, HashSet::from([Uuid::from_u128(1)]));
        let kept = std::fs::read_to_string(&out).unwrap();
        assert!(!kept.contains(&Uuid::from_u128(2).to_string()), "{kept}");
        let mut reader = csv::Reader::from_path(&out).unwrap();
        let names: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[4].to_string())
            .collect();
        assert_eq!(names, ["'=cmd|' /C calc'!A0", "a,\"b\"\nc"]);
        assert!(ExportFile::resume(&out, b';').is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
