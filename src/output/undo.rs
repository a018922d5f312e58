//! The undo file: for each row a run changes, the user's previous values of the fields it
//! changes, in the input's format (`customer_id,user_id,<field columns>`), so that running the
//! file reverts the run. Write-ahead, like the secrets file: a row's previous values are
//! appended and synced before its request is sent, so a crash can never lose an original value.
//! At the end of a run (and of a resume) the file is rewritten, atomically, to hold the rows
//! that were applied or may have been (interrupted in flight), once each, with the values the
//! first run read. Uses `core` and `output::resume`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use uuid::Uuid;

use crate::core::run_state::Outcome;

/// A fatal problem with the undo file.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("undo file {path} already exists: it may hold the only copy of values an earlier run replaced; move it away, choose another --undo-file, or add --resume to continue that run")]
    Exists { path: PathBuf },
    #[error("undo file {path} has the columns `{found}`, not `{expected}`: it was written for another input or tool version")]
    Columns {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("cannot write undo file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The undo file of a run, open for appending.
#[derive(Debug)]
pub struct UndoFile {
    path: PathBuf,
    /// The field columns after `customer_id,user_id`.
    columns: Vec<&'static str>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: std::fs::File,
    /// Users already in the file: an earlier run read their values first, and those are kept.
    written: HashSet<(Uuid, Uuid)>,
}

impl UndoFile {
    /// Creates the file new (never over an existing one), mode 0600, with its header; on a
    /// resume, opens the existing one to append, its torn last line cut off.
    pub fn open(
        path: &Path,
        columns: Vec<&'static str>,
        resume: bool,
    ) -> Result<UndoFile, UndoError> {
        let io = |source| UndoError::Io {
            path: path.to_owned(),
            source,
        };
        let header = header(&columns);
        let (file, written) = if resume && path.exists() {
            let (found, written) = read_keys(path).map_err(io)?;
            if found != header {
                return Err(UndoError::Columns {
                    path: path.to_owned(),
                    found: found.join(","),
                    expected: header.join(","),
                });
            }
            crate::output::reader::cut_torn_tail(path)
                .map_err(|e| io(std::io::Error::other(e.to_string())))?;
            let mut options = std::fs::OpenOptions::new();
            crate::core::files::no_follow(options.append(true));
            (options.open(path).map_err(io)?, written)
        } else {
            let mut file = crate::core::files::create_private_file(path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    UndoError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    io(e)
                }
            })?;
            file.write_all(csv_line(&header).as_bytes()).map_err(io)?;
            file.sync_data().map_err(io)?;
            (file, HashSet::new())
        };
        Ok(UndoFile {
            path: path.to_owned(),
            columns,
            inner: Mutex::new(Inner { file, written }),
        })
    }

    /// Appends `customer`/`user`'s previous values (column, value) and syncs them to disk,
    /// unless an earlier run already recorded this user (its values came first). Returns
    /// whether a line was written.
    pub fn record(
        &self,
        customer: Uuid,
        user: Uuid,
        previous: &[(&'static str, String)],
    ) -> Result<bool, UndoError> {
        let mut inner = self.inner.lock().expect("undo file lock");
        if inner.written.contains(&(customer, user)) {
            return Ok(false);
        }
        let mut cells = vec![customer.to_string(), user.to_string()];
        for column in &self.columns {
            let value = previous
                .iter()
                .find(|(c, _)| c == column)
                .map(|(_, v)| v.clone());
            cells.push(value.unwrap_or_default());
        }
        let io = |source| UndoError::Io {
            path: self.path.clone(),
            source,
        };
        inner
            .file
            .write_all(csv_line(&cells).as_bytes())
            .map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        inner.written.insert((customer, user));
        Ok(true)
    }
}

/// `customer_id,user_id,<columns>`.
fn header(columns: &[&'static str]) -> Vec<String> {
    ["customer_id", "user_id"]
        .iter()
        .chain(columns)
        .map(|c| c.to_string())
        .collect()
}

/// One CSV line. Values are data: a cell Excel would read as a formula is written as
/// `csv` quotes it, and the run that reads the file back takes it as text.
fn csv_line(cells: &[String]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(cells);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The header and the users already in an undo file (complete lines only).
/// The users an undo file holds values for: (customer, user).
type Users = HashSet<(Uuid, Uuid)>;

fn read_keys(path: &Path) -> std::io::Result<(Vec<String>, Users)> {
    let mut header = Vec::new();
    let mut keys = HashSet::new();
    for_each_line(path, |i, cells| {
        if i == 0 {
            header = cells.to_vec();
        } else if let Some(key) = key_of(cells) {
            keys.insert(key);
        }
    })?;
    Ok((header, keys))
}

fn key_of(cells: &[String]) -> Option<(Uuid, Uuid)> {
    Some((cells.first()?.parse().ok()?, cells.get(1)?.parse().ok()?))
}

/// Calls `each` with every complete record of the file (a torn last line is left out).
fn for_each_line(path: &Path, mut each: impl FnMut(usize, &[String])) -> std::io::Result<()> {
    let bytes = crate::output::secrets::read_complete_lines(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.as_slice());
    for (i, record) in reader.records().enumerate() {
        let Ok(record) = record else { continue };
        let cells: Vec<String> = record.iter().map(str::to_string).collect();
        each(i, &cells);
    }
    Ok(())
}

/// What the end-of-run rewrite kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Rows applied (`updated`) or possibly applied (`interrupted`).
    pub rows: u64,
    /// Lines dropped: rows that failed or were not sent, and repeats.
    pub dropped: u64,
}

/// Rewrites the undo file to the rows `results` has as applied or possibly applied, each once
/// (its first line: the value read before anything changed it), atomically.
pub fn finish(undo: &Path, results: &Path, max_line: u64) -> Result<Kept, UndoError> {
    let io = |source| UndoError::Io {
        path: undo.to_owned(),
        source,
    };
    let mut outcome: HashMap<(String, String), Option<Outcome>> = HashMap::new();
    crate::output::resume::read_results(results, max_line, |_, record| {
        outcome.insert((record.customer_id, record.user_id), record.outcome);
    })
    .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let mut out = String::new();
    let mut kept = Kept::default();
    let mut seen = HashSet::new();
    for_each_line(undo, |i, cells| {
        if i == 0 {
            out.push_str(&csv_line(cells));
            return;
        }
        let applied = key_of(cells)
            .filter(|key| seen.insert(*key))
            .and_then(|(c, u)| outcome.get(&(c.to_string(), u.to_string())));
        if matches!(applied, Some(Some(Outcome::Updated | Outcome::Interrupted))) {
            out.push_str(&csv_line(cells));
            kept.rows += 1;
        } else {
            kept.dropped += 1;
        }
    })
    .map_err(io)?;
    crate::core::files::write_private_atomically(undo, out.as_bytes()).map_err(io)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn values_are_written_ahead_once_per_user_and_a_resume_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("undo.csv");
        let columns = vec!["usage_location", "display_name"];
        let undo = UndoFile::open(&path, columns.clone(), false).unwrap();
        assert!(undo
            .record(id(1), id(2), &[("usage_location", "US".into())])
            .unwrap());
        assert!(!undo
            .record(id(1), id(2), &[("usage_location", "DE".into())])
            .unwrap());
        drop(undo);
        assert!(matches!(
            UndoFile::open(&path, columns.clone(), false),
            Err(UndoError::Exists { .. })
        ));
        // A resume: the first run's value for user 2 stays; user 3 is added.
        let undo = UndoFile::open(&path, columns.clone(), true).unwrap();
        assert!(!undo
            .record(id(1), id(2), &[("usage_location", "DE".into())])
            .unwrap());
        assert!(undo
            .record(id(1), id(3), &[("display_name", "=Eve, \"x\"".into())])
            .unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let (c, u2, u3) = (id(1), id(2), id(3));
        assert_eq!(
            text,
            format!(
                "customer_id,user_id,usage_location,display_name\n{c},{u2},US,\n{c},{u3},,\"=Eve, \"\"x\"\"\"\n"
            )
        );
        assert!(matches!(
            UndoFile::open(&path, vec!["usage_location"], true),
            Err(UndoError::Columns { .. })
        ));
    }
}
