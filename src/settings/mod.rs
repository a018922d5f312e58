//! Resolves command-line values, the environment and the TOML config file into one validated `Settings` (CLI > env > file > defaults).

pub mod credentials;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::core::checked;

/// Default request rate ceiling.
pub const DEFAULT_RATE: &str = "8/s";
pub const DEFAULT_CONCURRENCY: usize = 8;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(60);
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// Every key the config file accepts, for the unknown-key check and its suggestion.
pub const CONFIG_KEYS: &[&str] = &[
    "base_url",
    "out",
    "force",
    "rate",
    "per_customer_rate",
    "concurrency",
    "max_attempts",
    "timeout",
    "connect_timeout",
    "backoff_base",
    "backoff_cap",
    "customer_id",
    "ignore_unknown_columns",
    "delimiter",
    "dry_run",
    "summary_json",
    "token_file",
    "progress_interval",
    "generate_passwords",
    "password_length",
    "secrets_out",
    "grace_period",
    "auth",
];

/// Every key of the `[auth]` section.
pub const AUTH_KEYS: &[&str] = &[
    "tenant",
    "client_id",
    "client_secret_file",
    "refresh_token_file",
    "token_url",
    "scope",
];

/// The form of each key's value, with an example, for the type errors of a config file:
/// `rate: expected a string such as "8/s", found the integer 5`. `[auth]` keys are `auth.KEY`.
const FORMS: &[(&str, Form, &str)] = &[
    (
        "base_url",
        Form::Text,
        "\"https://api.partnercenter.microsoft.com\"",
    ),
    ("out", Form::Text, "\"users.results.csv\""),
    ("force", Form::Boolean, "true"),
    ("rate", Form::Text, "\"8/s\""),
    ("per_customer_rate", Form::Text, "\"2/s\""),
    ("concurrency", Form::Count, "8"),
    ("max_attempts", Form::Count, "6"),
    ("timeout", Form::Text, "\"30s\""),
    ("connect_timeout", Form::Text, "\"10s\""),
    ("backoff_base", Form::Text, "\"500ms\""),
    ("backoff_cap", Form::Text, "\"60s\""),
    (
        "customer_id",
        Form::Text,
        "\"0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60\"",
    ),
    ("ignore_unknown_columns", Form::Boolean, "true"),
    ("delimiter", Form::Text, "\";\""),
    ("dry_run", Form::Boolean, "true"),
    ("summary_json", Form::Text, "\"summary.json\""),
    ("token_file", Form::Text, "\"/etc/bulkpatch/token\""),
    ("progress_interval", Form::Text, "\"10s\""),
    ("generate_passwords", Form::Boolean, "true"),
    ("password_length", Form::Count, "16"),
    ("secrets_out", Form::Text, "\"secrets.csv\""),
    ("grace_period", Form::Text, "\"30s\""),
    ("auth", Form::Table, "[auth]"),
    ("auth.tenant", Form::Text, "\"contoso.onmicrosoft.com\""),
    (
        "auth.client_id",
        Form::Text,
        "\"00000000-0000-0000-0000-000000000000\"",
    ),
    (
        "auth.client_secret_file",
        Form::Text,
        "\"/etc/bulkpatch/client-secret\"",
    ),
    (
        "auth.refresh_token_file",
        Form::Text,
        "\"/etc/bulkpatch/refresh-token\"",
    ),
    (
        "auth.token_url",
        Form::Text,
        "\"https://login.microsoftonline.com/contoso/oauth2/v2.0/token\"",
    ),
    (
        "auth.scope",
        Form::Text,
        "\"https://api.partnercenter.microsoft.com/user_impersonation offline_access\"",
    ),
];

/// The TOML type a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Text,
    /// A whole number from 0 to u32::MAX (the key's own range is checked when resolving).
    Count,
    Boolean,
    Table,
}

impl Form {
    fn accepts(self, value: &toml::Value) -> bool {
        match (self, value) {
            (Form::Text, toml::Value::String(_))
            | (Form::Boolean, toml::Value::Boolean(_))
            | (Form::Table, toml::Value::Table(_)) => true,
            (Form::Count, toml::Value::Integer(i)) => u32::try_from(*i).is_ok(),
            _ => false,
        }
    }

