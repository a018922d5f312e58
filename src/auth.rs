//! Owns the access token: where it comes from (environment or file) and how it is kept (a `secrecy` secret, never printed).

use std::ffi::OsString;
use std::path::Path;

use secrecy::SecretString;

use crate::config::ConfigError;

/// The environment variable holding a fixed access token.
pub const TOKEN_ENV: &str = "BULKPATCH_TOKEN";

/// Reads an access token from a file (first line, trimmed).
pub fn read_token_file(path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    warn_if_readable_by_others(path);
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(ConfigError::EmptyTokenFile {
            path: path.to_owned(),
        });
    }
    Ok(SecretString::from(token.to_owned()))
}

/// Takes the token from the environment variable's value.
pub fn token_from_env(value: OsString) -> Result<SecretString, ConfigError> {
    let token = value.to_string_lossy().trim().to_owned();
    if token.is_empty() {
        return Err(ConfigError::EmptyTokenEnv);
    }
    Ok(SecretString::from(token))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the token file can be read by other users: run `chmod 600` on it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Creates a new file that only its owner can read and write (mode 0600 on Unix); fails if it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
