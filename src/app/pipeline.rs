//! The pipeline end to end, read top to bottom in [`run_to_summary`]: open and scan the input,
//! lock the results file, connect, then the reader (input -> rows), the workers (rows ->
//! requests -> records) and the writer (records -> results file) run together; at the end the
//! results are compacted, the secrets file handed over and the summary made.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::rows::{Generator, Reader};
use super::{blocking, guards, signals, Error};
use crate::core::digest::Sha256;
use crate::core::run_state::{Counters, Operation, Stop};
use crate::input::csv::{CsvSource, ReadOptions};
use crate::input::protect_list::ProtectList;
use crate::input::rows::{self as validate, Duplicates, Row};
use crate::output::progress::Progress;
use crate::output::results::{self, Sink, Tally};
use crate::output::summary::{self, Summary};
use crate::output::{audit_file, handover, resume};
use crate::report;
use crate::send::auth::TokenProvider;
use crate::send::http::Client;
use crate::send::pacer::Pacer;
use crate::send::{http_client, pool, reach, retry};
use crate::settings::{ConfigError, Settings};

/// Sends every row (or plans them, in a dry run) and returns the summary; see [`super::run`].
pub async fn run_to_summary(mut settings: Settings) -> Result<Summary, Error> {
    let started = Instant::now();
    crate::output::paths::check_dirs(&settings)?;
    let mut input = Input::open(&settings).await?;
    guards::check_digest(&settings, input.sha256)?;
    refuse_unchecked_passwords(&settings, &input)?;
    let protect = settings
        .protect_file
        .as_deref()
        .map_or_else(|| Ok(ProtectList::default()), ProtectList::read)?;
    if input.rows == 0 && !settings.compact_only {
        let (dry_run, audit) = (settings.dry_run, is_audit(&settings));
        let mut summary = Summary::no_data_rows(settings.input, settings.out, dry_run, audit);
        summary.input_sha256 = Some(input.sha256.to_string());
        return Ok(summary);
    }
    let mut lock = lock_results(&settings, &input)?;
    if settings.compact_only {
        lock.commit()?;
        let out = settings.out.clone();
        let tally = blocking(move || resume::compact(&out, input.max_line)).await?;
        let mut summary = Summary::compacted(settings.input, settings.out, input.rows, &tally);
        summary.input_sha256 = Some(input.sha256.to_string());
        return Ok(summary);
    }
    let finished = finished_rows(&settings, input.max_line).await?;
    let (finished, gate) =
        guards::check_max_changes(&settings, &input.options, &input.duplicates, finished).await?;
    // Before anything is sent: a run that cannot keep the previous values does not start.
    let undo = open_undo_file(&settings)?;
    let sender = connect(&mut settings).await?;
    let tokens = sender.as_ref().map(|(_, tokens)| tokens.clone());
    let resolver = match &sender {
        Some((client, tokens)) => {
            super::resolve::prepare(&settings, client.clone(), tokens.clone()).await?
        }
        None => None,
    };
    let generator = Generator::for_run(&settings, &finished)?;
    let stages = Stages::start(&settings, input.rows)?;
    stages
        .counters
        .set_customers(std::mem::take(&mut input.rows_per_customer));
    lock.commit()?;
    let (max_line, sha256) = (input.max_line, input.sha256);
    let (row_tx, row_rx) = mpsc::channel::<Row>(settings.concurrency * 4);
    let reader = stages.spawn_reader(
        &settings,
        input,
        (generator, resolver, protect),
        finished,
        row_tx,
    );
    match sender {
        Some((client, tokens)) => {
            let gate = gate.map(|limit| Arc::new(crate::send::gate::Gate::new(limit)));
            stages
                .send(&settings, client, tokens, (undo, gate), row_rx)
                .await
        }
        None => drop(row_rx),
    }
    let (tally, ended) = stages.finish(reader).await?;

    let final_tally = compact(&settings, &tally, max_line).await;
    // Still under the lock: no other run appends to the secrets file while it is replaced.
    hand_over_secrets(&settings, max_line).await;
    finish_undo_file(&settings, max_line).await;
    drop(lock);
    let mut summary = ended.summary(&settings, started, &tally, &final_tally);
    summary.input_sha256 = Some(sha256.to_string());
    note_unsaved_refresh_token(&mut summary, tokens.as_deref());
    write_report(&settings).await?;
    tracing::info!(
        recorded = summary.recorded,
        attempts = summary.attempts,
        throttled = summary.throttled,
        "finished"
    );
    Ok(summary)
}

