//! Resolves command-line values, the environment and the TOML config file into one validated
//! `Settings` (CLI > env > file > defaults). Owns `Settings`, its resolution and the checks across
//! options; each option is declared once in `options` (flag, variable, key, default, help,
//! parser), the file is read in `file`, values are parsed in `values`, credentials in
//! `credentials`. Never sees clap (the command line gives a plain `RunArgs`). Uses `core`.

pub mod ca;
pub mod credentials;
pub mod export;
pub mod file;
pub mod login;
pub mod options;
pub mod signin;
pub mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

pub use file::{closest, documented_keys, AuthConfig, FileConfig, AUTH_KEYS};
pub use options::{CliOptions, Values, CONFIG_KEYS};
pub use values::{parse_base_url, parse_delimiter, parse_duration, parse_duration_in, Rate};

use crate::core::run_state::Operation;

/// A fatal configuration problem: stops the run before any request is sent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path}: unknown key `{key}`{}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        path: PathBuf,
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("config file {path}: {}", problems.join("; "))]
    WrongType {
        path: PathBuf,
        /// One per key: `rate: expected a string such as "8/s", found the integer 5`.
        problems: Vec<String>,
    },
    #[error("{source_name}: `{key}` {message}")]
    Invalid {
        source_name: String,
        key: &'static str,
        message: String,
    },
    #[error("no access token: set BULKPATCH_TOKEN, pass --token-file FILE, sign in with `bulkpatch login`, or configure the [auth] refresh-token grant in the config file; a --dry-run needs none")]
    MissingToken,
    #[error("cannot read token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} is empty")]
    EmptyTokenFile { path: PathBuf },
    #[error("{name} is set but empty")]
    EmptyEnv { name: &'static str },
    #[error("{source_name}: [auth] {message}")]
    Auth {
        source_name: String,
        message: String,
    },
    #[error("--generate-passwords needs --secrets-out FILE: the generated passwords must be kept somewhere (a new file, mode 0600)")]
    SecretsOutRequired,
    #[error("secrets file {path} already exists: it may hold passwords already set; move it away or choose another --secrets-out")]
    SecretsOutExists { path: PathBuf },
    #[error("results file {path} already exists: pass --resume to continue that run, --force to overwrite it, or choose another with --out")]
    OutExists { path: PathBuf },
    /// `audit` has no --resume: it reads only, so it is run again from the start.
    #[error("audit file {path} already exists: pass --force to overwrite it, or choose another with --out")]
    AuditOutExists { path: PathBuf },
    #[error("nothing to resume: there is no results file at {path} (run without --resume to start, or give the results file with --out)")]
    NothingToResume { path: PathBuf },
    #[error(transparent)]
    SignIn(#[from] signin::SignInError),
    #[error("--out and the input name the same file: {path}; give the results their own file")]
    OutIsInput { path: PathBuf },
}

/// The values of `bulkpatch run` or `audit` as given on the command line (or through their
/// environment variables), before resolution.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub input: PathBuf,
    pub config: Option<PathBuf>,
    /// `bulkpatch audit`: read and compare, never write.
    pub audit: bool,
    /// Hide the progress bar and the periodic progress lines (`-q`).
    pub quiet: bool,
    /// Every declared option the command line gave.
    pub options: CliOptions,
}

