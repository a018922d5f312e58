//! Every option of `run`, `audit`, `export` and `login`, declared once: its command-line flag,
//! environment variable, TOML key, default, help text and parser come from one row of
//! [`with_options!`]. From the rows come the plain [`CliOptions`] (what the command line gave),
//! the [`FileConfig`] (what the TOML file gave), the key list and type table of the file
//! ([`CONFIG_KEYS`], [`OPTION_FORMS`]) and the merge into [`Values`] (command line, which
//! includes its environment variable, > file > default), which names the key and where a bad
//! value came from. `cli` makes the clap `Args` structs from the same rows, so this module never
//! sees clap. The `[auth]` section's keys are declared here too ([`auth_section!`]). Uses
//! `settings::values` and `core`.
//!
//! # Adding an option
//!
//! Add one row to the table in [`with_options!`], in the group it belongs to (`api`: `run`,
//! `audit`, `export` and `login`; `common`: `run`, `audit` and `export`; `run`: only `run`;
//! `login`: only `login`; `file`: only the config file); then, if the core reads it,
//! give `Settings` a field and set it from `Values::NAME` in `Settings::from_values` (an option
//! only `resolve` reads needs no more). A row reads:
//!
//! ```text
//! name: CliType [= "default"] => ValueType, parse PARSER, help "text"
//!     [, cli(clap arg attributes)] [, env "VARIABLE"] [, toml "example"];
//! ```
//!
//! `CliType` is what clap holds (`bool` for a flag, `Option<T>` for a value); `PARSER` turns that
//! value (or the default, itself written as the text a user would give) into `ValueType` or a
//! message; without a default an unset option is `ValueType::default()`. Without `toml` the
//! option has no config key; rows of the `file` group have no `cli(...)`. The tests then ask for
//! the key (with its default) in `config.example.toml` and a row in README's options table giving
//! the flag, variable, key and default. For example `--ca-file`:
//!
//! ```text
//! ca_file: Option<PathBuf> => Option<super::ca::CaFile>,
//!     parse |p| super::ca::CaFile::read(&p).map(Some).map_err(|e| format!("(--ca-file) {}: {e}", p.display())),
//!     help "Trust the root certificates (PEM) in this file too, besides the operating system's",
//!     cli(long, value_name = "FILE"), env "BULKPATCH_CA_FILE", toml "/etc/bulkpatch/proxy-root.pem";
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::core::checked;
use crate::settings::values::{
    as_given, duration, parse_base_url, parse_delimiter, some, within, Rate,
};
use crate::settings::ConfigError;