/// The results file, locked for this run; its fingerprint (input, target, SHA-256) is checked
/// on a resume.
fn lock_results(settings: &Settings, input: &Input) -> Result<resume::RunLock, Error> {
    let mut fingerprint = resume::Fingerprint::new(&settings.input, input.header_hash, input.rows);
    fingerprint.target = settings.target.name().to_string();
    fingerprint.input_sha256 = Some(input.sha256.to_string());
    fingerprint.dry_run = settings.dry_run;
    let continuing = settings.resume || settings.compact_only;
    Ok(resume::RunLock::acquire(
        &settings.out,
        &fingerprint,
        continuing,
        settings.force,
    )?)
}

fn is_audit(settings: &Settings) -> bool {
    settings.operation == Operation::Audit
}

/// The input, opened and scanned once (the row count and the duplicate check's first pass).
struct Input {
    source: CsvSource,
    rows: u64,
    duplicates: Duplicates,
    /// Each customer's rows, for the progress display's customers done.
    rows_per_customer: std::collections::HashMap<uuid::Uuid, u64>,
    header_hash: u64,
    /// The SHA-256 of the whole file, from the first pass.
    sha256: Sha256,
    /// How the file is read (the `--max-changes` count reads it so too).
    options: ReadOptions,
    /// The highest line a results file for this input may name.
    max_line: u64,
}

impl Input {
    async fn open(settings: &Settings) -> Result<Input, Error> {
        let options = read_options(settings);
        // Opened before the first pass and hashed again as the reader reads it: a file replaced
        // or changed between the passes, or while the run goes, stops the run at its end.
        let source = CsvSource::open_hashed(&settings.input, &options)?;
        let customer_column = source
            .header
            .position(crate::input::csv::Column::CustomerId)
            .is_some();
        if settings.customer_id.is_some() && customer_column {
            tracing::warn!("the input has a customer_id column: --customer-id is ignored");
        }
        let (path, default_customer) = (settings.input.clone(), settings.customer_id);
        let scanning = options.clone();
        let scanned = blocking(move || validate::scan(&path, &scanning, default_customer)).await?;
        let sha256 = scanned.sha256;
        tracing::info!(rows = scanned.rows, sha256 = %sha256, "input read");
        Ok(Input {
            header_hash: source.header.hash,
            sha256,
            options,
            max_line: crate::output::paths::max_line(&settings.input),
            source,
            rows: scanned.rows,
            duplicates: scanned.duplicates,
            rows_per_customer: scanned.rows_per_customer,
        })
    }
}

/// How the input is read for these settings (every pass reads it the same way).
pub(super) fn read_options(settings: &Settings) -> ReadOptions {
    ReadOptions {
        delimiter: settings.delimiter,
        ignore_unknown_columns: settings.ignore_unknown_columns,
        has_default_customer: settings.customer_id.is_some(),
        generate_passwords: settings.generate_passwords.is_some(),
        fields: settings.fields.clone(),
        keep_columns: settings.keep_columns.clone(),
        target: Some(settings.target.clone()),
    }
}

/// What earlier runs finished (a resume); nothing otherwise.
async fn finished_rows(settings: &Settings, max_line: u64) -> Result<resume::Finished, Error> {
    if !settings.resume {
        return Ok(resume::Finished::default());
    }
    let (out, retry_failed) = (settings.out.clone(), settings.retry_failed);
    let finished = blocking(move || resume::Finished::load(&out, retry_failed, max_line)).await?;
    tracing::info!(already_done = finished.count, "resuming");
    Ok(finished)
}