/// Everything `run` needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub input: PathBuf,
    pub out: PathBuf,
    pub force: bool,
    pub base_url: reqwest::Url,
    pub rate: Rate,
    /// A limit per customer tenant as well (Partner Center throttles per partner+customer too).
    pub per_customer_rate: Option<Rate>,
    pub concurrency: usize,
    /// Rows of one customer per request (`--batch`; Graph `$batch`), 1 to the target's largest.
    pub batch: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Root certificates trusted besides the operating system's (`--ca-file`), already read.
    pub ca_file: Option<ca::CaFile>,
    /// The API the run updates users through (`--target`).
    pub target: std::sync::Arc<dyn crate::targets::Target>,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub customer_id: Option<Uuid>,
    pub ignore_unknown_columns: bool,
    /// The fields sent (`--fields`); None: every field column of the input.
    pub fields: Option<Vec<crate::targets::Field>>,
    /// Input columns carried into the outputs as context (`--keep-columns`).
    pub keep_columns: Vec<String>,
    pub delimiter: Option<u8>,
    pub dry_run: bool,
    /// `--expect-sha256`: the input must have this digest, or the run does not start.
    pub expect_sha256: Option<crate::core::digest::Sha256>,
    /// `--max-changes`: the most rows a run may write.
    pub max_changes: Option<u64>,
    pub summary_json: Option<PathBuf>,
    /// Where access tokens come from; None only in a dry run.
    pub credentials: Option<credentials::Credentials>,
    /// Generate a password for every row (`--generate-passwords`).
    pub generate_passwords: Option<PasswordGeneration>,
    /// What the workers do with each row.
    pub operation: crate::core::run_state::Operation,
    /// Write an HTML report here at the end.
    pub report: Option<PathBuf>,
    /// Continue the run recorded in `out` (`--resume`).
    /// `--undo-file`: the previous values, written ahead of each row's request.
    pub undo_file: Option<PathBuf>,
    /// `--include-admins`: administrators' passwords are changed too (no roles read).
    pub include_admins: bool,
    /// `--protected-roles`: the roles that protect a password (empty: any role).
    pub protected_roles: Vec<String>,
    /// `--protect-file`: users never changed.
    pub protect_file: Option<PathBuf>,
    pub resume: bool,
    /// With `resume`, send again every failed row, not only those that failed transiently.
    pub retry_failed: bool,
    /// Only compact the results file; send nothing.
    pub compact_only: bool,
    /// After a first Ctrl-C, how long requests in flight may take before the run stops at once.
    pub grace_period: Duration,
    pub show_progress: bool,
    pub progress_interval: Duration,
    /// Files the run only reads that no output may replace (the config file, the token and
    /// client-secret files), each with the option that names it.
    pub read_files: Vec<(&'static str, PathBuf)>,
}

impl Settings {
    /// Settings with every default, for `input`; callers set what they need (the demo and tests use this).
    pub fn with_defaults(input: impl Into<PathBuf>) -> Settings {
        let values =
            Values::defaults().expect("the declared defaults are valid (a unit test checks)");
        Settings::from_values(input.into(), values)
    }

    /// Where each option's value lands: the one place besides its declaration an option is named.
    fn from_values(input: PathBuf, v: Values) -> Settings {
        Settings {
            out: v.out.clone().unwrap_or_else(|| default_out(&input)),
            input,
            force: v.force,
            base_url: v.base_url.unwrap_or_else(|| default_base_url(&*v.target)),
            rate: v.rate,
            per_customer_rate: v.per_customer_rate,
            concurrency: v.concurrency,
            batch: v.batch.unwrap_or_else(|| v.target.batch_size()),
            max_attempts: v.max_attempts,
            ca_file: v.ca_file,
            target: v.target,
            timeout: v.timeout,
            connect_timeout: v.connect_timeout,
            backoff_base: v.backoff_base,
            backoff_cap: v.backoff_cap,
            customer_id: v.customer_id,
            ignore_unknown_columns: v.ignore_unknown_columns,
            // The list (`v.fields`) names the target's fields: read in `resolve`.
            fields: None,
            keep_columns: v.keep_columns,
            delimiter: v.delimiter,
            dry_run: v.dry_run,
            expect_sha256: v.expect_sha256,
            max_changes: v.max_changes,
            summary_json: v.summary_json,
            credentials: None,
            generate_passwords: None,
            operation: Operation::Patch {
                skip_unchanged: v.skip_unchanged,
            },
            report: v.report,
            undo_file: v.undo_file,
            include_admins: v.include_admins,
            protected_roles: v.protected_roles,
            protect_file: v.protect_file,
            resume: v.resume,
            retry_failed: v.retry_failed,
            compact_only: v.compact,
            grace_period: v.grace_period,
            show_progress: true,
            progress_interval: v.progress_interval,
            read_files: Vec::new(),
        }
    }