/// The table of options; calls
/// `$then! { api { rows } common { rows } run { rows } login { rows } file { rows } }`.
macro_rules! with_options {
    ($then:ident) => { $then! {
api {
    // `login` signs in with the target's scope (`LoginSettings::resolve`).
    target: Option<String> = "partner-center" => std::sync::Arc<dyn crate::targets::Target>,
        parse |t| super::values::parse_target(&t),
        help "The API to update users through, or (`login`) to sign in for: `partner-center` or `graph` (Microsoft Graph)",
        cli(long, value_name = "API"), env "BULKPATCH_TARGET", toml "graph";
}
common {
    // Without it, the target's own root (`Settings::from_values`).
    base_url: Option<String> => Option<reqwest::Url>,
        parse |t| parse_base_url(&t).map(Some),
        help "API root [default: the target's, https://api.partnercenter.microsoft.com or https://graph.microsoft.com/v1.0]",
        cli(long, value_name = "URL"), env "BULKPATCH_BASE_URL", toml "https://api.partnercenter.microsoft.com";
    out: Option<PathBuf> => Option<PathBuf>, parse some,
        help "Results file [default: <input-stem>.results.csv (audit: .audit.csv) beside the input]",
        cli(short, long, value_name = "FILE"), toml "users.results.csv";
    force: bool => bool, parse as_given, help "Overwrite an existing results file",
        cli(long), toml "true";
    rate: Option<String> = "8/s" => Rate, parse |t| Rate::parse(&t),
        help "Request rate ceiling: N/s, N/min or `unlimited`",
        cli(long, value_name = "RATE"), env "BULKPATCH_RATE", toml "8/s";
    per_customer_rate: Option<String> => Option<Rate>, parse |t| Rate::parse(&t).map(Some),
        help "A rate limit per customer tenant as well, N/s, N/min or `unlimited` (Partner Center throttles per partner+customer too, about 500/min per customer; without it, a Graph run's tenants start at Graph's documented 20 writes/s and adapt)",
        cli(long, value_name = "RATE"), env "BULKPATCH_PER_CUSTOMER_RATE", toml "2/s";
    concurrency: Option<usize> = "8" => usize, parse within(1, 1024),
        help "Requests in flight at once",
        cli(short, long, value_name = "N"), env "BULKPATCH_CONCURRENCY", toml "8";
    // Without it, the target's own largest batch (`Settings::resolve`).
    batch: Option<usize> => Option<usize>, parse |n| within(1, 20)(n).map(Some),
        help "Rows of one customer tenant per request, 1 to 20 (Graph `$batch`) [default: 20 for graph, 1 for partner-center, which cannot batch]",
        cli(long, value_name = "N"), env "BULKPATCH_BATCH", toml "20";
    max_attempts: Option<u32> = "6" => u32, parse within(1, 100),
        help "Attempts per row, the first included",
        cli(long, value_name = "N"), env "BULKPATCH_MAX_ATTEMPTS", toml "6";
    timeout: Option<String> = "30s" => Duration, parse duration(checked::TIMEOUT),
        help "Time allowed for one request, such as 30s or 1500ms",
        cli(long, value_name = "DURATION"), env "BULKPATCH_TIMEOUT", toml "30s";
    customer_id: Option<String> => Option<Uuid>,
        parse |t| crate::core::ids::parse_guid(&t).map(Some).map_err(|m| m.to_string()),
        help "Customer tenant id for every row, when the CSV has no customer column",
        cli(long, value_name = "GUID"), env "BULKPATCH_CUSTOMER_ID", toml "0a6b1a8e-3c1f-4f0e-9a8e-1b2c3d4e5f60";
    ignore_unknown_columns: bool => bool, parse as_given,
        help "Skip columns the tool does not know instead of stopping",
        cli(long), toml "true";
    // The names are the target's: read against it in `Settings::resolve`.
    fields: Option<String> => Option<String>, parse some,
        help "Send only these fields (`usage_location,display_name`, ...); other field columns are kept as context, never sent [default: every field column]",
        cli(long, value_name = "FIELD,..."), toml "\"usage_location\"";
    keep_columns: Option<String> => Vec<String>,
        parse |t| Ok(t.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()),
        help "Carry these input columns into the results, audit and secrets files and the reports, to name people and tenants",
        cli(long, value_name = "COLUMN,..."), toml "\"department,employee_id\"";
    delimiter: Option<String> => Option<u8>, parse |t| parse_delimiter(&t).map(Some),
        help "Field delimiter: `,` `;` `tab` or `|` [default: detected from the header]",
        cli(long, value_name = "CHAR"), toml ";";
    summary_json: Option<PathBuf> => Option<PathBuf>, parse some,
        help "Also write the summary as JSON to this file",
        cli(long, value_name = "FILE"), toml "summary.json";
    // Read apart by the credentials' own precedence (`resolve_credentials`), not through `Values`.
    token_file: Option<PathBuf> => Option<PathBuf>, parse some,
        help "Read the access token from this file (first line) instead of BULKPATCH_TOKEN",
        cli(long, value_name = "FILE"), env "BULKPATCH_TOKEN_FILE", toml "/etc/bulkpatch/token";
    ca_file: Option<PathBuf> => Option<super::ca::CaFile>,
        parse |p| super::ca::CaFile::read(&p).map(Some).map_err(|e| format!("(--ca-file) {}: {e}", p.display())),
        help "Trust the root certificates (PEM) in this file too, besides the operating system's (a TLS-inspecting proxy's root, say)",
        cli(long, value_name = "FILE"), env "BULKPATCH_CA_FILE", toml "/etc/bulkpatch/proxy-root.pem";
    report: Option<PathBuf> => Option<PathBuf>, parse some,
        help "Also write a self-contained HTML report to this file at the end",
        cli(long, value_name = "FILE.html");
}
run {
    dry_run: bool => bool, parse as_given,
        help "Validate and write the planned requests to the results file; send nothing (no token needed)",
        cli(short = 'n', long), toml "true";
    skip_unchanged: bool => bool, parse as_given,
        help "Read each user first and skip the rows already as desired (recorded `unchanged`)",
        cli(long, conflicts_with = "dry_run");
    expect_sha256: Option<String> => Option<crate::core::digest::Sha256>,
        parse |t| crate::core::digest::Sha256::parse_hex(&t).map(Some).map_err(|e| format!("(--expect-sha256) {e}")),
        help "Refuse to start (exit 2, nothing sent) unless the input file's SHA-256 is this (hex, as a plan report or `sha256sum` shows it)",
        cli(long, value_name = "HEX");
    max_changes: Option<u32> => Option<u64>, parse |n: u32| Ok(Some(u64::from(n))),
        help "Refuse to start (exit 2, nothing sent) when more than N valid rows would be written (rows a resume already finished not counted)",
        cli(long, value_name = "N"), toml "5000";
    generate_passwords: bool => bool, parse as_given,
        help "Give every row a new random password (from the OS CSPRNG); needs --secrets-out",
        cli(long), toml "true";
    // Its range (8 to 256) is checked only when passwords are generated (`Settings::resolve`).
    password_length: Option<usize> = "16" => usize, parse as_given,
        help "Length of generated passwords, 8 to 256",
        cli(long, value_name = "N", requires = "generate_passwords"), toml "16";
    secrets_out: Option<PathBuf> => Option<PathBuf>, parse some,
        help "New file (mode 0600) that receives each generated password before its request is sent",
        cli(long, value_name = "FILE"), toml "secrets.csv";
    undo_file: Option<PathBuf> => Option<PathBuf>, parse some,
        help "New file that receives, before each row is sent, the user's previous values of the fields it changes: running it as input reverts the run (each row read first, like --skip-unchanged)",
        cli(long, value_name = "FILE", conflicts_with = "dry_run"), toml "undo.csv";
    include_admins: bool => bool, parse as_given,
        help "Change passwords of users holding an administrative directory role too (by default such rows are recorded `protected`, their roles read first)",
        cli(long), toml "true";
    protected_roles: Option<String> => Vec<String>, parse |t| Ok(t.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()),
        help "Only these directory roles (comma-separated names, as Partner Center names them: `Company Administrator` is Global Administrator) protect a user's password [default: any role]",
        cli(long, value_name = "ROLE,..."), toml "\"Company Administrator,User Administrator\"";
    protect_file: Option<PathBuf> => Option<PathBuf>, parse some,
        help "A file of users never changed by any run: one user GUID or user principal name per line (`#` comments); their rows are recorded `protected`",
        cli(long, value_name = "FILE"), toml "/etc/bulkpatch/break-glass.txt";
    resume: bool => bool, parse as_given,
        help "Continue an interrupted run: skip rows the results file already has as done, send the rest, and add their records to the same results file",
        cli(long);
    retry_failed: bool => bool, parse as_given,
        help "With --resume, also send again rows that failed for good (404, 403, ...), not only those that failed transiently",
        cli(long, requires = "resume");
    compact: bool => bool, parse as_given,
        help "Only rewrite the results file with one record per input row, in line order; send nothing",
        cli(long, conflicts_with_all = ["resume", "dry_run"]);
    grace_period: Option<String> = "30s" => Duration, parse duration(checked::GRACE_PERIOD),
        help "After a first Ctrl-C, how long requests in flight may take before the run stops at once",
        cli(long, value_name = "DURATION"), toml "30s";
}
login {
    // `login` resolves these over the `[auth]` section's keys of the same name.
    tenant: Option<String> = "organizations" => String, parse as_given,
        help "The tenant to sign in to: the partner tenant's id or domain, or `organizations` [config: [auth] tenant]",
        cli(long, value_name = "TENANT"), env "BULKPATCH_TENANT";
    client_id: Option<String> => Option<String>, parse some,
        help "The application (client) id of the public client app registration to sign in with [config: [auth] client_id]",
        cli(long, value_name = "GUID"), env "BULKPATCH_CLIENT_ID";
    authority: Option<String> = "https://login.microsoftonline.com" => reqwest::Url, parse |t| parse_base_url(&t),
        help "The sign-in authority (sovereign clouds differ) [config: [auth] authority]",
        cli(long, value_name = "URL"), env "BULKPATCH_AUTHORITY";
}
file {
    connect_timeout: Option<String> = "10s" => Duration, parse duration(checked::CONNECT_TIMEOUT),
        help "Time allowed for opening a connection", toml "10s";
    backoff_base: Option<String> = "500ms" => Duration, parse duration(checked::BACKOFF_BASE),
        help "The first retry backoff (exponential with full jitter)", toml "500ms";
    backoff_cap: Option<String> = "60s" => Duration, parse duration(checked::BACKOFF_CAP),
        help "The longest retry backoff", toml "60s";
    progress_interval: Option<String> = "10s" => Duration, parse duration(checked::PROGRESS_INTERVAL),
        help "When stderr is not a terminal, how often a progress line is logged", toml "10s";
}
    } };
}
pub(crate) use with_options;