/// The HTTP client and the token provider, with a first token already fetched (so a refused
/// refresh token stops the run before any update); None in a dry run.
pub(super) async fn connect(
    settings: &mut Settings,
) -> Result<Option<(Client, Arc<TokenProvider>)>, Error> {
    if settings.dry_run {
        return Ok(None);
    }
    let credentials = settings
        .credentials
        .take()
        .ok_or(ConfigError::MissingToken)?;
    // One HTTP client for the token endpoint and the API alike.
    let http = http_client::client(&http_client::HttpSettings {
        connect_timeout: settings.connect_timeout,
        timeout: settings.timeout,
        pool_size: settings.concurrency,
        ca: settings.ca_file.as_ref(),
    })?;
    let mut tokens = TokenProvider::new(credentials, http.clone())?;
    if settings.target.tokens_per_tenant() {
        tokens = tokens.per_tenant(settings.target.oauth_scope())?;
    }
    tokens.header().await?;
    let client = Client::new(
        http,
        &settings.base_url,
        settings.timeout,
        settings.target.clone(),
    )?;
    Ok(Some((client, Arc::new(tokens))))
}

/// The pace controller, once the workers have one (progress and the summary read it).
type PaceSlot = Arc<Mutex<Option<Arc<Pacer>>>>;

/// What the reader, the workers and the writer share while the run goes.
struct Stages {
    rows: u64,
    stop: Arc<Stop>,
    counters: Arc<Counters>,
    sink: Sink,
    writer: results::Writer,
    pace: PaceSlot,
    progress: Progress,
    signals: JoinHandle<()>,
}

impl Stages {
    /// Opens the results file (created, or appended to on a resume) and starts the progress
    /// display and the signal watcher.
    fn start(settings: &Settings, rows: u64) -> Result<Stages, Error> {
        let stop = Arc::new(Stop::default());
        let counters = Arc::new(if is_audit(settings) {
            Counters::for_audit()
        } else {
            Counters::default()
        });
        let mode = match settings.resume {
            true => results::Mode::Append,
            false => results::Mode::Create {
                overwrite: settings.force,
            },
        };
        let layout = match is_audit(settings) {
            true => results::Layout::Audit,
            false => results::Layout::Results,
        };
        let (sink, writer) =
            results::start(&settings.out, mode, layout, stop.clone(), counters.clone())?;
        let signals = signals::watch_signals(stop.clone(), settings.grace_period);
        tracing::info!(
            input = %settings.input.display(),
            rows,
            results = %settings.out.display(),
            rate = %settings.rate,
            concurrency = settings.concurrency,
            dry_run = settings.dry_run,
            "starting"
        );
        let pace = PaceSlot::default();
        let reading = pace.clone();
        let progress = Progress::start(
            rows,
            counters.clone(),
            Arc::new(move || {
                let pacer = reading.lock().ok().and_then(|p| p.clone());
                pacer.map(|p| p.now(true)).unwrap_or_default()
            }),
            settings.show_progress,
            settings.progress_interval,
        );
        Ok(Stages {
            rows,
            stop,
            counters,
            sink,
            writer,
            pace,
            progress,
            signals,
        })
    }

    /// The reader, on a blocking thread: input rows to the workers' queue (or, invalid and
    /// planned rows, straight to the results).
    fn spawn_reader(
        &self,
        settings: &Settings,
        input: Input,
        (generator, resolver, protect): (
            Option<Generator>,
            Option<Arc<super::resolve::Resolver>>,
            ProtectList,
        ),
        finished: resume::Finished,
        rows: mpsc::Sender<Row>,
    ) -> JoinHandle<Result<(), Error>> {
        let reader = Reader {
            duplicates: input.duplicates,
            default_customer: settings.customer_id,
            target: settings.target.clone(),
            dry_run: settings.dry_run,
            generator,
            finished,
            counters: self.counters.clone(),
            input_sha256: input.sha256,
            resolver,
            protect,
        };
        let (sink, stop, source) = (self.sink.clone(), self.stop.clone(), input.source);
        tokio::task::spawn_blocking(move || reader.read_rows(source, &rows, &sink, &stop))
    }

