//! The orchestration: `run` takes resolved `Settings` through the pipeline (`pipeline`:
//! input -> send -> output) and returns the summary; `rows` is the reader between the input
//! and the workers, `signals` the Ctrl-C and SIGTERM handling; `export` lists customers and
//! users into an export file through `listing`. May use every layer below it;
//! never prints.

pub mod export;
mod guards;
pub mod listing;
mod pipeline;
pub mod protect;
pub mod resolve;
mod rows;
mod signals;
pub mod signin;
mod tenant_domain;

use std::path::PathBuf;

use crate::core::redact;
use crate::input::csv::InputError;
use crate::output::paths;
use crate::output::summary::Summary;
use crate::settings::Settings;

/// A failure that stops the whole run (exit code 2). Row failures are never errors: they are outcomes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::settings::ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Results(#[from] crate::output::results::ResultsError),
    #[error(transparent)]
    Client(#[from] crate::send::http::ClientError),
    #[error(transparent)]
    Http(#[from] crate::send::http_client::BuildError),
    #[error(transparent)]
    Auth(#[from] crate::send::auth::AuthError),
    #[error(transparent)]
    Login(#[from] crate::send::login::LoginError),
    #[error(transparent)]
    Secrets(#[from] crate::output::secrets::SecretsError),
    #[error(transparent)]
    Undo(#[from] crate::output::undo::UndoError),
    #[error(transparent)]
    Protect(#[from] crate::input::protect_list::ProtectFileError),
    #[error(transparent)]
    Resume(#[from] crate::output::reader::ResumeError),
    #[error(transparent)]
    Render(#[from] crate::report::RenderError),
    #[error("cannot write the summary to {path}: {source}")]
    Summary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Paths(#[from] paths::PathError),
    #[error("input file {path} is not the expected one: its SHA-256 is {actual}, --expect-sha256 gave {expected}; nothing was sent")]
    InputDigest {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{rows} rows would be written, more than --max-changes {limit}; nothing was sent")]
    TooManyChanges { rows: u64, limit: u64 },
    #[error(transparent)]
    Export(#[from] crate::output::export_file::ExportFileError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Sends every row of `settings.input` (or plans them, in a dry run) and returns the summary.
///
/// Everything that can be checked before sending is checked first: the header, the results
/// file, the token. A row that fails becomes a record in the results file; only what stops
/// the whole run is an `Err`.
///
/// `--summary-json` is written on every way out once the settings are valid: the summary of
/// the run, or, when a fatal error ends it, a summary whose `stopped` is the error (exit 2).
pub async fn run(settings: Settings) -> Result<Summary, Error> {
    // Before any file is created or truncated (the summary JSON too), and before anything is
    // sent: a summary written over the input or a secrets file would destroy it.
    paths::check_run(&settings)?;
    let Some(path) = settings.summary_json.clone() else {
        return pipeline::run_to_summary(settings).await;
    };
    let (input, results) = (settings.input.clone(), settings.out.clone());
    let (dry_run, audit) = (
        settings.dry_run,
        settings.operation == crate::core::run_state::Operation::Audit,
    );
    let outcome = pipeline::run_to_summary(settings).await;
    let summary = match &outcome {
        Ok(summary) => summary.clone(),
        Err(e) => {
            let mut s = Summary::fatal(input, results, dry_run, audit, error_chain(e));
            if let Error::InputDigest { actual, .. } = e {
                s.input_sha256 = Some(actual.clone());
            }
            s
        }
    };
    let json = serde_json::to_string_pretty(&summary).expect("the summary serialises");
    let written = std::fs::write(&path, redact::redact(&json).as_bytes())
        .map_err(|source| Error::Summary { path, source });
    match (outcome, written) {
        (Ok(summary), Ok(())) => Ok(summary),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// An error with its sources, each once: the text a fatal error is shown as.
pub fn error_chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Runs blocking file work off the async workers.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, Error>
where
    T: Send + 'static,
    E: Into<Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(anyhow::Error::from)?
        .map_err(Into::into)
}