/// The first of its arguments (the rest only select a repetition).
macro_rules! first {
    ($a:expr, $($rest:tt)*) => {
        $a
    };
}

/// Whether the optional part is there.
macro_rules! has {
    () => {
        false
    };
    ($($there:tt)+) => {
        true
    };
}

/// The optional part, if there.
macro_rules! maybe {
    () => {
        None
    };
    ($there:tt) => {
        Some($there)
    };
}

/// `file.NAME` when the option has a TOML key, else nothing.
macro_rules! file_value {
    ($file:ident, $name:ident) => {
        None
    };
    ($file:ident, $name:ident, $example:tt) => {
        $file.$name.clone()
    };
}

/// One option's value: the given one parsed, else the default parsed, else `Default::default()`.
macro_rules! resolve_value {
    ($key:expr, $picked:expr, $sources:expr, $parse:expr) => {
        resolve_optional($key, $picked, $sources, $parse)?
    };
    ($key:expr, $picked:expr, $sources:expr, $parse:expr, $default:tt) => {
        resolve_defaulted($key, $picked, $default, $sources, $parse)?
    };
}

/// The items made from the table (see the module doc).
macro_rules! settings_items {
    (api { $($api:tt)* } common { $($common:tt)* } run { $($run:tt)* } login { $($login:tt)* } file { $($file:tt)* }) => {
        settings_items!(@rows $($api)* $($common)* $($run)* $($login)* $($file)*);
    };
    (@rows $(
        $name:ident : $ty:ty $(= $default:tt)? => $val:ty, parse $parse:expr, help $help:tt
        $(, cli($($clap:tt)*))? $(, env $env:tt)? $(, toml $example:tt)? ;
    )*) => {
        /// What the command line gave (its environment variables included), before resolution;
        /// None where nothing was given (a flag not set is None too).
        #[derive(Clone, Debug, Default)]
        pub struct CliOptions {
            $( #[doc = $help] pub $name: Option<<$ty as CliValue>::Raw>, )*
        }

        /// The config file's contents; every key is optional and documented in `config.example.toml`.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $( $( #[doc = concat!($help, " (`", stringify!($name), " = ", $example, "`)")]
                pub $name: Option<<$ty as CliValue>::Raw>, )? )*
            /// The `[auth]` section.
            pub auth: Option<AuthConfig>,
        }

        /// Every key the config file accepts, for the unknown-key check and its suggestion.
        pub const CONFIG_KEYS: &[&str] = &[$( $( first!(stringify!($name), $example), )? )* "auth"];

        /// The TOML form and an example value of each option's key, for the file's type errors.
        pub const OPTION_FORMS: &[(&str, Form, &str)] = &[$( $(
            (stringify!($name), <<$ty as CliValue>::Raw as RawValue>::FORM, $example),
        )? )*];

        /// Every option as declared, for the tests that hold the README and the example config to it.
        pub const OPTION_DOCS: &[OptionDoc] = &[$(
            OptionDoc {
                key: stringify!($name),
                cli: has!($($($clap)*)?),
                env: maybe!($($env)?),
                toml: has!($($example)?),
                default: maybe!($($default)?),
                help: $help,
            },
        )*];

        /// Every option's value after precedence and parsing.
        #[derive(Debug)]
        pub struct Values {
            $( #[doc = $help] pub $name: $val, )*
            /// Where each value given came from: `(key, "command line" or "config file ...")`.
            sources: Vec<(&'static str, String)>,
        }

        impl Values {
            /// Command line (or its environment variable) > config file > default, each value
            /// parsed; an error names the key and where its value came from.
            pub fn merge(
                cli: &CliOptions,
                file: &FileConfig,
                file_name: &str,
            ) -> Result<Values, ConfigError> {
                let mut sources = Vec::new();
                Ok(Values {
                    $( $name: resolve_value!(
                        stringify!($name),
                        pick(cli.$name.clone(), file_value!(file, $name $(, $example)?), file_name),
                        &mut sources,
                        $parse
                        $(, $default)?
                    ), )*
                    sources,
                })
            }
        }
    };
}

