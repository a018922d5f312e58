//! `bulkpatch export`'s settings: which customers (`--customer GUID|DOMAIN`, `--customers-file
//! FILE`, `--all-customers`), the export file, `--resume`, and the shared options a run uses
//! (base URL, rate, concurrency, retries, timeouts, credentials, delimiter) resolved the same
//! way (command line > environment > config file > default). The config file's `out` is not
//! used: it names a run's results file. Uses `core` and the rest of `settings`.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::{ConfigError, FileConfig, RunArgs, Settings, Values};

/// The file `export` writes when `--out` is not given.
pub const DEFAULT_OUT: &str = "users-export.csv";
/// The largest customers file read.
const MAX_CUSTOMERS_FILE: u64 = 16 * 1024 * 1024;
/// The longest domain (RFC 1035).
const MAX_DOMAIN: usize = 253;

/// A customer as the command line names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    Id(Uuid),
    /// A domain, in lower case: the customer's initial (`*.onmicrosoft.com`) or listed domain.
    Domain(String),
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Id(id) => write!(f, "{id}"),
            Choice::Domain(d) => write!(f, "{d}"),
        }
    }
}

/// Which customers to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// In the order given, each once.
    These(Vec<Choice>),
}

/// `bulkpatch export` as given on the command line, before resolution.
#[derive(Clone, Debug, Default)]
pub struct ExportArgs {
    pub out: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub quiet: bool,
    pub customers: Vec<String>,
    pub customers_file: Option<PathBuf>,
    pub all_customers: bool,
    pub resume: bool,
    /// The shared options the command line gave (`out` is taken from [`ExportArgs::out`]).
    pub options: super::CliOptions,
}

/// Everything `export` needs, validated.
#[derive(Debug)]
pub struct ExportSettings {
    /// The shared options, as a run has them: `out` is the export file, `input` the customers
    /// file (or empty), `resume` is `--resume`.
    pub run: Settings,
    pub selection: Selection,
    pub delimiter: u8,
}

/// Resolves `export`'s arguments, its config file and the environment.
pub fn resolve(args: ExportArgs) -> Result<ExportSettings, ConfigError> {
    let (mut file, file_name) = match &args.config {
        Some(p) => (FileConfig::load(p)?, format!("config file {}", p.display())),
        None => (FileConfig::default(), String::from("config")),
    };
    // A run's results file, customer and summary are not an export's.
    file.out = None;
    file.customer_id = None;
    file.summary_json = None;
    let mut options = args.options.clone();
    options.out = None;
    // BULKPATCH_CUSTOMER_ID set for runs is no export's business.
    options.customer_id = None;
    for (given, flag) in [
        (options.summary_json.is_some(), "--summary-json"),
        (options.report.is_some(), "--report"),
        (
            options.ignore_unknown_columns.is_some(),
            "--ignore-unknown-columns",
        ),
    ] {
        if given {
            let m = "is not an export option (export takes --customer, --customers-file or --all-customers)".to_string();
            return Err(invalid(&format!("command line {flag}"), "export", m));
        }
    }
    let values = Values::merge(&options, &file, &file_name)?;
    let input = args.customers_file.clone().unwrap_or_default();
    let mut run = Settings::from_values(input.clone(), values);
    run.out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    run.resume = args.resume;
    run.dry_run = false;
    run.show_progress = !args.quiet;
    let run_args = RunArgs {
        input,
        config: args.config.clone(),
        audit: false,
        quiet: args.quiet,
        options,
    };
    run.read_files = super::read_files(&run_args, &file);
    if let Some(path) = &args.customers_file {
        run.read_files.push(("--customers-file", path.clone()));
    }
    if run.backoff_base > run.backoff_cap {
        return Err(invalid(
            &file_name,
            "backoff_base",
            "must not be longer than backoff_cap".into(),
        ));
    }
    check_out(&run)?;
    let selection = selection(&args)?;
    let scope = run.target.oauth_scope();
    run.credentials = Some(super::resolve_credentials(
        &run_args, &file, &file_name, scope,
    )?);
    Ok(ExportSettings {
        delimiter: run.delimiter.unwrap_or(b','),
        run,
        selection,
    })
}