    fn expected(self, example: &str) -> String {
        match self {
            Form::Text => format!("a string such as {example}"),
            Form::Count => format!("an integer such as {example}"),
            Form::Boolean => format!("a boolean such as {example}"),
            Form::Table => format!("a table (an {example} section)"),
        }
    }
}

/// How a wrong value is named in a type error: `the integer 5`, `the string "8"`.
fn describe(value: &toml::Value) -> String {
    match value {
        // TOML's own quoting escapes quotes and control characters.
        toml::Value::String(_) => format!("the string {value}"),
        toml::Value::Integer(i) if *i < 0 => format!("the negative integer {i}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the float {f}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date-time {d}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// Every key of `table` (under `prefix`) whose value has the wrong type, one message each.
fn type_errors(table: &toml::Table, prefix: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, value) in table {
        let name = format!("{prefix}{key}");
        let Some((_, form, example)) = FORMS.iter().find(|(k, _, _)| *k == name) else {
            continue; // unknown keys are reported before this check
        };
        if !form.accepts(value) {
            errors.push(format!(
                "{name}: expected {}, found {}",
                form.expected(example),
                describe(value)
            ));
        } else if let toml::Value::Table(inner) = value {
            errors.extend(type_errors(inner, &format!("{name}.")));
        }
    }
    errors
}

/// Default length of generated passwords.
pub const DEFAULT_PASSWORD_LENGTH: usize = 16;

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
    #[error("no access token: set BULKPATCH_TOKEN, pass --token-file FILE, or configure the [auth] refresh-token grant in the config file; a --dry-run needs none")]
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
    #[error("--out and the input name the same file: {path}; give the results their own file")]
    OutIsInput { path: PathBuf },
}

/// A request-rate ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// At most this many requests per second, paced evenly.
    PerSecond(f64),
    /// No pacing at all (concurrency is then the only bound).
    Unlimited,
}

impl Rate {
    /// Parses `N/s`, `N/min` (also `/sec`, `/second`, `/m`, `/minute`, `/h`, `/hour`) or `unlimited`.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let t = text.trim().to_ascii_lowercase();
        if t == "unlimited" || t == "none" {
            return Ok(Rate::Unlimited);
        }
        let (n, unit) = t
            .split_once('/')
            .ok_or_else(|| format!("must look like `8/s` or `500/min` (got `{text}`)"))?;
        let n: f64 = n.trim().parse().map_err(|_| {
            format!("must start with a number, as in `8/s` or `500/min` (got `{text}`)")
        })?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => {
                return Err(format!(
                    "has an unknown unit `{other}`: use `/s` or `/min` (got `{text}`)"
                ))
            }
        };
        // From 1/h to 1,000,000/s (`checked::RATE_MIN_PER_SECOND` ..= `RATE_MAX_PER_SECOND`).
        let per_second =
            checked::rate_per_second(n / seconds).map_err(|why| format!("{why} (got `{text}`)"))?;
        Ok(Rate::PerSecond(per_second))
    }

    /// The time between two requests at this rate, or None when unlimited.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Rate::PerSecond(r) => Some(checked::interval_for_rate(*r)),
            Rate::Unlimited => None,
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => write!(f, "unlimited"),
            Rate::PerSecond(r) if *r >= 1.0 => write!(f, "{}/s", trim_float(*r)),
            Rate::PerSecond(r) => write!(f, "{}/min", trim_float(r * 60.0)),
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The values of `bulkpatch run` as given on the command line (or through their environment variables), before resolution.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub input: PathBuf,
    pub config: Option<PathBuf>,
    pub base_url: Option<String>,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub rate: Option<String>,
    pub per_customer_rate: Option<String>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub timeout: Option<String>,
    pub customer_id: Option<String>,
    pub ignore_unknown_columns: bool,
    pub delimiter: Option<String>,
    pub dry_run: bool,
    pub summary_json: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub generate_passwords: bool,
    pub password_length: Option<usize>,
    pub secrets_out: Option<PathBuf>,
    pub resume: bool,
    pub retry_failed: bool,
    pub compact: bool,
    pub grace_period: Option<String>,
    pub skip_unchanged: bool,
    /// `bulkpatch audit`: read and compare, never write.
    pub audit: bool,
    pub report: Option<PathBuf>,
    /// Hide the progress bar and the periodic progress lines (`-q`).
    pub quiet: bool,
}