    /// The workers: each row paced, sent, retried and recorded, until the queue is empty.
    async fn send(
        &self,
        settings: &Settings,
        client: Client,
        tokens: Arc<TokenProvider>,
        (undo, gate): (
            Option<Arc<crate::output::undo::UndoFile>>,
            Option<Arc<crate::send::gate::Gate>>,
        ),
        rows: mpsc::Receiver<Row>,
    ) {
        let writes = matches!(settings.operation, Operation::Patch { .. });
        let pacer = Arc::new(Pacer::for_settings(settings, writes));
        if let Ok(mut slot) = self.pace.lock() {
            *slot = Some(pacer.clone());
        }
        let policy = retry::Policy::for_settings(settings);
        // Administrators' passwords: their roles read first, through the same pacer and client.
        let patching = matches!(settings.operation, Operation::Patch { .. });
        let guard = (patching && !settings.include_admins).then(|| {
            let protection = crate::app::protect::Protection {
                lister: crate::app::listing::Lister {
                    target: settings.target.clone(),
                    client: client.clone(),
                    tokens: tokens.clone(),
                    pacer: pacer.clone(),
                    stop: self.stop.clone(),
                    policy,
                    counters: self.counters.clone(),
                },
                roles: settings.protected_roles.clone(),
            };
            Arc::new(protection) as Arc<dyn crate::send::guard::Guard>
        });
        let ctx = Arc::new(pool::Context {
            operation: settings.operation,
            target: settings.target.clone(),
            client,
            tokens,
            pacer,
            stop: self.stop.clone(),
            policy,
            results: self.sink.clone(),
            counters: self.counters.clone(),
            reach: reach::Reach::new(settings.base_url.host_str().unwrap_or("the API")),
            tenants: Default::default(),
            undo,
            guard,
            gate: gate.clone(),
            batch: settings.batch,
        });
        pool::run(rows, ctx.clone(), settings.concurrency).await;
        // Every row read, and no more than --max-changes would change: write the rows held.
        if let Some(gate) = gate.filter(|_| !self.stop.is_stopping()) {
            let held = gate.open();
            tracing::info!(
                rows = held.len(),
                limit = gate.limit(),
                "every user read: writing the rows that change"
            );
            let (tx, rx) = mpsc::channel(held.len().max(1));
            for row in held {
                let _ = tx.try_send(row);
            }
            drop(tx);
            pool::run(rx, ctx, settings.concurrency).await;
        }
    }

    /// Waits for the reader and the writer. Their errors stop the run, unless the run had
    /// already stopped for a reason the summary gives (what was sent is recorded either way).
    async fn finish(self, reader: JoinHandle<Result<(), Error>>) -> Result<(Tally, Ended), Error> {
        let read_result = reader.await.map_err(anyhow::Error::from)?;
        drop(self.sink);
        let writer = self.writer;
        let (tally, write_error) = tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(anyhow::Error::from)?;
        self.progress.finish().await;
        self.signals.abort();
        if let Err(e) = read_result {
            tracing::error!(error = %e, "stopped reading the input");
            if self.stop.reason().is_none() {
                return Err(e);
            }
        }
        if let Some(e) = write_error.filter(|_| self.stop.reason().is_none()) {
            return Err(e.into());
        }
        let ended = Ended {
            rows: self.rows,
            stop: self.stop,
            counters: self.counters,
            pace: self.pace,
        };
        Ok((tally, ended))
    }
}

/// What is left of the stages once the reader, workers and writer are done: what the summary reads.
struct Ended {
    rows: u64,
    stop: Arc<Stop>,
    counters: Arc<Counters>,
    pace: PaceSlot,
}

impl Ended {
    fn summary(
        &self,
        settings: &Settings,
        started: Instant,
        tally: &Tally,
        final_tally: &Tally,
    ) -> Summary {
        let c = &self.counters;
        Summary::new(summary::SummaryInput {
            input: settings.input.clone(),
            results: settings.out.clone(),
            dry_run: settings.dry_run,
            audit: is_audit(settings),
            rows: self.rows,
            tally,
            attempts: c.attempts.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            not_undoable: c.not_undoable.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
            stopped: self.stop.reason(),
            skipped: c.skipped.load(Ordering::Relaxed),
            final_tally,
            pace: self
                .pace
                .lock()
                .ok()
                .and_then(|p| p.as_ref().map(|p| p.now(false)))
                .unwrap_or_default(),
            ceiling: settings.rate,
        })
    }
}