    /// Resolves CLI values (which already include their environment variables), the config file
    /// and defaults, then checks what concerns several options at once.
    pub fn resolve(args: RunArgs) -> Result<Settings, ConfigError> {
        let (file, file_name) = match &args.config {
            Some(p) => (FileConfig::load(p)?, format!("config file {}", p.display())),
            None => (FileConfig::default(), String::from("config")),
        };
        let values = Values::merge(&args.options, &file, &file_name)?;
        let fields_source = values.source("fields").to_string();
        check_batch(&values)?;
        let fields_list = values.fields.clone();
        let passwords = values.generate_passwords.then(|| {
            let length = values.password_length;
            (length, values.source("password_length").to_string())
        });
        let secrets_out = values.secrets_out.clone();
        let mut s = Settings::from_values(args.input.clone(), values);
        if args.audit {
            s.operation = Operation::Audit;
            if args.options.out.is_none() && file.out.is_none() {
                s.out = default_audit_out(&args.input);
            }
        }
        s.show_progress = !args.quiet;
        s.read_files = read_files(&args, &file);
        if s.backoff_base > s.backoff_cap {
            return Err(ConfigError::Invalid {
                source_name: file_name,
                key: "backoff_base",
                message: "must not be longer than backoff_cap".into(),
            });
        }
        check_out(&s, args.audit)?;
        if let Some(list) = fields_list {
            let fields = crate::targets::select::parse_fields(&*s.target, &list);
            s.fields = Some(fields.map_err(|message| ConfigError::Invalid {
                source_name: fields_source.clone(),
                key: "fields",
                message,
            })?);
        }
        let leaves_out_password = s
            .fields
            .as_ref()
            .is_some_and(|f| !f.contains(&crate::targets::Field::Password));
        if passwords.is_some() && leaves_out_password {
            return Err(ConfigError::Invalid {
                source_name: fields_source,
                key: "fields",
                message: "leaves out password, but --generate-passwords sends one: add password to the fields".into(),
            });
        }
        if let Some((length, source_name)) = passwords {
            s.generate_passwords = Some(password_generation(&s, length, source_name, secrets_out)?);
        }
        // A dry run sends nothing and needs no credentials; nor does compacting.
        if !s.dry_run && !s.compact_only {
            let scope = s.target.oauth_scope();
            s.credentials = Some(resolve_credentials(&args, &file, &file_name, scope)?);
        }
        Ok(s)
    }
}

/// `--batch N` over the target's largest batch (Partner Center has none): refused, naming the option.
fn check_batch(values: &Values) -> Result<(), ConfigError> {
    let largest = values.target.batch_size();
    match values.batch {
        Some(n) if n > largest => Err(ConfigError::Invalid {
            source_name: values.source("batch").to_string(),
            key: "batch",
            message: format!(
                "is {n}, but {} takes at most {largest} row(s) per request{}",
                values.target.title(),
                if largest == 1 {
                    " (it has no batch requests)"
                } else {
                    ""
                }
            ),
        }),
        _ => Ok(()),
    }
}

/// The target's own API root, for a run without `--base-url`.
fn default_base_url(target: &dyn crate::targets::Target) -> reqwest::Url {
    reqwest::Url::parse(target.default_base_url())
        .expect("every target's default base URL parses (a unit test checks)")
}

