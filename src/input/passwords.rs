//! Owns passwords: Entra's password rules, generation from the OS CSPRNG, and the secrets file (mode 0600) each generated password is written to before its request is sent.

use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use rand::{Rng, TryRngCore};
use secrecy::{ExposeSecret, SecretString};

/// Symbols Entra accepts in a password (besides letters, digits and space).
pub const ENTRA_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<>";
/// The symbols generated passwords use: accepted by Entra, and safe to paste into a CSV cell, a shell or a spreadsheet.
const GENERATED_SYMBOLS: &[u8] = b"!#$%&*+-=?@^_";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";

/// Why a password breaks the rules; never includes the password.
pub fn check(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < 8 {
        return Err("password is shorter than 8 characters");
    }
    if n > 256 {
        return Err("password is longer than 256 characters");
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || ENTRA_SYMBOLS.contains(c))
    {
        return Err("password has a character Entra does not accept (allowed: A-Z a-z 0-9, space and @ # $ % ^ & * - _ ! + = [ ] { } | \\ : ' , . ? / ` ~ \" ( ) ; < >)");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err("password needs at least 3 of: lower case, upper case, digit, symbol");
    }
    Ok(())
}

/// A fresh password of `length` characters (8-256) from the OS CSPRNG, with all four character
/// classes, starting with a letter or digit (so no spreadsheet reads it as a formula).
pub fn generate(length: usize) -> SecretString {
    let length = length.clamp(8, 256);
    let mut rng = OsRng.unwrap_err();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, GENERATED_SYMBOLS].concat();
    let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, GENERATED_SYMBOLS]
        .iter()
        .map(|set| set[rng.random_range(0..set.len())])
        .collect();
    while chars.len() < length {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    if let Some(i) = chars.iter().position(u8::is_ascii_alphanumeric) {
        chars.swap(0, i);
    }
    SecretString::from(String::from_utf8(chars).expect("ASCII"))
}

/// Parses a force_change_password cell: true/false/yes/no/1/0 (any case); empty means true.
pub fn parse_force_change(cell: Option<&str>) -> Result<bool, String> {
    match cell.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(true),
        Some("true" | "yes" | "1" | "y") => Ok(true),
        Some("false" | "no" | "0" | "n") => Ok(false),
        Some(other) => Err(format!(
            "force_change_password \"{}\" is not one of true/false/yes/no/1/0",
            crate::core::text::shorten(other, 20)
        )),
    }
}

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

/// The secrets file: `line,customer_id,user_id,user_principal_name,password`, one line per generated password.
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
        secrets.write([
            "line",
            "customer_id",
            "user_id",
            "user_principal_name",
            "password",
        ])?;
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
        let complete = crate::output::handover::read_complete_lines(path)
            .map_err(io)?
            .len() as u64;
        if file.metadata().map_err(io)?.len() > complete {
            file.set_len(complete).map_err(io)?;
        }
        Ok(SecretsFile {
            path: path.to_owned(),
            writer: csv::Writer::from_writer(file),
        })
    }

    /// Writes one password and makes it durable (flushed and synced) before returning.
    pub fn record(
        &mut self,
        line: u64,
        customer: &str,
        user: &str,
        upn: &str,
        password: &SecretString,
    ) -> Result<(), SecretsError> {
        self.write([
            line.to_string().as_str(),
            customer,
            user,
            upn,
            password.expose_secret(),
        ])
    }

    fn write(&mut self, cells: [&str; 5]) -> Result<(), SecretsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_meet_the_rules() {
        for length in [8, 16, 64, 256] {
            for _ in 0..200 {
                let p = generate(length);
                let p = p.expose_secret();
                assert_eq!(p.len(), length);
                assert_eq!(check(p), Ok(()), "{p}");
                assert!(p.chars().any(|c| c.is_ascii_lowercase()));
                assert!(p.chars().any(|c| c.is_ascii_uppercase()));
                assert!(p.chars().any(|c| c.is_ascii_digit()));
                assert!(p.bytes().any(|c| GENERATED_SYMBOLS.contains(&c)));
                assert!(p.chars().next().unwrap().is_ascii_alphanumeric());
            }
        }
        let a = generate(16);
        let b = generate(16);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn supplied_passwords_are_checked_without_being_quoted() {
        assert_eq!(check("Renew456*"), Ok(()));
        assert_eq!(check("renew456*"), Ok(()), "3 of 4 classes is enough");
        for bad in [
            "Sh0rt!",
            "alllowercase",
            "ALLUPPER123",
            "Bad\u{e9}Pass1!",
            &"Aa1!".repeat(65),
        ] {
            let reason = check(bad).unwrap_err();
            assert!(!reason.contains(bad), "{reason}");
        }
    }

    #[test]
    fn force_change_values() {
        assert_eq!(parse_force_change(None), Ok(true));
        assert_eq!(parse_force_change(Some("")), Ok(true));
        assert_eq!(parse_force_change(Some("No")), Ok(false));
        assert_eq!(parse_force_change(Some("1")), Ok(true));
        assert!(parse_force_change(Some("maybe")).is_err());
    }

    #[test]
    fn the_secrets_file_is_private_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.csv");
        let mut f = SecretsFile::create(&path).unwrap();
        f.record(
            2,
            "c",
            "u",
            "a@b.c",
            &SecretString::from("Pw-1234abcd".to_string()),
        )
        .unwrap();
        // Durable before `record` returns: readable by another reader at once.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "line,customer_id,user_id,user_principal_name,password\n2,c,u,a@b.c,Pw-1234abcd\n"
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