with_options!(settings_items);

/// One option as declared (see [`OPTION_DOCS`]).
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// The TOML key and field name; the flag is `--` and the key with `-` for `_`.
    pub key: &'static str,
    /// Whether the option has a command-line flag.
    pub cli: bool,
    pub env: Option<&'static str>,
    /// Whether the config file takes the key.
    pub toml: bool,
    /// The default, as a user would write it.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl OptionDoc {
    /// `--per-customer-rate` for `per_customer_rate`, when the option has a flag.
    pub fn flag(&self) -> Option<String> {
        self.cli
            .then(|| format!("--{}", self.key.replace('_', "-")))
    }
}

impl Values {
    /// Every option at its default.
    pub fn defaults() -> Result<Values, ConfigError> {
        Values::merge(&CliOptions::default(), &FileConfig::default(), "config")
    }

    /// Where `key`'s value came from: `command line`, `config file ...` or `default`.
    pub fn source(&self, key: &str) -> &str {
        self.sources
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("default", |(_, s)| s.as_str())
    }
}

/// The TOML type a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Text,
    /// A whole number from 0 to u32::MAX (the key's own range is checked when resolving).
    Count,
    Boolean,
    Table,
}

/// The `[auth]` section's keys, declared once: the struct, the key list and the type table.
macro_rules! auth_section {
    ($( #[doc = $doc:tt] $name:ident : $ty:ty, example $example:tt; )*) => {
        /// The `[auth]` section: Partner Center's App+User refresh-token grant.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct AuthConfig {
            $( #[doc = $doc] pub $name: Option<$ty>, )*
        }

        /// Every key of the `[auth]` section.
        pub const AUTH_KEYS: &[&str] = &[$( stringify!($name) ),*];

        pub const AUTH_FORMS: &[(&str, Form, &str)] =
            &[$( (concat!("auth.", stringify!($name)), <$ty as RawValue>::FORM, $example) ),*];
    };
}

auth_section! {
    /// The partner tenant id or domain (gives the token URL).
    tenant: String, example "contoso.onmicrosoft.com";
    /// The application id.
    client_id: String, example "00000000-0000-0000-0000-000000000000";
    /// For a confidential app (BULKPATCH_CLIENT_SECRET wins over it).
    client_secret_file: PathBuf, example "/etc/bulkpatch/client-secret";
    /// BULKPATCH_REFRESH_TOKEN wins over it; a rotated refresh token is written back to it.
    refresh_token_file: PathBuf, example "/etc/bulkpatch/refresh-token";
    /// Instead of `tenant`.
    token_url: String, example "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
    /// The OAuth scope.
    scope: String, example "https://api.partnercenter.microsoft.com/user_impersonation offline_access";
    /// The sign-in authority of `bulkpatch login` (`--authority`).
    authority: String, example "https://login.microsoftonline.com";
}

/// A value as clap holds it: `bool` for a flag (set or not), `Option<T>` for a value.
pub trait CliValue {
    type Raw: RawValue;
    /// The value given, or None (a flag not set is not given).
    fn given(self) -> Option<Self::Raw>;
}

impl CliValue for bool {
    type Raw = bool;
    fn given(self) -> Option<bool> {
        self.then_some(true)
    }
}

impl<T: RawValue> CliValue for Option<T> {
    type Raw = T;
    fn given(self) -> Option<T> {
        self
    }
}

/// A value before parsing, as both the command line and the TOML file give it.
pub trait RawValue: Clone + std::str::FromStr {
    /// The TOML type it takes.
    const FORM: Form;
}

impl RawValue for String {
    const FORM: Form = Form::Text;
}
impl RawValue for PathBuf {
    const FORM: Form = Form::Text;
}
impl RawValue for bool {
    const FORM: Form = Form::Boolean;
}
impl RawValue for usize {
    const FORM: Form = Form::Count;
}
impl RawValue for u32 {
    const FORM: Form = Form::Count;
}

/// The command line's value over the file's, with the name of where it came from.
fn pick<R>(cli: Option<R>, file: Option<R>, file_name: &str) -> Option<(R, String)> {
    match (cli, file) {
        (Some(v), _) => Some((v, "command line".into())),
        (None, Some(v)) => Some((v, file_name.into())),
        (None, None) => None,
    }
}

fn invalid(source_name: &str, key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid {
        source_name: source_name.to_string(),
        key,
        message,
    }
}

/// An option without a default: its given value parsed, or `T::default()`.
fn resolve_optional<R, T: Default>(
    key: &'static str,
    picked: Option<(R, String)>,
    sources: &mut Vec<(&'static str, String)>,
    parse: impl FnOnce(R) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let Some((raw, source)) = picked else {
        return Ok(T::default());
    };
    let value = parse(raw).map_err(|m| invalid(&source, key, m))?;
    sources.push((key, source));
    Ok(value)
}

/// An option with a default: its given value (or the default, as a user would write it) parsed.
fn resolve_defaulted<R: RawValue, T>(
    key: &'static str,
    picked: Option<(R, String)>,
    default: &'static str,
    sources: &mut Vec<(&'static str, String)>,
    parse: impl FnOnce(R) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let (raw, source) = match picked {
        Some(given) => given,
        None => match default.parse::<R>() {
            Ok(raw) => (raw, "default".to_string()),
            Err(_) => return Err(invalid("default", key, format!("is not `{default}`"))),
        },
    };
    let value = parse(raw).map_err(|m| invalid(&source, key, m))?;
    if source != "default" {
        sources.push((key, source));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_default_is_valid() {
        let v = Values::defaults().expect("the declared defaults parse");
        assert_eq!(v.rate, Rate::PerSecond(8.0));
        assert_eq!(
            (v.concurrency, v.max_attempts, v.password_length),
            (8, 6, 16)
        );
        assert_eq!(v.timeout, Duration::from_secs(30));
        assert_eq!(v.backoff_base, Duration::from_millis(500));
        assert!(!v.force && v.out.is_none() && v.per_customer_rate.is_none());
        assert_eq!(v.source("rate"), "default");
    }

    #[test]
    fn the_command_line_beats_the_file_which_beats_the_default() {
        let file = FileConfig {
            rate: Some("2/s".into()),
            concurrency: Some(3),
            force: Some(true),
            ..FileConfig::default()
        };
        let cli = CliOptions {
            rate: Some("4/s".into()),
            ..CliOptions::default()
        };
        let v = Values::merge(&cli, &file, "config file c.toml").unwrap();
        assert_eq!(
            (v.rate, v.concurrency, v.force),
            (Rate::PerSecond(4.0), 3, true)
        );
        assert_eq!(v.source("rate"), "command line");
        assert_eq!(v.source("concurrency"), "config file c.toml");
        assert_eq!(v.max_attempts, 6);
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_key_and_its_source() {
        let file = FileConfig {
            concurrency: Some(0),
            ..FileConfig::default()
        };
        let e = Values::merge(&CliOptions::default(), &file, "config file c.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config file c.toml: `concurrency` must be between 1 and 1024 (got 0)"
        );
    }
}