/// The config file's contents; every key is optional and documented in `config.example.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub base_url: Option<String>,
    pub out: Option<PathBuf>,
    pub force: Option<bool>,
    pub rate: Option<String>,
    pub per_customer_rate: Option<String>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub backoff_base: Option<String>,
    pub backoff_cap: Option<String>,
    pub customer_id: Option<String>,
    pub ignore_unknown_columns: Option<bool>,
    pub delimiter: Option<String>,
    pub dry_run: Option<bool>,
    pub summary_json: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub progress_interval: Option<String>,
    pub generate_passwords: Option<bool>,
    pub password_length: Option<usize>,
    pub secrets_out: Option<PathBuf>,
    pub grace_period: Option<String>,
    pub auth: Option<AuthConfig>,
}

/// The `[auth]` section: Partner Center's App+User refresh-token grant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub refresh_token_file: Option<PathBuf>,
    pub token_url: Option<String>,
    pub scope: Option<String>,
}

impl FileConfig {
    /// Reads and checks a config file: unknown keys are errors that name the closest known key.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_string(),
        })?;
        for key in table.keys() {
            if !CONFIG_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: key.clone(),
                    suggestion: closest(key, CONFIG_KEYS)
                        .or_else(|| closest(key, AUTH_KEYS).map(|_| "[auth] section")),
                });
            }
        }
        if let Some(toml::Value::Table(auth)) = table.get("auth") {
            for key in auth.keys() {
                if !AUTH_KEYS.contains(&key.as_str()) {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        key: format!("auth.{key}"),
                        suggestion: closest(key, AUTH_KEYS),
                    });
                }
            }
        }
        let problems = type_errors(&table, "");
        if !problems.is_empty() {
            return Err(ConfigError::WrongType {
                path: path.to_owned(),
                problems,
            });
        }
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_string(),
        })
    }
}

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub fn closest(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(&w, c), *c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Everything `run` needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub input: PathBuf,
    pub out: PathBuf,
    pub force: bool,
    /// The API the run updates users through (Partner Center, the only one yet).
    pub target: std::sync::Arc<dyn crate::targets::Target>,
    pub base_url: reqwest::Url,
    pub rate: Rate,
    /// A limit per customer tenant as well (Partner Center throttles per partner+customer too).
    pub per_customer_rate: Option<Rate>,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub customer_id: Option<Uuid>,
    pub ignore_unknown_columns: bool,
    pub delimiter: Option<u8>,
    pub dry_run: bool,
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
    pub resume: bool,
    /// With `resume`, send again every failed row, not only those that failed transiently.
    pub retry_failed: bool,
    /// Only compact the results file; send nothing.
    pub compact_only: bool,
    /// After a first Ctrl-C, how long requests in flight may take before the run stops at once.
    pub grace_period: Duration,
    pub show_progress: bool,
    pub progress_interval: Duration,
}

impl Settings {
    /// Settings with every default, for `input`; callers set what they need (the demo and tests use this).
    pub fn with_defaults(input: impl Into<PathBuf>) -> Settings {
        let input = input.into();
        let target = crate::targets::default_target();
        Settings {
            out: default_out(&input),
            input,
            force: false,
            base_url: reqwest::Url::parse(target.default_base_url()).expect("default URL parses"),
            target,
            rate: Rate::parse(DEFAULT_RATE).expect("default rate parses"),
            per_customer_rate: None,
            concurrency: DEFAULT_CONCURRENCY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            customer_id: None,
            ignore_unknown_columns: false,
            delimiter: None,
            dry_run: false,
            summary_json: None,
            credentials: None,
            generate_passwords: None,
            operation: crate::core::run_state::Operation::Patch {
                skip_unchanged: false,
            },
            report: None,
            resume: false,
            retry_failed: false,
            compact_only: false,
            grace_period: DEFAULT_GRACE_PERIOD,
            show_progress: true,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
        }
    }

