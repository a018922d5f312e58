//! What `bulkpatch login` needs, resolved once: the authority, tenant, client id and scope
//! (command line or environment > the config file's `[auth]` keys > default; the scope is
//! `[auth] scope`, else the chosen target's, `--target` or `target`), the flow, and the
//! HTTP client's settings (timeouts and `ca_file` from the config file). Uses `settings`.

use std::path::PathBuf;
use std::time::Duration;

use super::{ca::CaFile, CliOptions, ConfigError, FileConfig, Values};

/// `bulkpatch login` as given on the command line, before resolution.
#[derive(Clone, Debug, Default)]
pub struct LoginArgs {
    pub config: Option<PathBuf>,
    /// The declared `login` options the command line gave.
    pub options: CliOptions,
    pub device_code: bool,
    pub no_browser: bool,
}

/// Everything `login` needs, validated.
#[derive(Debug)]
pub struct LoginSettings {
    /// Without a trailing slash.
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
    pub device_code: bool,
    pub open_browser: bool,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub ca_file: Option<CaFile>,
}

impl LoginSettings {
    pub fn resolve(args: LoginArgs) -> Result<LoginSettings, ConfigError> {
        let (file, file_name) = match &args.config {
            Some(path) => (
                FileConfig::load(path)?,
                format!("config file {}", path.display()),
            ),
            None => (FileConfig::default(), "config".to_string()),
        };
        let mut options = args.options;
        let auth = file.auth.as_ref();
        let from_auth = |v: Option<&String>| v.filter(|t| !t.trim().is_empty()).cloned();
        options.tenant = options
            .tenant
            .or_else(|| from_auth(auth.and_then(|a| a.tenant.as_ref())));
        options.client_id = options
            .client_id
            .or_else(|| from_auth(auth.and_then(|a| a.client_id.as_ref())));
        options.authority = options
            .authority
            .or_else(|| from_auth(auth.and_then(|a| a.authority.as_ref())));
        let values = Values::merge(&options, &file, &file_name)?;
        let client_id = values.client_id.clone().ok_or_else(|| ConfigError::Invalid {
            source_name: "login".into(),
            key: "client_id",
            message: "is needed: pass --client-id GUID (or set [auth] client_id), the application id of a public-client app registration with the redirect URI http://localhost".into(),
        })?;
        let scope = auth
            .and_then(|a| a.scope.clone())
            .unwrap_or_else(|| values.target.oauth_scope().to_string());
        Ok(LoginSettings {
            authority: values.authority.as_str().trim_end_matches('/').to_string(),
            tenant: values.tenant.trim().to_string(),
            client_id: client_id.trim().to_string(),
            scope,
            device_code: args.device_code,
            open_browser: !args.no_browser,
            timeout: values.timeout,
            connect_timeout: values.connect_timeout,
            ca_file: values.ca_file,
        })
    }
}
