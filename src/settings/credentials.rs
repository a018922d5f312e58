//! Credentials as resolved from the command line, environment and config: where the access
//! token comes from, and reading secret files and variables into `secrecy` types (registered
//! with the redaction point as they are read). Uses `core`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::settings::ConfigError;

/// The environment variable holding a fixed access token.
pub const TOKEN_ENV: &str = "BULKPATCH_TOKEN";

/// The environment variable holding a refresh token (instead of `refresh_token_file`).
pub const REFRESH_TOKEN_ENV: &str = "BULKPATCH_REFRESH_TOKEN";

/// The environment variable holding the client secret (instead of `client_secret_file`).
pub const CLIENT_SECRET_ENV: &str = "BULKPATCH_CLIENT_SECRET";

/// Default token endpoint; `{tenant}` is replaced.
pub const DEFAULT_TOKEN_URL: &str = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";

/// Where access tokens come from.
#[derive(Debug)]
pub enum Credentials {
    /// A fixed access token (BULKPATCH_TOKEN or a token file): never refreshed.
    Fixed(SecretString),
    /// The OAuth 2.0 refresh-token grant of Partner Center's App+User flow.
    Refresh(RefreshGrant),
}

/// The settings of the refresh-token grant.
#[derive(Debug)]
pub struct RefreshGrant {
    pub token_url: reqwest::Url,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub refresh_token: SecretString,
    /// Where the refresh token came from, if a file: rotated tokens are written back to it.
    pub refresh_token_file: Option<PathBuf>,
    pub scope: String,
    /// The stored sign-in of `bulkpatch login` this grant came from: rotated refresh tokens,
    /// new access tokens and the time of use are written back to it.
    pub stored: Option<Box<super::signin::Stored>>,
}

/// Reads an access token from a file (first line, trimmed).
pub fn read_token_file(path: &Path) -> Result<SecretString, ConfigError> {
    read_secret_file(path)
}

/// Reads a secret from a file (first line, trimmed); warns when others can read the file.
pub fn read_secret_file(path: &Path) -> Result<SecretString, ConfigError> {
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
    crate::core::redact::register(token);
    Ok(SecretString::from(token.to_owned()))
}

/// Takes a secret from an environment variable's value.
pub fn secret_from_env(name: &'static str, value: OsString) -> Result<SecretString, ConfigError> {
    let token = value.to_string_lossy().trim().to_owned();
    if token.is_empty() {
        return Err(ConfigError::EmptyEnv { name });
    }
    crate::core::redact::register(&token);
    Ok(SecretString::from(token))
}

#[cfg(unix)]
pub(crate) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "a secret file can be read by other users: run `chmod 600` on it"
            );
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn warn_if_readable_by_others(_path: &Path) {}