fn invalid(source_name: &str, key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid {
        source_name: source_name.to_string(),
        key,
        message,
    }
}

/// The export file: not overwritten unasked; there to resume.
fn check_out(run: &Settings) -> Result<(), ConfigError> {
    let path = run.out.display();
    if run.resume && !run.out.exists() {
        let m =
            format!("{path}: there is no export file to resume (run without --resume to start)");
        return Err(invalid("command line", "out", m));
    }
    if !run.resume && !run.force && run.out.exists() {
        let m = format!("{path} already exists: pass --resume to finish that export, --force to start it again, or choose another file with --out");
        return Err(invalid("command line", "out", m));
    }
    Ok(())
}

/// The customers chosen: all, or those named on the command line and in the file.
fn selection(args: &ExportArgs) -> Result<Selection, ConfigError> {
    if args.all_customers {
        return Ok(Selection::All);
    }
    let mut chosen: Vec<Choice> = Vec::new();
    let mut add = |choice: Choice| {
        if !chosen.contains(&choice) {
            chosen.push(choice);
        }
    };
    for text in &args.customers {
        add(parse_choice(text).map_err(|m| invalid("command line", "customer", m))?);
    }
    if let Some(path) = &args.customers_file {
        for (line, text) in read_customers_file(path)? {
            let source = format!("customers file {} line {line}", path.display());
            add(parse_choice(&text).map_err(|m| invalid(&source, "customer", m))?);
        }
    }
    if chosen.is_empty() {
        let m = "no customer chosen: give --customer GUID|DOMAIN, --customers-file FILE or --all-customers".into();
        return Err(invalid("command line", "customer", m));
    }
    Ok(Selection::These(chosen))
}

/// A customer's GUID, or a domain (letters, digits, `-` and dots, at least one dot).
pub fn parse_choice(text: &str) -> Result<Choice, String> {
    let t = text.trim();
    if let Ok(id) = crate::core::ids::parse_guid(t) {
        return Ok(Choice::Id(id));
    }
    let domain_like = t.len() <= MAX_DOMAIN
        && t.contains('.')
        && !t.starts_with('.')
        && !t.ends_with('.')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if domain_like {
        Ok(Choice::Domain(t.to_ascii_lowercase()))
    } else {
        let shown =
            crate::core::redact::escape_controls(&crate::core::text::shorten(t, 60)).into_owned();
        Err(format!(
            "\"{shown}\" is neither a customer GUID nor a domain such as contoso.onmicrosoft.com"
        ))
    }
}

/// The non-empty lines of a customers file that are not `#` comments, with their numbers.
fn read_customers_file(path: &Path) -> Result<Vec<(usize, String)>, ConfigError> {
    let read = |source: std::io::Error| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_CUSTOMERS_FILE {
        let m = format!("{} is larger than 16 MiB", path.display());
        return Err(invalid("command line", "customers_file", m));
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        let m = format!("{} is not UTF-8 text", path.display());
        invalid("command line", "customers_file", m)
    })?;
    Ok(text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_named_by_guid_or_domain() {
        let id = Uuid::from_u128(5);
        assert_eq!(parse_choice(&format!(" {{{id}}} ")), Ok(Choice::Id(id)));
        assert_eq!(
            parse_choice("Fabrikam.DE"),
            Ok(Choice::Domain("fabrikam.de".into()))
        );
        for bad in [
            "fabrikam",
            "a b.c",
            ".x.y",
            "x.y.",
            "=cmd.x",
            "\u{1b}[31m.x",
        ] {
            let e = parse_choice(bad).unwrap_err();
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }
}
