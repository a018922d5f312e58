//! The secrets file: generated passwords written and synced before their requests are sent,
//! appended to on a resume (a torn last line cut off), and read back for the rows a resume sends
//! again. Its hand-over at the end of a run is `handover`. Uses `core` and `output::resume`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::output::reader::ResumeError;
use crate::output::resume::Finished;

/// A fatal problem with the secrets file.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets file {path} already exists: it may hold passwords already set; move it away or choose another --secrets-out")]
    Exists { path: PathBuf },
    #[error("cannot write secrets file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The columns a run writes (the hand-over adds `applied`). An older version wrote the first
/// five: the password is always the fifth, and a line's number of fields says which it is.
const HEADER: [&str; 7] = [
    "line",
    "customer_id",
    "user_id",
    "user_principal_name",
    "password",
    "customer_domain",
    "context",
];

/// The secrets file: `line,customer_id,user_id,user_principal_name,password,customer_domain,context`,
/// one line per generated password; the last three name the user (the row's context).
pub struct SecretsFile {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl std::fmt::Debug for SecretsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SecretsFile {
    /// Creates the file new, mode 0600, with its header.
    pub fn create(path: &Path) -> Result<SecretsFile, SecretsError> {
        let file = crate::core::files::create_private_file(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SecretsError::Exists {
                    path: path.to_owned(),
                }
            } else {
                SecretsError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let mut secrets = SecretsFile {
            path: path.to_owned(),
            writer: csv::Writer::from_writer(file),
        };
        secrets.write(HEADER)?;
        Ok(secrets)
    }

    /// Opens an existing secrets file to add to it (a resume).
    pub fn append(path: &Path) -> Result<SecretsFile, SecretsError> {
        let io = |source| SecretsError::Io {
            path: path.to_owned(),
            source,
        };
        let file = crate::core::files::no_follow(std::fs::OpenOptions::new().append(true))
            .open(path)
            .map_err(io)?;
        // A line cut short (the disk filled up) is cut off: its row gets a new password.
        let complete = crate::output::secrets::read_complete_lines(path)
            .map_err(io)?
            .len() as u64;
        if file.metadata().map_err(io)?.len() > complete {
            file.set_len(complete).map_err(io)?;
        }
        let mut secrets = SecretsFile {
            path: path.to_owned(),
            writer: csv::Writer::from_writer(file),
        };
        // Cut inside its header (or empty): the header again, or the first password appended
        // would be read as the header and left out of the file handed out.
        if complete == 0 {
            secrets.write(HEADER)?;
        }
        Ok(secrets)
    }

    /// Writes one password and makes it durable (flushed and synced) before returning. `names`:
    /// the UPN the user signs in with, the customer's domain and the kept columns' cell.
    pub fn record(
        &mut self,
        line: u64,
        customer: &str,
        user: &str,
        names: [&str; 3],
        password: &SecretString,
    ) -> Result<(), SecretsError> {
        let [upn, domain, kept] = names.map(crate::output::results::spreadsheet_safe);
        self.write([
            line.to_string().as_str(),
            customer,
            user,
            &upn,
            password.expose_secret(),
            &domain,
            &kept,
        ])
    }

    fn write(&mut self, cells: [&str; 7]) -> Result<(), SecretsError> {
        let io = |source| SecretsError::Io {
            path: self.path.clone(),
            source,
        };
        self.writer
            .write_record(cells)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        self.writer.flush().map_err(io)?;
        self.writer.get_ref().sync_data().map_err(io)
    }
}

/// The bytes of a secrets file up to and including its last line end, opened without following
/// a symbolic link. What follows the last line end is a line cut short: never used.
pub fn read_complete_lines(path: &Path) -> std::io::Result<Vec<u8>> {
    read_lines(path, true)
}

/// `read_complete_lines`, warning about a cut line only when `warn` (once per run is enough).
pub fn read_lines(path: &Path, warn: bool) -> std::io::Result<Vec<u8>> {
    let mut file =
        crate::core::files::no_follow(std::fs::OpenOptions::new().read(true)).open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() && warn {
        tracing::warn!(
            file = %path.display(),
            "the secrets file's last line was cut short: it is ignored, and its row gets a new password"
        );
    }
    bytes.truncate(complete);
    Ok(bytes)
}

/// Passwords a generated-password run already wrote for lines that are not finished: they may
/// have been applied, so a resume sends them again rather than new ones.
pub fn earlier_passwords(
    secrets: &Path,
    finished: &Finished,
) -> Result<HashMap<u64, (Uuid, SecretString)>, ResumeError> {
    // Only complete lines: a line cut short (the disk filled up) may hold part of a password.
    // Its row was never sent with it (each line is synced before its request), so it gets a new one.
    let complete = read_complete_lines(secrets).map_err(|source| ResumeError::Io {
        path: secrets.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(complete.as_slice());
    let mut out = HashMap::new();
    let mut record = csv::StringRecord::new();
    while let Ok(true) = reader.read_record(&mut record) {
        // Seven columns as written during a run, eight (`applied`) once rewritten at its end;
        // an older version's five and six.
        if !(5..=8).contains(&record.len()) || record[4].is_empty() {
            continue;
        }
        let (Ok(line), Ok(user)) = (record[0].parse::<u64>(), Uuid::parse_str(&record[2])) else {
            continue;
        };
        if finished.has_line(line) {
            continue;
        }
        out.insert(line, (user, SecretString::from(record[4].to_string())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secrets_file_is_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.csv");
        let mut f = SecretsFile::create(&path).unwrap();
        f.record(
            2,
            "c",
            "u",
            ["a@b.c", "=contoso.de", r#"{"Dept":"Sales"}"#],
            &SecretString::from("Pw-1234abcd".to_string()),
        )
        .unwrap();
        // Durable before `record` returns: readable by another reader at once.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "line,customer_id,user_id,user_principal_name,password,customer_domain,context\n2,c,u,a@b.c,Pw-1234abcd,'=contoso.de,\"{\"\"Dept\"\":\"\"Sales\"\"}\"\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            SecretsFile::create(&path),
            Err(SecretsError::Exists { .. })
        ));
        assert!(!format!("{f:?}").contains("Pw-1234abcd"));
    }
}
