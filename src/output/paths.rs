//! Owns output-path safety: before a run writes anything, every file it will write (results,
//! `.meta`, secrets, summary JSON, reports, the refresh-token file) is compared with the others
//! and with the input (and the config, token and client-secret files it reads), by canonical path and by device and inode, and a collision is refused;
//! sidecar and secret files are opened without following symbolic links. Uses only std (and
//! `libc` for `O_NOFOLLOW`) and the settings; it sends and writes nothing itself.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::settings::Settings;

/// The first line of a secrets file (a `--force` never overwrites a file that starts with it).
pub const SECRETS_HEADER: &str = "line,customer_id,user_id,user_principal_name,password";

/// Why a run (or a report) would write over something it must not.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{first} and {second} name the same file: {path}; give each its own file")]
    Same {
        first: String,
        second: String,
        path: PathBuf,
    },
    #[error("{option} names {path}, which is a secrets file (it holds passwords already set): it is never overwritten, even with --force; choose another file")]
    IsSecrets { option: String, path: PathBuf },
    #[error("{option} {path}: the directory {} does not exist (or is not a directory); create it or choose another file", dir.display())]
    NoDirectory {
        option: String,
        path: PathBuf,
        dir: PathBuf,
    },
    #[error("--out {path} is not a regular file (a device, a FIFO or a directory): the results file is appended to, compacted and renamed; choose a file")]
    OutNotAFile { path: PathBuf },
    #[error("{path} ({what}) is a symbolic link: refusing to follow it (remove the link, or choose another file)")]
    Symlink { what: String, path: PathBuf },
}

/// One file the run reads or writes, under the name its option gives it in messages.
struct Named {
    name: String,
    path: PathBuf,
}

/// Where a path really leads: its canonical form (the parent's, for a file not there yet) and,
/// for an existing file, its device and inode (so hard links are caught too).
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    canonical: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Identity {
        let resolved = follow_links(path);
        let canonical = resolved.canonicalize().unwrap_or_else(|_| {
            let parent = resolved.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            let parent = parent.canonicalize().unwrap_or_else(|_| parent.to_owned());
            match resolved.file_name() {
                Some(name) => parent.join(name),
                None => parent,
            }
        });
        Identity {
            canonical,
            inode: inode(path),
        }
    }

    fn same(&self, other: &Identity) -> bool {
        self.canonical == other.canonical || (self.inode.is_some() && self.inode == other.inode)
    }
}

/// Follows symbolic links by hand (at most 40), so a dangling link names the file it would create.
fn follow_links(path: &Path) -> PathBuf {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(target) => {
                let base = path.parent().unwrap_or(Path::new("")).to_owned();
                path = base.join(target);
            }
            Err(_) => break,
        }
    }
    path
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Refuses a run whose files collide: checked before the results file, its `.meta` or any
/// other output is created or truncated, and before anything is sent.
pub fn check_run(settings: &Settings) -> Result<(), PathError> {
    let secrets = settings
        .generate_passwords
        .as_ref()
        .map(|g| g.secrets_out.clone());
    let refresh = match &settings.credentials {
        Some(crate::settings::credentials::Credentials::Refresh(g)) => g.refresh_token_file.clone(),
        _ => None,
    };
    let meta = crate::output::resume::meta_path(&settings.out);
    let files: Vec<Named> = [
        ("the input", Some(settings.input.clone())),
        ("--out", Some(settings.out.clone())),
        ("the results file's .meta", Some(meta.clone())),
        ("--secrets-out", secrets.clone()),
        ("--summary-json", settings.summary_json.clone()),
        ("--report", settings.report.clone()),
        ("--undo-file", settings.undo_file.clone()),
        ("[auth] refresh_token_file", refresh),
    ]
    .into_iter()
    .filter_map(|(name, path)| {
        path.map(|path| Named {
            name: name.into(),
            path,
        })
    })
    .collect();
    refuse_collisions(&files)?;
    // `/dev/null` or a FIFO: every update would be sent and its record lost (or the run hang).
    if std::fs::metadata(&settings.out).is_ok_and(|m| !m.is_file()) {
        return Err(PathError::OutNotAFile {
            path: settings.out.clone(),
        });
    }
    // Files only read may coincide with each other (and the input), never with an output.
    for (name, path) in &settings.read_files {
        let read = Identity::of(path);
        if let Some(output) = files[1..]
            .iter()
            .find(|f| read.same(&Identity::of(&f.path)))
        {
            return Err(PathError::Same {
                first: output.name.clone(),
                second: (*name).into(),
                path: output.path.clone(),
            });
        }
    }
    refuse_symlink(&meta, "the results file's .meta")?;
    if let Some(secrets) = &secrets {
        refuse_symlink(secrets, "--secrets-out")?;
    }
    if let Some(undo) = &settings.undo_file {
        refuse_symlink(undo, "--undo-file")?;
    }
    // Files this run replaces as a whole: never a secrets file, whatever --force says.
    for (option, path) in [
        ("--out", Some(&settings.out)),
        ("--summary-json", settings.summary_json.as_ref()),
        ("--report", settings.report.as_ref()),
    ] {
        let appending = option == "--out" && (settings.resume || settings.compact_only);
        if let Some(path) = path.filter(|_| !appending) {
            refuse_secrets(option, path)?;
        }
    }
    Ok(())
}