/// One record per input row, in line order: later records for a line replace earlier ones
/// (an audit's lines of one row stay together). A failure leaves the records as they are.
async fn compact(settings: &Settings, tally: &Tally, max_line: u64) -> Tally {
    let out = settings.out.clone();
    let compacted = if is_audit(settings) {
        blocking(move || audit_file::compact(&out).map_err(|e| anyhow::anyhow!(e)))
            .await
            .map(|()| tally.clone())
    } else {
        blocking(move || resume::compact(&out, max_line)).await
    };
    compacted.unwrap_or_else(|e| {
        // The records are all there, only not in line order: a later --compact can sort them.
        tracing::warn!(error = %e, "cannot compact the results file");
        tally.clone()
    })
}

/// With generated passwords, rewrites the secrets file with its `applied` column. A failure
/// leaves the file as the run wrote it (every password is still there), so it is logged only.
async fn hand_over_secrets(settings: &Settings, max_line: u64) {
    let Some(g) = settings.generate_passwords.as_ref() else {
        return;
    };
    if settings.dry_run || is_audit(settings) || !g.secrets_out.exists() {
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

/// A run that may change passwords checks administrators first (their directory roles): a
/// target that cannot read roles refuses it before anything is sent, unless `--include-admins`.
fn refuse_unchecked_passwords(settings: &Settings, input: &Input) -> Result<(), Error> {
    let patching = matches!(settings.operation, Operation::Patch { .. });
    let passwords = settings.generate_passwords.is_some()
        || input
            .source
            .header
            .position(crate::input::csv::Column::Password)
            .is_some();
    if !patching || settings.dry_run || settings.include_admins || !passwords {
        return Ok(());
    }
    let nil = uuid::Uuid::nil();
    let probe = crate::targets::Ids {
        request: nil,
        correlation: nil,
    };
    let roles = crate::targets::Collection::Roles {
        customer: nil,
        user: nil,
    };
    match settings.target.list_request(roles, None, probe) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::Other(anyhow::anyhow!(
            "{} cannot read users' directory roles yet, so administrators' passwords cannot be told apart: add --include-admins to change passwords without that check (nothing was sent)",
            settings.target.title()
        ))),
    }
}

/// The undo file of a run with `--undo-file` (created new, or continued on a resume).
fn open_undo_file(
    settings: &Settings,
) -> Result<Option<Arc<crate::output::undo::UndoFile>>, Error> {
    let Some(path) = settings.undo_file.as_ref().filter(|_| !settings.dry_run) else {
        return Ok(None);
    };
    let columns = settings
        .target
        .undo_columns()
        .iter()
        .map(|(_, field)| field.column())
        .collect();
    let undo = crate::output::undo::UndoFile::open(path, columns, settings.resume)?;
    Ok(Some(Arc::new(undo)))
}

/// The undo file rewritten to the rows applied or possibly applied, once each.
async fn finish_undo_file(settings: &Settings, max_line: u64) {
    let Some(undo) = settings.undo_file.clone().filter(|p| p.exists()) else {
        return;
    };
    let results = settings.out.clone();
    let path = undo.clone();
    match blocking(move || crate::output::undo::finish(&path, &results, max_line)).await {
        Ok(kept) => tracing::info!(
            rows = kept.rows,
            dropped = kept.dropped,
            file = %undo.display(),
            "undo file rewritten: run it as input to revert the rows applied"
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot rewrite the undo file: it is as the run wrote it (every line a value read before its request; run it to revert)")
        }
    }
}

/// A rotated refresh token that could not be saved: the rows are done, but the next run is
/// known to fail, so this one must not look like a success.
fn note_unsaved_refresh_token(summary: &mut Summary, tokens: Option<&TokenProvider>) {
    if let Some(problem) = tokens.and_then(|t| t.not_saved()) {
        summary.exit_code = summary::exit::FATAL;
        summary.stopped = Some(match summary.stopped.take() {
            Some(reason) => format!("{reason}; also, {problem}"),
            None => problem,
        });
    }
}

/// `--report`: the HTML report of the results file.
async fn write_report(settings: &Settings) -> Result<(), Error> {
    let Some(path) = &settings.report else {
        return Ok(());
    };
    let (results, out, target) = (settings.out.clone(), path.clone(), settings.target.clone());
    blocking(move || {
        let data = report::load(&results, &*target)?;
        std::fs::write(&out, report::html(&data)?)
            .map_err(|source| report::RenderError::Write { path: out, source })
    })
    .await
}