    /// Resolves CLI values (which already include their environment variables), the config file and defaults.
    pub fn resolve(args: RunArgs) -> Result<Settings, ConfigError> {
        let (file, file_name) = match &args.config {
            Some(p) => (FileConfig::load(p)?, format!("config file {}", p.display())),
            None => (FileConfig::default(), String::from("config")),
        };
        let cli = "command line";
        let mut s = Settings::with_defaults(&args.input);
        if args.audit {
            s.operation = crate::core::run_state::Operation::Audit;
            s.out = default_audit_out(&args.input);
        } else if args.skip_unchanged {
            s.operation = crate::core::run_state::Operation::Patch {
                skip_unchanged: true,
            };
        }
        s.report = args.report.clone();

        // Each value: (CLI or env) > file > default; errors name where the bad value came from.
        macro_rules! pick {
            ($cli:expr, $file:expr) => {
                match ($cli, $file) {
                    (Some(v), _) => Some((v, cli)),
                    (None, Some(v)) => Some((v, file_name.as_str())),
                    (None, None) => None,
                }
            };
        }
        let invalid = |src: &str, key: &'static str, message: String| ConfigError::Invalid {
            source_name: src.to_string(),
            key,
            message,
        };

        if let Some((v, src)) = pick!(args.base_url.clone(), file.base_url.clone()) {
            s.base_url = parse_base_url(&v).map_err(|m| invalid(src, "base_url", m))?;
        }
        if let Some((v, src)) = pick!(args.rate.clone(), file.rate.clone()) {
            s.rate = Rate::parse(&v).map_err(|m| invalid(src, "rate", m))?;
        }
        if let Some((v, src)) = pick!(
            args.per_customer_rate.clone(),
            file.per_customer_rate.clone()
        ) {
            s.per_customer_rate =
                Some(Rate::parse(&v).map_err(|m| invalid(src, "per_customer_rate", m))?);
        }
        if let Some((v, src)) = pick!(args.concurrency, file.concurrency) {
            if v == 0 || v > 1024 {
                return Err(invalid(
                    src,
                    "concurrency",
                    format!("must be between 1 and 1024 (got {v})"),
                ));
            }
            s.concurrency = v;
        }
        if let Some((v, src)) = pick!(args.max_attempts, file.max_attempts) {
            if v == 0 || v > 100 {
                return Err(invalid(
                    src,
                    "max_attempts",
                    format!("must be between 1 and 100 (got {v})"),
                ));
            }
            s.max_attempts = v;
        }
        if let Some((v, src)) = pick!(args.timeout.clone(), file.timeout.clone()) {
            s.timeout =
                parse_duration_in(&v, checked::TIMEOUT).map_err(|m| invalid(src, "timeout", m))?;
        }
        for (key, value, slot, range) in [
            (
                "connect_timeout",
                &file.connect_timeout,
                &mut s.connect_timeout,
                checked::CONNECT_TIMEOUT,
            ),
            (
                "backoff_base",
                &file.backoff_base,
                &mut s.backoff_base,
                checked::BACKOFF_BASE,
            ),
            (
                "backoff_cap",
                &file.backoff_cap,
                &mut s.backoff_cap,
                checked::BACKOFF_CAP,
            ),
            (
                "progress_interval",
                &file.progress_interval,
                &mut s.progress_interval,
                checked::PROGRESS_INTERVAL,
            ),
        ] {
            if let Some(v) = value {
                *slot = parse_duration_in(v, range).map_err(|m| invalid(&file_name, key, m))?;
            }
        }
        if s.backoff_base > s.backoff_cap {
            return Err(invalid(
                &file_name,
                "backoff_base",
                "must not be longer than backoff_cap".into(),
            ));
        }
        if let Some((v, src)) = pick!(args.customer_id.clone(), file.customer_id.clone()) {
            s.customer_id = Some(
                crate::core::ids::parse_guid(&v)
                    .map_err(|m| invalid(src, "customer_id", format!("{m}")))?,
            );
        }
        if let Some((v, src)) = pick!(args.delimiter.clone(), file.delimiter.clone()) {
            s.delimiter = Some(parse_delimiter(&v).map_err(|m| invalid(src, "delimiter", m))?);
        }
        s.force = args.force || file.force.unwrap_or(false);
        s.ignore_unknown_columns =
            args.ignore_unknown_columns || file.ignore_unknown_columns.unwrap_or(false);
        s.dry_run = args.dry_run || file.dry_run.unwrap_or(false);
        s.summary_json = args.summary_json.clone().or(file.summary_json.clone());
        s.show_progress = !args.quiet;
        if let Some(out) = args.out.clone().or(file.out.clone()) {
            s.out = out;
        }
        if same_path(&s.out, &s.input) {
            return Err(ConfigError::OutIsInput { path: s.out });
        }
        s.resume = args.resume;
        s.retry_failed = args.retry_failed;
        s.compact_only = args.compact;
        if (s.resume || s.compact_only) && !s.out.exists() {
            return Err(ConfigError::NothingToResume { path: s.out });
        }
        if !s.force && !s.resume && !s.compact_only && s.out.exists() {
            return Err(if args.audit {
                ConfigError::AuditOutExists { path: s.out }
            } else {
                ConfigError::OutExists { path: s.out }
            });
        }
        if let Some((v, src)) = pick!(args.grace_period.clone(), file.grace_period.clone()) {
            s.grace_period = parse_duration_in(&v, checked::GRACE_PERIOD)
                .map_err(|m| invalid(src, "grace_period", m))?;
        }