/// The files named as the config and as secrets to read, whether or not they are used.
fn read_files(args: &RunArgs, file: &FileConfig) -> Vec<(&'static str, PathBuf)> {
    let auth = file.auth.as_ref();
    [
        ("--config", args.config.clone()),
        ("--token-file", args.options.token_file.clone()),
        ("token_file", file.token_file.clone()),
        (
            "[auth] client_secret_file",
            auth.and_then(|a| a.client_secret_file.clone()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, path)| Some((name, path?)))
    .collect()
}

/// The results file: not the input, there to resume or compact, not overwritten unasked.
fn check_out(s: &Settings, audit: bool) -> Result<(), ConfigError> {
    let path = s.out.clone();
    if same_path(&s.out, &s.input) {
        return Err(ConfigError::OutIsInput { path });
    }
    if (s.resume || s.compact_only) && !s.out.exists() {
        return Err(ConfigError::NothingToResume { path });
    }
    if !s.force && !s.resume && !s.compact_only && s.out.exists() {
        return Err(if audit {
            ConfigError::AuditOutExists { path }
        } else {
            ConfigError::OutExists { path }
        });
    }
    Ok(())
}

/// `--generate-passwords`: a length in range and a new secrets file.
fn password_generation(
    s: &Settings,
    length: usize,
    source_name: String,
    secrets_out: Option<PathBuf>,
) -> Result<PasswordGeneration, ConfigError> {
    if !(8..=256).contains(&length) {
        return Err(ConfigError::Invalid {
            source_name,
            key: "password_length",
            message: format!("must be between 8 and 256 (got {length})"),
        });
    }
    let secrets_out = secrets_out.ok_or(ConfigError::SecretsOutRequired)?;
    if !s.dry_run && !s.resume && secrets_out.exists() {
        return Err(ConfigError::SecretsOutExists { path: secrets_out });
    }
    Ok(PasswordGeneration {
        length,
        secrets_out,
    })
}

/// Password generation settings.
#[derive(Clone, Debug)]
pub struct PasswordGeneration {
    pub length: usize,
    /// The new file (mode 0600) each password is written to before its request is sent.
    pub secrets_out: PathBuf,
}

/// Credentials, by precedence: --token-file (CLI) > BULKPATCH_TOKEN (env) > the config file's
/// `[auth]` refresh-token grant or its `token_file`.
fn resolve_credentials(
    args: &RunArgs,
    file: &FileConfig,
    file_name: &str,
    default_scope: &str,
) -> Result<credentials::Credentials, ConfigError> {
    if let Some(path) = &args.options.token_file {
        return Ok(credentials::Credentials::Fixed(
            credentials::read_token_file(path)?,
        ));
    }
    if let Some(value) = std::env::var_os(credentials::TOKEN_ENV) {
        return Ok(credentials::Credentials::Fixed(
            credentials::secret_from_env(credentials::TOKEN_ENV, value)?,
        ));
    }
    // The stored sign-in of `bulkpatch login`, unless the config names a token of its own.
    let auth_refreshes = std::env::var_os(credentials::REFRESH_TOKEN_ENV).is_some()
        || file
            .auth
            .as_ref()
            .is_some_and(|a| a.refresh_token_file.is_some());
    if file.token_file.is_none() && !auth_refreshes {
        if let Some(stored) = signin::stored_credentials(default_scope)? {
            return Ok(stored);
        }
    }
    let auth_error = |message: String| ConfigError::Auth {
        source_name: file_name.to_string(),
        message,
    };
    match (&file.auth, &file.token_file) {
        (Some(_), Some(_)) => Err(auth_error(
            "and `token_file` are both set: keep one (the [auth] section refreshes tokens; token_file is a fixed token)".into(),
        )),
        (None, Some(path)) => Ok(credentials::Credentials::Fixed(credentials::read_token_file(path)?)),
        (None, None) => Err(ConfigError::MissingToken),
        (Some(a), None) => {
            let client_id = a
                .client_id
                .clone()
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| auth_error("needs `client_id` (the application id)".into()))?;
            let token_url = match (&a.token_url, &a.tenant) {
                (Some(url), _) => url.clone(),
                (None, Some(tenant)) if !tenant.trim().is_empty() => {
                    credentials::DEFAULT_TOKEN_URL.replace("{tenant}", tenant.trim())
                }
                _ => {
                    return Err(auth_error(
                        "needs `tenant` (the partner tenant id or domain) or `token_url`".into(),
                    ))
                }
            };
            let token_url = parse_base_url(&token_url)
                .map_err(|m| auth_error(format!("`token_url` {m}")))?;
            let (refresh_token, refresh_token_file) =
                match (std::env::var_os(credentials::REFRESH_TOKEN_ENV), &a.refresh_token_file) {
                    (Some(v), _) => (credentials::secret_from_env(credentials::REFRESH_TOKEN_ENV, v)?, None),
                    (None, Some(path)) => (credentials::read_secret_file(path)?, Some(path.clone())),
                    (None, None) => {
                        return Err(auth_error(format!(
                            "needs a refresh token: set {} or `refresh_token_file`",
                            credentials::REFRESH_TOKEN_ENV
                        )))
                    }
                };
            let client_secret = match (std::env::var_os(credentials::CLIENT_SECRET_ENV), &a.client_secret_file)
            {
                (Some(v), _) => Some(credentials::secret_from_env(credentials::CLIENT_SECRET_ENV, v)?),
                (None, Some(path)) => Some(credentials::read_secret_file(path)?),
                (None, None) => None,
            };
            Ok(credentials::Credentials::Refresh(credentials::RefreshGrant {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                refresh_token_file,
                scope: a.scope.clone().unwrap_or_else(|| default_scope.into()),
                stored: None,
            }))
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `<input-stem>.results.csv` beside the input.
pub fn default_out(input: &Path) -> PathBuf {
    beside(input, "results.csv")
}

/// `<input-stem>.audit.csv` beside the input.
pub fn default_audit_out(input: &Path) -> PathBuf {
    beside(input, "audit.csv")
}

fn beside(input: &Path, suffix: &str) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    input.with_file_name(format!("{stem}.{suffix}"))
}
