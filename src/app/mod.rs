//! The orchestration: `run` takes resolved `Settings` through the pipeline (input -> send ->
//! output) and returns the summary. May use every layer below it; never prints.

use crate::core::redact;
use crate::input::csv as input;
use crate::input::passwords;
use crate::input::rows as validate;
use crate::output::summary as report;
use crate::output::summary::Summary;
use crate::output::{audit_file, handover, paths, results, resume};
use crate::report as render;
use crate::send::http as client;
use crate::send::pace as rate;
use crate::send::{auth, pool, reach, retry};
use crate::settings as config;
use crate::settings::Settings;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use csv::ByteRecord;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::core::run_state::Counters;
use crate::core::run_state::Outcome;
use crate::core::run_state::{Stop, StopReason};
use crate::input::csv::{CsvSource, InputError, ReadOptions};
use crate::input::rows::{Duplicates, Row};
use crate::output::progress::Progress;
use crate::output::results::{Record, Sink};
use crate::send::pacer::Pacer;

/// A failure that stops the whole run (exit code 2). Row failures are never errors: they are outcomes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Results(#[from] results::ResultsError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Secrets(#[from] crate::output::secrets::SecretsError),
    #[error(transparent)]
    Resume(#[from] crate::output::reader::ResumeError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("cannot write the summary to {path}: {source}")]
    Summary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Paths(#[from] paths::PathError),
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
        return run_to_summary(settings).await;
    };
    let (input, results) = (settings.input.clone(), settings.out.clone());
    let (dry_run, audit) = (
        settings.dry_run,
        settings.operation == crate::core::run_state::Operation::Audit,
    );
    let outcome = run_to_summary(settings).await;
    let summary = match &outcome {
        Ok(summary) => summary.clone(),
        Err(e) => Summary::fatal(input, results, dry_run, audit, error_chain(e)),
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

async fn run_to_summary(mut settings: Settings) -> Result<Summary, Error> {
    let started = Instant::now();
    let max_line = paths::max_line(&settings.input);
    let options = ReadOptions {
        delimiter: settings.delimiter,
        ignore_unknown_columns: settings.ignore_unknown_columns,
        has_default_customer: settings.customer_id.is_some(),
        generate_passwords: settings.generate_passwords.is_some(),
    };
    let source = CsvSource::open(&settings.input, &options)?;
    if settings.customer_id.is_some() && source.header.position(input::Column::CustomerId).is_some()
    {
        tracing::warn!("the input has a customer_id column: --customer-id is ignored");
    }
    let (rows, duplicates) = {
        let (path, options, default_customer) = (
            settings.input.clone(),
            options.clone(),
            settings.customer_id,
        );
        blocking(move || validate::scan(&path, &options, default_customer)).await?
    };

    if rows == 0 && !settings.compact_only {
        let auditing = settings.operation == crate::core::run_state::Operation::Audit;
        let (input, out) = (settings.input, settings.out);
        return Ok(Summary::no_data_rows(
            input,
            out,
            settings.dry_run,
            auditing,
        ));
    }
    // The results file: locked for this run, its fingerprint checked on a resume.
    let fingerprint = resume::Fingerprint::new(&settings.input, source.header.hash, rows);
    let continuing = settings.resume || settings.compact_only;
    let mut lock =
        resume::RunLock::acquire(&settings.out, &fingerprint, continuing, settings.force)?;
    if settings.compact_only {
        lock.commit()?;
        let out = settings.out.clone();
        let tally = blocking(move || resume::compact(&out, max_line)).await?;
        drop(lock);
        return Ok(Summary::compacted(
            settings.input,
            settings.out,
            rows,
            &tally,
        ));
    }
    let finished = if settings.resume {
        let (out, retry_failed) = (settings.out.clone(), settings.retry_failed);
        let finished =
            blocking(move || resume::Finished::load(&out, retry_failed, max_line)).await?;
        tracing::info!(already_done = finished.count, "resuming");
        finished
    } else {
        resume::Finished::default()
    };
    let sender = connect(&mut settings).await?;
    let tokens = sender.as_ref().map(|(_, tokens)| tokens.clone());
    let generator = Generator::for_run(&settings, &finished)?;

    let stop = Arc::new(Stop::default());
    let counters = Arc::new(
        if settings.operation == crate::core::run_state::Operation::Audit {
            Counters::for_audit()
        } else {
            Counters::default()
        },
    );
    let mode = if settings.resume {
        results::Mode::Append
    } else {
        results::Mode::Create {
            overwrite: settings.force,
        }
    };
    let auditing = settings.operation == crate::core::run_state::Operation::Audit;
    let layout = if auditing {
        results::Layout::Audit
    } else {
        results::Layout::Results
    };
    let (sink, writer) =
        results::start(&settings.out, mode, layout, stop.clone(), counters.clone())?;
    lock.commit()?;
    let signals = watch_signals(stop.clone(), settings.grace_period);
    tracing::info!(
        input = %settings.input.display(),
        rows,
        results = %settings.out.display(),
        rate = %settings.rate,
        concurrency = settings.concurrency,
        dry_run = settings.dry_run,
        "starting"
    );
    let controller: Arc<std::sync::Mutex<Option<Arc<rate::Controller>>>> = Default::default();
    let progress = Progress::start(
        rows,
        counters.clone(),
        {
            let controller = controller.clone();
            Arc::new(move || {
                let slot = controller.lock().ok()?;
                slot.as_ref().and_then(|c| c.rate())
            })
        },
        settings.show_progress,
        settings.progress_interval,
    );

    let (row_tx, row_rx) = mpsc::channel::<Row>(settings.concurrency * 4);
    let reader = {
        let sink = sink.clone();
        let stop = stop.clone();
        let default_customer = settings.customer_id;
        let target = settings.target.clone();
        let dry_run = settings.dry_run;
        let reader_counters = counters.clone();
        tokio::task::spawn_blocking(move || {
            let reader = Reader {
                duplicates,
                default_customer,
                target,
                dry_run,
                generator,
                finished,
                counters: reader_counters,
            };
            reader.read_rows(source, &row_tx, &sink, &stop)
        })
    };
    if let Some((client, tokens)) = sender {
        let pacer = Pacer::with_limits(
            settings.rate.interval(),
            settings.per_customer_rate.and_then(|r| r.interval()),
        );
        *controller.lock().expect("controller slot") = Some(pacer.controller());
        let ctx = Arc::new(pool::Context {
            operation: settings.operation,
            target: settings.target.clone(),
            client,
            tokens,
            pacer,
            stop: stop.clone(),
            policy: retry::Policy {
                max_attempts: settings.max_attempts,
                backoff: retry::Backoff {
                    base: settings.backoff_base,
                    cap: settings.backoff_cap,
                },
                ids: settings.target.request_ids(),
            },
            results: sink.clone(),
            counters: counters.clone(),
            reach: reach::Reach::new(settings.base_url.host_str().unwrap_or("the API")),
        });
        pool::run(row_rx, ctx, settings.concurrency).await;
    } else {
        drop(row_rx);
    }
    let read_result = reader.await.map_err(anyhow::Error::from)?;
    drop(sink);
    let tally = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(anyhow::Error::from)?;
    progress.finish().await;
    signals.abort();
    if let Err(e) = read_result {
        // The reader stopped the run; what was sent is recorded, so say why it stopped.
        tracing::error!(error = %e, "stopped reading the input");
        if stop.reason().is_none() {
            return Err(e);
        }
    }
    let (tally, write_error) = tally;
    if let Some(e) = write_error {
        // The writer stopped the run (Stop::WriteFailed): the summary says so.
        if stop.reason().is_none() {
            return Err(e.into());
        }
    }
    // One record per input row, in line order: later records for a line replace earlier ones.
    let out = settings.out.clone();
    let compacted = if auditing {
        // An audit file has a line per field: its rows go in line order, fields together.
        blocking(move || audit_file::compact(&out).map_err(|e| anyhow::anyhow!(e)))
            .await
            .map(|()| tally.clone())
    } else {
        blocking(move || resume::compact(&out, max_line)).await
    };
    let final_tally = match compacted {
        Ok(tally) => tally,
        Err(e) => {
            // The records are all there, only not in line order: a later --compact can sort them.
            tracing::warn!(error = %e, "cannot compact the results file");
            tally.clone()
        }
    };
    // Still under the lock: no other run appends to the secrets file while it is replaced.
    hand_over_secrets(&settings, auditing, max_line).await;
    drop(lock);

    let mut summary = Summary::new(report::SummaryInput {
        input: settings.input.clone(),
        results: settings.out.clone(),
        dry_run: settings.dry_run,
        audit: auditing,
        rows,
        tally: &tally,
        attempts: counters.attempts.load(Ordering::Relaxed),
        throttled: counters.throttled.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        stopped: stop.reason(),
        skipped: counters.skipped.load(Ordering::Relaxed),
        final_tally: &final_tally,
        pace: controller
            .lock()
            .expect("controller slot")
            .as_ref()
            .and_then(|c| c.rate()),
        ceiling: settings.rate,
    });
    // A rotated refresh token that could not be saved: the rows are done, but the next run
    // is known to fail, so this one must not look like a success.
    if let Some(problem) = tokens.and_then(|t| t.not_saved()) {
        summary.exit_code = report::exit::FATAL;
        summary.stopped = Some(match summary.stopped.take() {
            Some(reason) => format!("{reason}; also, {problem}"),
            None => problem,
        });
    }
    if let Some(path) = &settings.report {
        let (results, report) = (settings.out.clone(), path.clone());
        blocking(move || {
            let data = render::load(&results, &*settings.target)?;
            std::fs::write(&report, render::html(&data)?).map_err(|source| {
                render::RenderError::Write {
                    path: report.clone(),
                    source,
                }
            })
        })
        .await?;
    }
    tracing::info!(
        recorded = summary.recorded,
        attempts = summary.attempts,
        throttled = summary.throttled,
        "finished"
    );
    Ok(summary)
}

/// With generated passwords, rewrites the secrets file with its `applied` column. A failure
/// leaves the file as the run wrote it (every password is still there), so it is logged only.
async fn hand_over_secrets(settings: &Settings, auditing: bool, max_line: u64) {
    let Some(g) = settings.generate_passwords.as_ref() else {
        return;
    };
    if settings.dry_run || auditing || !g.secrets_out.exists() {
        return;
    }
    let (secrets, results) = (g.secrets_out.clone(), settings.out.clone());
    match blocking(move || handover::rewrite(&secrets, &results, max_line)).await {
        Ok([yes, no, unknown]) => {
            tracing::info!(applied = yes, not_applied = no, unknown, file = %g.secrets_out.display(), "secrets file rewritten with its applied column")
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot add the applied column to the secrets file: it is as the run wrote it")
        }
    }
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

/// The HTTP client and the token provider, with a first token already fetched (so a refused
/// refresh token stops the run before any update); None in a dry run.
async fn connect(
    settings: &mut Settings,
) -> Result<Option<(client::Client, Arc<auth::TokenProvider>)>, Error> {
    if settings.dry_run {
        return Ok(None);
    }
    let credentials = settings
        .credentials
        .take()
        .ok_or(config::ConfigError::MissingToken)?;
    let tokens = auth::TokenProvider::new(credentials, settings.timeout)?;
    tokens.header().await?;
    let client = client::Client::new(
        &settings.base_url,
        settings.timeout,
        settings.connect_timeout,
        settings.concurrency,
        settings.target.clone(),
    )?;
    Ok(Some((client, Arc::new(tokens))))
}

/// Generates each row's password, writing it to the secrets file first.
struct Generator {
    length: usize,
    /// Passwords an earlier run wrote for unfinished rows, by line (with the user they were for).
    earlier: std::collections::HashMap<u64, (Uuid, secrecy::SecretString)>,
    /// None in a dry run: nothing is sent, so nothing is kept.
    secrets: Option<crate::output::secrets::SecretsFile>,
}

impl Generator {
    /// The generator a run needs, if it generates passwords. A dry run keeps no secrets file;
    /// a resume adds to the earlier one and reuses its passwords for rows that never got an
    /// outcome (they may have been set).
    fn for_run(
        settings: &Settings,
        finished: &resume::Finished,
    ) -> Result<Option<Generator>, Error> {
        let Some(g) = &settings.generate_passwords else {
            return Ok(None);
        };
        if settings.dry_run {
            return Ok(Some(Generator {
                length: g.length,
                earlier: Default::default(),
                secrets: None,
            }));
        }
        let resuming = settings.resume && g.secrets_out.exists();
        Ok(Some(Generator {
            length: g.length,
            earlier: if resuming {
                crate::output::secrets::earlier_passwords(&g.secrets_out, finished)?
            } else {
                Default::default()
            },
            secrets: Some(if resuming {
                crate::output::secrets::SecretsFile::append(&g.secrets_out)?
            } else {
                crate::output::secrets::SecretsFile::create(&g.secrets_out)?
            }),
        }))
    }

    /// The row's password: an earlier run's for the same line and user, or a new one kept in the
    /// secrets file (flushed and synced) before it can be sent.
    fn password_for(
        &mut self,
        row: &Row,
    ) -> Result<secrecy::SecretString, crate::output::secrets::SecretsError> {
        if let Some((user, password)) = self.earlier.remove(&row.line) {
            if user == row.user {
                return Ok(password);
            }
        }
        let password = passwords::generate(self.length);
        if let Some(secrets) = &mut self.secrets {
            secrets.record(
                row.line,
                &row.customer.to_string(),
                &row.user.to_string(),
                row.changes.user_principal_name.as_deref().unwrap_or(""),
                &password,
            )?;
        }
        Ok(password)
    }
}

/// The second pass over the input.
struct Reader {
    duplicates: Duplicates,
    default_customer: Option<Uuid>,
    target: Arc<dyn crate::targets::Target>,
    dry_run: bool,
    generator: Option<Generator>,
    /// What earlier runs finished (a resume); rows in it are skipped.
    finished: resume::Finished,
    counters: Arc<Counters>,
}

/// The reader's end of the row queue. It waits for a quarter of the queue to be free before
/// filling it again, so the workers wake this thread once per batch rather than once per row.
struct Queue<'a> {
    tx: &'a mpsc::Sender<Row>,
    batch: usize,
    permits: Option<mpsc::PermitIterator<'a, Row>>,
}

impl<'a> Queue<'a> {
    fn new(tx: &'a mpsc::Sender<Row>) -> Queue<'a> {
        Queue {
            tx,
            batch: (tx.max_capacity() / 4).max(1),
            permits: None,
        }
    }

    /// Queues a row, waiting for room; false when the workers have gone.
    fn send(&mut self, row: Row) -> bool {
        loop {
            if let Some(permit) = self.permits.as_mut().and_then(Iterator::next) {
                permit.send(row);
                return true;
            }
            let reserve = self.tx.reserve_many(self.batch);
            match tokio::runtime::Handle::current().block_on(reserve) {
                Ok(permits) => self.permits = Some(permits),
                Err(_) => return false,
            }
        }
    }
}

impl Reader {
    /// Validates each record in order; invalid rows (and, in a dry run, planned rows) go straight
    /// to the results, valid rows to the workers. Skips rows an earlier run finished. Stops early
    /// when the run stops.
    fn read_rows(
        mut self,
        mut source: CsvSource,
        rows: &mpsc::Sender<Row>,
        sink: &Sink,
        stop: &Stop,
    ) -> Result<(), Error> {
        let mut record = ByteRecord::new();
        let mut queue = Queue::new(rows);
        while !stop.is_stopping() {
            let Some(line) = source.next_record(&mut record)? else {
                break;
            };
            let row = self.check(line, &record, &source.header);
            let hash = match &row {
                Ok(r) => r.hash,
                Err(i) => i.hash,
            };
            if self.finished.is_finished(line, hash) {
                self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                self.counters.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let row = match (row, self.generator.as_mut()) {
                (Ok(mut row), Some(generator)) => match generator.password_for(&row) {
                    Ok(password) => {
                        row.changes.password = Some(password);
                        Ok(row)
                    }
                    Err(e) => {
                        stop.stop(StopReason::WriteFailed(e.to_string()));
                        return Err(e.into());
                    }
                },
                (row, _) => row,
            };
            match row {
                Err(invalid) => sink.send_paced(Record::invalid(&invalid)),
                Ok(row) if self.dry_run => sink.send_paced(planned(&row, &*self.target)),
                Ok(row) => {
                    if !queue.send(row) {
                        break; // the workers have stopped
                    }
                }
            }
        }
        Ok(())
    }

    /// Validation plus the duplicate check. An invalid row still claims its (customer, user)
    /// pair, so a later row for the same user is flagged.
    fn check(
        &mut self,
        line: u64,
        record: &ByteRecord,
        header: &input::Header,
    ) -> Result<Row, validate::Invalid> {
        let generating = self.generator.is_some();
        match validate::validate(
            line,
            record,
            header,
            self.default_customer,
            generating,
            &*self.target,
        ) {
            Ok(row) => match self.duplicates.check(line, row.customer, row.user) {
                Some(first) => Err(validate::Invalid {
                    hash: row.hash,
                    line,
                    customer: row.customer.to_string(),
                    user: row.user.to_string(),
                    reason: format!(
                        "the same customer and user as line {first}: each user may appear once per file"
                    ),
                }),
                None => Ok(row),
            },
            Err(invalid) => {
                if let (Ok(c), Ok(u)) = (
                    crate::core::ids::parse_guid(&invalid.customer),
                    crate::core::ids::parse_guid(&invalid.user),
                ) {
                    self.duplicates.check(line, c, u);
                }
                Err(invalid)
            }
        }
    }
}

fn planned(row: &Row, target: &dyn crate::targets::Target) -> Record {
    Record {
        line: row.line,
        customer_id: row.customer.to_string(),
        user_id: row.user.to_string(),
        outcome: Outcome::Planned,
        http_status: None,
        error_code: None,
        message: String::new(),
        attempts: 0,
        elapsed_ms: 0,
        request_id: None,
        correlation_id: None,
        finished_at: std::time::SystemTime::now(),
        body: Some(target.shown_body(&row.changes)),
        row_hash: row.hash,
        throttled: 0,
        fields: Vec::new(),
    }
}

/// First Ctrl-C or SIGTERM: stop taking rows and let requests in flight finish, for at most
/// `grace`. Second (or when the grace period is over): stop at once.
fn watch_signals(stop: Arc<Stop>, grace: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(signal) = wait_for_signal().await else {
            return;
        };
        let grace_text = humantime::format_duration(grace);
        match signal {
            // Whoever sent SIGTERM (systemd, cron, kill) cannot press Ctrl-C.
            Signal::Terminate => tracing::warn!(
                "terminated: finishing the requests in flight for up to {grace_text}"
            ),
            Signal::Interrupt => tracing::warn!(
                "interrupted: finishing the requests in flight, for up to {grace_text} (press Ctrl-C again to stop at once)"
            ),
        }
        stop.stop(StopReason::Interrupted);
        tokio::select! {
            r = wait_for_signal() => {
                if r.is_ok() {
                    tracing::warn!("interrupted again: stopping at once");
                }
            }
            _ = tokio::time::sleep(grace) => {
                tracing::warn!("the grace period is over: stopping at once");
            }
        }
        stop.abort(StopReason::Interrupted);
    })
}

/// Which signal asked the run to stop.
enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

async fn wait_for_signal() -> std::io::Result<Signal> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| Signal::Interrupt),
            _ = term.recv() => Ok(Signal::Terminate),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| Signal::Interrupt)
    }
}