        if args.generate_passwords || file.generate_passwords.unwrap_or(false) {
            let (length, src) = pick!(args.password_length, file.password_length)
                .unwrap_or((DEFAULT_PASSWORD_LENGTH, "default"));
            if !(8..=256).contains(&length) {
                return Err(invalid(
                    src,
                    "password_length",
                    format!("must be between 8 and 256 (got {length})"),
                ));
            }
            let secrets_out = args
                .secrets_out
                .clone()
                .or(file.secrets_out.clone())
                .ok_or(ConfigError::SecretsOutRequired)?;
            if !s.dry_run && !s.resume && secrets_out.exists() {
                return Err(ConfigError::SecretsOutExists { path: secrets_out });
            }
            s.generate_passwords = Some(PasswordGeneration {
                length,
                secrets_out,
            });
        }

        // A dry run sends nothing and needs no credentials; nor does compacting.
        if !s.dry_run && !s.compact_only {
            let scope = s.target.oauth_scope();
            s.credentials = Some(resolve_credentials(&args, &file, &file_name, scope)?);
        }
        Ok(s)
    }
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
    if let Some(path) = &args.token_file {
        return Ok(credentials::Credentials::Fixed(
            credentials::read_token_file(path)?,
        ));
    }
    if let Some(value) = std::env::var_os(credentials::TOKEN_ENV) {
        return Ok(credentials::Credentials::Fixed(
            credentials::secret_from_env(credentials::TOKEN_ENV, value)?,
        ));
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

pub fn parse_base_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("is not a valid URL ({e}): `{text}`"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http or https URL (got `{text}`)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("must not have a query or fragment (got `{text}`)"));
    }
    Ok(url)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("is not a duration like `30s` or `1500ms` ({e}): `{text}`"))?;
    if d.is_zero() {
        return Err(format!("must be more than zero (got `{text}`)"));
    }
    Ok(d)
}

/// A duration the user set, refused outside `range` (the ranges are in `checked`).
pub fn parse_duration_in(text: &str, range: checked::Range) -> Result<Duration, String> {
    checked::check(parse_duration(text)?, range, text)
}

pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("must be one of `,` `;` `tab` `|` (got `{other}`)")),
    }
}

