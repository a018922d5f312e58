//! `--protect-file`: users never changed by any run (break-glass accounts), one user GUID or
//! user principal name per line, `#` starting a comment. Uses `core` and `input::rows`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::input::rows::Row;

/// Why a protect file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtectFileError {
    #[error("cannot read --protect-file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--protect-file {path}, line {line}: `{text}` is neither a user GUID nor a user principal name (name@domain)")]
    Line {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// The users a run never changes.
#[derive(Debug, Default)]
pub struct ProtectList {
    ids: HashSet<Uuid>,
    /// User principal names in lower case.
    names: HashSet<String>,
}

impl ProtectList {
    pub fn read(path: &Path) -> Result<ProtectList, ProtectFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProtectFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut list = ProtectList::default();
        for (i, line) in text.lines().enumerate() {
            let entry = line.trim().trim_start_matches('\u{feff}');
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            if let Ok(id) = crate::core::ids::parse_guid(entry) {
                list.ids.insert(id);
            } else if entry.contains('@') && !entry.contains(char::is_whitespace) {
                list.names.insert(entry.to_lowercase());
            } else {
                return Err(ProtectFileError::Line {
                    path: path.to_owned(),
                    line: i + 1,
                    text: crate::core::text::shorten(entry, 80),
                });
            }
        }
        Ok(list)
    }

    /// Whether `row`'s user is protected: by its GUID, or by its user principal name (the row's
    /// label, or the new name it would be given).
    pub fn protects(&self, row: &Row) -> bool {
        let named = |upn: &str| !upn.is_empty() && self.names.contains(&upn.to_lowercase());
        self.ids.contains(&row.user)
            || named(&row.context.upn)
            || row
                .changes
                .user_principal_name
                .as_deref()
                .is_some_and(named)
    }

    pub fn len(&self) -> usize {
        self.ids.len() + self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_names_are_read_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("protect.txt");
        let id = Uuid::from_u128(7);
        std::fs::write(
            &path,
            format!("# break glass\n{id}\n  BreakGlass@Contoso.com \n\n"),
        )
        .unwrap();
        let list = ProtectList::read(&path).unwrap();
        assert_eq!(list.len(), 2);
        let mut row = Row {
            line: 2,
            customer: Uuid::from_u128(1),
            user: id,
            changes: Default::default(),
            hash: 0,
            context: Default::default(),
        };
        assert!(list.protects(&row));
        row.user = Uuid::from_u128(8);
        assert!(!list.protects(&row));
        row.context.upn = "breakglass@contoso.com".into();
        assert!(list.protects(&row));
        std::fs::write(&path, "ok@x.com\nnot a user\n").unwrap();
        let e = ProtectList::read(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a user"), "{e}");
    }
}
