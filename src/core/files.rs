//! Files that must not be written through a link or read by others: opening without following
//! symbolic links, new private (0600) files, atomic replacement. Uses no other module of the crate.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Creates a new file that only its owner can read and write (mode 0600 on Unix); fails if it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    no_follow(options.write(true).create_new(true));
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Replaces `path` with `contents` atomically: a private temp file beside it, synced, then renamed over it.
pub fn write_private_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".into());
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut file = create_private_file(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes `options` refuse to open a symbolic link (the open fails with ELOOP instead).
pub fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Opens (or creates) a sidecar file to read and write it, never through a symbolic link nor
/// through a second hard link to some other file (either would make its writes land elsewhere).
pub fn open_sidecar(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    let file = no_follow(&mut options).open(path).map_err(|e| {
        if is_symlink_refusal(&e) {
            std::io::Error::other("it is a symbolic link: refusing to follow it")
        } else {
            e
        }
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // A FIFO or device planted there would block the read (a run hung for good).
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other(
                "it is not a regular file (a FIFO, a device or a directory): refusing to use it",
            ));
        }
        if file.metadata()?.nlink() > 1 {
            return Err(std::io::Error::other(
                "it has another hard link: refusing to write through it",
            ));
        }
    }
    Ok(file)
}

/// Whether an open failed because `O_NOFOLLOW` met a symbolic link.
pub fn is_symlink_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}
