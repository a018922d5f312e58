//! Owns the secrets file as it is handed out at the end of a run (and of a resume): one line
//! per row, in line order, with an `applied` column read from the compacted results file
//! (`yes`, `no`, `unknown`), written to a new private temp file (0600, O_EXCL, no symlink
//! followed) beside it, synced and renamed over it. Also reads a secrets file's complete lines
//! (a line cut short is never used). Uses `passwords`, `resume::read_results` and `auth`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::core::run_state::Outcome;
use crate::output::secrets::read_lines;
use crate::output::secrets::SecretsError;

/// The rewritten file's columns: the run's seven, then `applied`.
pub const COLUMNS: [&str; 8] = [
    "line",
    "customer_id",
    "user_id",
    "user_principal_name",
    "password",
    "customer_domain",
    "context",
    "applied",
];

/// Whether a row's password was set, from its final record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The row was updated: the password is the user's.
    Yes,
    /// The request was refused (a 4xx), or the row was invalid or never sent.
    No,
    /// Interrupted in flight, no answer, a 5xx, or no record: it may or may not have been set.
    Unknown,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Yes => "yes",
            Applied::No => "no",
            Applied::Unknown => "unknown",
        }
    }

    fn of(record: &crate::output::reader::Earlier) -> Applied {
        match (record.outcome, record.http_status) {
            (Some(Outcome::Updated), _) => Applied::Yes,
            (Some(Outcome::Invalid | Outcome::Unchanged | Outcome::Planned), _) => Applied::No,
            (Some(Outcome::Failed), Some(status)) if status < 500 => Applied::No,
            _ => Applied::Unknown,
        }
    }
}

/// A row's line in the secrets file.
struct Entry {
    /// line, customer_id, user_id, user_principal_name, customer_domain, context.
    cells: [String; 6],
    password: SecretString,
    applied: Applied,
}

/// Rewrites `secrets` with one line per row (the last written for it) and the `applied` column
/// from `results`; returns how many rows are yes, no and unknown.
pub fn rewrite(secrets: &Path, results: &Path, max_line: u64) -> Result<[u64; 3], SecretsError> {
    let io = |source| SecretsError::Io {
        path: secrets.to_owned(),
        source,
    };
    let mut rows = read_rows(secrets).map_err(io)?;
    crate::output::resume::read_results(results, max_line, |_, record| {
        if let Some(entry) = rows.get_mut(&record.line) {
            // A record for another user on that line (the input changed) says nothing.
            entry.applied = if entry.cells[2] == record.user_id {
                Applied::of(&record)
            } else {
                Applied::Unknown
            };
        }
    })
    .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let mut counts = [0u64; 3];
    for entry in rows.values() {
        counts[entry.applied as usize] += 1;
    }
    replace(secrets, &rows).map_err(io)?;
    Ok(counts)
}

/// The complete lines of a secrets file, the last one for each row winning.
fn read_rows(secrets: &Path) -> std::io::Result<BTreeMap<u64, Entry>> {
    let bytes = read_lines(secrets, false)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let Ok(record) = record else { continue };
        // 7 or 8 fields; an older version's 5 or 6 (`applied` sixth) have no context.
        if !(5..=8).contains(&record.len()) || record[4].is_empty() {
            continue;
        }
        let Ok(line) = record[0].parse::<u64>() else {
            continue;
        };
        let context = |i: usize| match record.len() {
            7 | 8 => record[i].to_string(),
            _ => String::new(),
        };
        let cells = [0, 1, 2, 3].map(|i| record[i].to_string());
        let [line_cell, customer, user, upn] = cells;
        let cells = [line_cell, customer, user, upn, context(5), context(6)];
        let password = SecretString::from(record[4].to_string());
        rows.insert(
            line,
            Entry {
                cells,
                password,
                applied: Applied::Unknown,
            },
        );
    }
    Ok(rows)
}

/// Writes `rows` to a new private file beside `secrets`, syncs it and renames it over `secrets`.
fn replace(secrets: &Path, rows: &BTreeMap<u64, Entry>) -> std::io::Result<()> {
    let tmp = temp_path(secrets);
    // A stale temp file (or a link planted at its name) goes; the new one is created exclusively.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let file = crate::core::files::create_private_file(&tmp)?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
        writer.write_record(COLUMNS)?;
        for entry in rows.values() {
            let [line, customer, user, upn, domain, kept] = &entry.cells;
            writer.write_record([
                line.as_str(),
                customer,
                user,
                upn,
                entry.password.expose_secret(),
                domain,
                kept,
                entry.applied.as_str(),
            ])?;
        }
        let mut file = writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.flush()?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, secrets)?;
        if let Some(dir) = secrets.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself made durable (best effort: not every system can sync a directory).
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(secrets: &Path) -> PathBuf {
    let name = secrets
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets".into());
    let tmp = format!(".{name}.applied-{}", std::process::id());
    match secrets.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.join(tmp),
        None => PathBuf::from(tmp),
    }
}