/// Key/value view used by tests to check that `config.example.toml` documents every key.
pub fn documented_keys(text: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        if l == "[auth]" {
            keys.insert("auth".to_string(), String::new());
        }
        if let Some((k, v)) = l.split_once('=') {
            let k = k.trim();
            if CONFIG_KEYS.contains(&k) || AUTH_KEYS.contains(&k) {
                keys.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("8/s"), Ok(Rate::PerSecond(8.0)));
        assert_eq!(Rate::parse("500/min"), Ok(Rate::PerSecond(500.0 / 60.0)));
        assert_eq!(Rate::parse(" 2 / sec "), Ok(Rate::PerSecond(2.0)));
        assert_eq!(Rate::parse("unlimited"), Ok(Rate::Unlimited));
        assert!(Rate::parse("8").is_err());
        assert!(Rate::parse("0/s").is_err());
        assert!(Rate::parse("8/fortnight").is_err());
        assert_eq!(Rate::PerSecond(8.0).to_string(), "8/s");
        assert_eq!(Rate::PerSecond(0.5).to_string(), "30/min");
        assert_eq!(
            Rate::PerSecond(4.0).interval(),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn unknown_key_suggests_the_intended_one() {
        let err = FileConfig::parse("concurency = 4\n", Path::new("c.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`concurency`"), "{msg}");
        assert!(msg.contains("did you mean `concurrency`"), "{msg}");
    }

    #[test]
    fn type_errors_name_the_key_and_the_expected_form() {
        let err = |text: &str| {
            FileConfig::parse(text, Path::new("c.toml"))
                .unwrap_err()
                .to_string()
        };
        let cases = [
            ("rate = 5", r#"rate: expected a string such as "8/s", found the integer 5"#),
            (
                r#"concurrency = "8""#,
                r#"concurrency: expected an integer such as 8, found the string "8""#,
            ),
            ("concurrency = 8.5", "concurrency: expected an integer such as 8, found the float 8.5"),
            ("max_attempts = -1", "max_attempts: expected an integer such as 6, found the negative integer -1"),
            ("dry_run = \"yes\"", r#"dry_run: expected a boolean such as true, found the string "yes""#),
            ("timeout = 30", r#"timeout: expected a string such as "30s", found the integer 30"#),
            ("backoff_cap = [1]", r#"backoff_cap: expected a string such as "60s", found an array"#),
            ("auth = 5", "auth: expected a table (an [auth] section), found the integer 5"),
            (
                "[auth]\nclient_id = 42",
                "auth.client_id: expected a string such as \"00000000-0000-0000-0000-000000000000\", found the integer 42",
            ),
            ("[auth]\ntoken_url = true", "auth.token_url: expected a string such as"),
        ];
        for (text, expected) in cases {
            let msg = err(text);
            assert!(msg.contains(expected), "{text}:\n{msg}");
            assert!(msg.contains("c.toml"), "{msg}");
        }
        // Every wrong key at once.
        let msg = err("rate = 5\nconcurrency = \"8\"\n");
        assert!(
            msg.contains("rate: expected") && msg.contains("concurrency: expected"),
            "{msg}"
        );
        // Every key has a form.
        for key in CONFIG_KEYS
            .iter()
            .map(|k| k.to_string())
            .chain(AUTH_KEYS.iter().map(|k| format!("auth.{k}")))
        {
            assert!(FORMS.iter().any(|(k, _, _)| *k == key), "{key}");
        }
    }

    #[test]
    fn durations_outside_their_range_are_refused_naming_the_range() {
        let e = parse_duration_in("2y", checked::BACKOFF_CAP).unwrap_err();
        assert!(e.contains("between 1ms and 1h") && e.contains("2y"), "{e}");
        assert_eq!(
            parse_duration_in("60s", checked::BACKOFF_CAP),
            Ok(Duration::from_secs(60))
        );
        assert!(parse_duration_in("5ms", checked::TIMEOUT).is_err());
    }

    #[test]
    fn absurd_rates_are_refused() {
        for bad in [
            "1e-20/s",
            "1e-12/s",
            "0/s",
            "inf/s",
            "NaN/s",
            "-1/s",
            "0.5/h",
            "2000000/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rate::parse("1/h"), Ok(Rate::PerSecond(1.0 / 3600.0)));
        assert_eq!(
            Rate::parse("1/h").unwrap().interval(),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn durations_and_delimiters() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert!(parse_delimiter("::").is_err());
    }
}