/// `bulkpatch export`: the export file and its state file are neither each other, nor the
/// customers file, nor a file the export reads (config, token, client secret), nor the
/// refresh-token file, nor a secrets file, nor a symbolic link, nor a device.
pub fn check_export(settings: &Settings) -> Result<(), PathError> {
    let state = crate::output::export_file::state_path(&settings.out);
    let refresh = match &settings.credentials {
        Some(crate::settings::credentials::Credentials::Refresh(g)) => g.refresh_token_file.clone(),
        _ => None,
    };
    let files: Vec<Named> = [
        ("--out", Some(settings.out.clone())),
        ("the export state file", Some(state.clone())),
        ("[auth] refresh_token_file", refresh),
    ]
    .into_iter()
    .filter_map(|(name, path)| {
        Some(Named {
            name: name.into(),
            path: path?,
        })
    })
    .collect();
    refuse_collisions(&files)?;
    for (name, path) in &settings.read_files {
        let read = Identity::of(path);
        if let Some(output) = files[..2]
            .iter()
            .find(|f| read.same(&Identity::of(&f.path)))
        {
            return Err(PathError::Same {
                first: output.name.clone(),
                second: (*name).into(),
                path: output.path.clone(),
            });
        }
    }
    refuse_missing_dir("--out", &settings.out)?;
    for file in &files[..2] {
        refuse_symlink(&file.path, &file.name)?;
        if std::fs::metadata(&file.path).is_ok_and(|m| !m.is_file()) {
            return Err(PathError::OutNotAFile {
                path: file.path.clone(),
            });
        }
        refuse_secrets(&file.name, &file.path)?;
    }
    Ok(())
}

/// Refuses a `--summary-json` or `--report` in a directory that does not exist: they are
/// written only at the end, so this is found before any update is sent rather than after.
/// Checked once the summary JSON can report it (after [`check_run`]).
pub fn check_dirs(settings: &Settings) -> Result<(), PathError> {
    for (option, path) in [
        ("--summary-json", settings.summary_json.as_ref()),
        ("--report", settings.report.as_ref()),
    ] {
        if let Some(path) = path {
            refuse_missing_dir(option, path)?;
        }
    }
    Ok(())
}

/// `bulkpatch report FILE --html X --markdown Y`: X and Y are neither FILE (nor its `.meta`) nor each other.
pub fn check_report(
    results: &Path,
    html: Option<&Path>,
    markdown: Option<&Path>,
) -> Result<(), PathError> {
    let named = |name: &str, path: &Path| Named {
        name: name.into(),
        path: path.to_owned(),
    };
    let mut files = vec![
        named("the results file", results),
        named(
            "the results file's .meta",
            &crate::output::resume::meta_path(results),
        ),
    ];
    for (option, path) in [("--html", html), ("--markdown", markdown)] {
        if let Some(path) = path {
            refuse_secrets(option, path)?;
            files.push(named(option, path));
        }
    }
    refuse_collisions(&files)
}

fn refuse_collisions(files: &[Named]) -> Result<(), PathError> {
    let ids: Vec<Identity> = files.iter().map(|f| Identity::of(&f.path)).collect();
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate().skip(i + 1) {
            if a.same(b) {
                return Err(PathError::Same {
                    first: files[j].name.clone(),
                    second: files[i].name.clone(),
                    path: files[j].path.clone(),
                });
            }
        }
    }
    Ok(())
}

fn refuse_missing_dir(option: &str, path: &Path) -> Result<(), PathError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    if dir.is_dir() {
        return Ok(());
    }
    Err(PathError::NoDirectory {
        option: option.into(),
        path: path.to_owned(),
        dir: dir.to_owned(),
    })
}

fn refuse_symlink(path: &Path, what: &str) -> Result<(), PathError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(PathError::Symlink {
            what: what.into(),
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Refuses `path` when it is (or leads to) a file that starts like a secrets file.
fn refuse_secrets(option: &str, path: &Path) -> Result<(), PathError> {
    let mut start = [0u8; SECRETS_HEADER.len()];
    let is_secrets = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|_| start == SECRETS_HEADER.as_bytes());
    if is_secrets {
        return Err(PathError::IsSecrets {
            option: option.into(),
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The highest input line a results file may name: an input of N bytes has at most N + 1 lines.
/// Bounds what a (crafted) results file can make a resume allocate.
pub fn max_line(input: &Path) -> u64 {
    /// For an input that is not a regular file (its size says nothing): 64 Mi lines.
    const NOT_A_FILE: u64 = 1 << 26;
    match std::fs::metadata(input) {
        Ok(m) if m.is_file() => m.len().saturating_add(1),
        _ => NOT_A_FILE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_and_its_hard_link_and_symlink_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "x").unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&a, &hard).unwrap();
        let link = dir.path().join("link.csv");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let dangling = dir.path().join("dangling.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink("new.json", &dangling).unwrap();
        let id = Identity::of(&a);
        assert!(id.same(&Identity::of(&hard)));
        assert!(id.same(&Identity::of(&link)));
        assert!(id.same(&Identity::of(&dir.path().join(".").join("a.csv"))));
        assert!(Identity::of(&dangling).same(&Identity::of(&dir.path().join("new.json"))));
        assert!(!id.same(&Identity::of(&dir.path().join("b.csv"))));
    }
}
