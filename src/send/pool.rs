//! The worker pool: tasks that take each row from the queue through the pacer, the target's
//! request, retries and the token provider to its record in the results. Uses `core`,
//! `targets`, `input`, `output` and the rest of `send`.

mod batch;
mod batch_reads;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use uuid::Uuid;

use secrecy::ExposeSecret;

use crate::core::run_state::Counters;
use crate::core::run_state::Outcome;
use crate::core::run_state::{Operation, Stop, StopReason};
use crate::input::rows::Row;
use crate::output::results::{Record, Sink};
use crate::send::attempt::Attempt;
use crate::send::auth::TokenProvider;
use crate::send::http::Client;
use crate::send::pacer::Pacer;
use crate::send::retry::{self, Driven, Ending, Policy, Verdict};
use crate::send::schedule::Scheduler;
use crate::send::tenants::{held_record, Refusal, Seen};
use crate::targets::{Ids, Op, RowRef};

/// What every worker shares.
pub struct Context {
    pub operation: Operation,
    /// The API: how a live user compares with a row.
    pub target: Arc<dyn crate::targets::Target>,
    pub client: Client,
    pub tokens: Arc<TokenProvider>,
    pub pacer: Arc<Pacer>,
    pub stop: Arc<Stop>,
    pub policy: Policy,
    pub results: Sink,
    pub counters: Arc<Counters>,
    /// Stops the run when nothing connects.
    pub reach: crate::send::reach::Reach,
    /// Customers that refused several rows in a row: their other rows are not sent.
    pub tenants: crate::send::tenants::Tenants,
    /// `--undo-file`: each row's previous values, written and synced before its request.
    pub undo: Option<Arc<crate::output::undo::UndoFile>>,
    /// Protected administrators: checked before a password row is sent.
    pub guard: Option<Arc<dyn crate::send::guard::Guard>>,
    /// `--max-changes` counted after reading: rows that would change wait for every read.
    pub gate: Option<Arc<crate::send::gate::Gate>>,
    /// `--batch`: reads and writes of one customer per request (`pool::batch`); 1 sends each alone.
    pub batch: usize,
}

/// Runs `concurrency` workers over the rows until the channel closes or the run stops. The
/// scheduler hands them rows fairly across customers (see `send::schedule`).
pub async fn run(rows: mpsc::Receiver<Row>, ctx: Arc<Context>, concurrency: usize) {
    let scheduler = match batch::applies(&ctx) {
        true => Scheduler::start_batched(rows, concurrency, ctx.stop.clone()),
        false => Scheduler::start(rows, concurrency, ctx.stop.clone()),
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker(scheduler.clone(), ctx.clone()));
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

async fn worker(scheduler: Arc<Scheduler>, ctx: Arc<Context>) {
    while let Some(row) = scheduler.next(ctx.pacer.lanes(), &ctx.stop).await {
        if batch::applies(&ctx) {
            batch::run(row, &scheduler, &ctx).await;
            continue;
        }
        let customer = row.customer;
        // The row's password is known to the redaction point while the row is in flight.
        let password = crate::core::redact::hold(row.changes.password.as_ref());
        let record = process(row, &ctx).await;
        drop(password);
        if let Some(record) = record {
            ctx.results.send(record);
        }
        scheduler.finished(customer);
    }
}

/// Takes one row through its attempts; None when the run stopped before anything was sent for it.
/// A row of a customer that refuses is recorded without a request.
async fn process(row: Row, ctx: &Context) -> Option<Record> {
    if let Some(refusal) = ctx.tenants.refused(row.customer) {
        return Some(held_record(&row, &refusal, ctx.operation));
    }
    // Set when the customer was found refused after the row's wait for the pacer.
    let held = OnceLock::new();
    let held_back = |held: &OnceLock<Refusal>| {
        held.get()
            .map(|refusal| held_record(&row, refusal, ctx.operation))
    };
    if let Some(record) = guard(ctx, &row).await {
        return record;
    }
    let correlation_id = crate::core::ids::new_id();
    // elapsed_ms runs from the row's first request, not from its wait behind the pacer.
    let first_sent = OnceLock::new();
    let elapsed = || {
        first_sent
            .get()
            .map_or(Duration::ZERO, std::time::Instant::elapsed)
    };
    let reads = reads_first(ctx);
    let mut read_attempts = (0, 0);
    if reads {
        let read = exchange(ctx, &row, Op::Read, correlation_id, &first_sent, &held).await;
        if let Some(record) = held_back(&held) {
            return Some(record);
        }
        match after_read(ctx, &row, &read, correlation_id, elapsed()) {
            AfterRead::Done(record) => return record.map(|r| *r),
            AfterRead::Write => read_attempts = (read.attempts, read.throttled),
        }
    }
    let mut driven = exchange(ctx, &row, Op::Write, correlation_id, &first_sent, &held).await;
    if let Some(record) = held_back(&held) {
        return Some(record);
    }
    driven.attempts += read_attempts.0;
    driven.throttled += read_attempts.1;
    let record = outcome_record(&row, &driven, correlation_id, elapsed())?;
    tracing::debug!(
        line = row.line,
        outcome = record.outcome.as_str(),
        status = record.http_status,
        attempts = record.attempts,
        "row finished"
    );
    Some(record)
}

/// Whether a row is read before anything else: an audit, or a write with `--skip-unchanged`
/// or `--undo-file` (one read serves both, and skips rows already as desired). Rows a
/// `--max-changes` gate held and released were read already.
fn reads_first(ctx: &Context) -> bool {
    let released = ctx.gate.as_ref().is_some_and(|g| g.is_open());
    match ctx.operation {
        Operation::Audit => true,
        Operation::Patch { .. } if released => false,
        Operation::Patch { skip_unchanged } => skip_unchanged || ctx.undo.is_some(),
    }
}

/// What follows a row's read.
enum AfterRead {
    /// The row's record; None when nothing is recorded (the run stopped, or the `--max-changes`
    /// gate holds the row until every row has been read).
    Done(Option<Box<Record>>),
    /// The row changes (its previous values are in the undo file): its write follows.
    Write,
}

/// A row's read: an audit's record, an unchanged or unreadable row's record, or its write
/// next (after its undo values are written). Shared by single and batched reads.
fn after_read(
    ctx: &Context,
    row: &Row,
    read: &Driven,
    correlation_id: Uuid,
    elapsed: Duration,
) -> AfterRead {
    let live = match (&read.ending, &read.last) {
        (Ending::Finished, Some(Attempt::Response(r))) => r.user.as_ref(),
        _ => None,
    };
    let fields = live.map(|live| ctx.target.compare(&row.changes, live));
    let unchanged = fields
        .as_ref()
        .is_some_and(|f| f.iter().all(|c| !c.changes));
    let Some(mut record) = outcome_record(row, read, correlation_id, elapsed) else {
        return AfterRead::Done(None);
    };
    match (ctx.operation, fields) {
        (Operation::Audit, fields) => {
            record.outcome = audit_outcome(read, &record, unchanged);
            record.fields = fields.unwrap_or_default();
            AfterRead::Done(Some(Box::new(record)))
        }
        (_, Some(fields)) if unchanged => {
            record.outcome = Outcome::Unchanged;
            record.fields = fields;
            AfterRead::Done(Some(Box::new(record)))
        }
        // Could not read the user: the write would fail the same way.
        (_, None) => AfterRead::Done(Some(Box::new(record))),
        (_, Some(fields)) => {
            if !write_ahead(ctx, row, &fields) {
                return AfterRead::Done(None);
            }
            if let Some(gate) = &ctx.gate {
                // Written only once every row has been read and the count is known.
                if !gate.hold(row.clone()) {
                    let limit = gate.limit();
                    ctx.stop.stop(StopReason::TooManyChanges { limit });
                }
                return AfterRead::Done(None);
            }
            AfterRead::Write
        }
    }
}

/// The protection check of a password row: Some(the row's record, or None when the run
/// stopped) when the row goes no further.
async fn guard(ctx: &Context, row: &Row) -> Option<Option<Record>> {
    use crate::send::guard::Guarded;
    // Rows a gate held were checked before they were held.
    let released = ctx.gate.as_ref().is_some_and(|g| g.is_open());
    let guard = ctx.guard.as_ref().filter(|g| !released && g.applies(row))?;
    let (outcome, http_status, error_code, message) = match guard.check(row).await {
        Guarded::Allow => return None,
        Guarded::Stopped => return Some(None),
        Guarded::Protected(why) => (Outcome::Protected, None, None, why),
        Guarded::Unknown {
            status,
            code,
            message,
        } => (
            Outcome::Failed,
            status,
            code,
            format!("not sent: the user's directory roles could not be read ({message}); an administrator's password is never reset unread"),
        ),
    };
    Some(Some(Record {
        outcome,
        http_status,
        error_code,
        message,
        ..Record::unsent(row)
    }))
}

/// With `--undo-file`: appends the row's previous values of the fields it changes and syncs
/// them, before its request. False (the run stopped, nothing sent for the row) when the file
/// cannot be written: an update whose original value could be lost is not sent.
fn write_ahead(ctx: &Context, row: &Row, fields: &[crate::targets::FieldChange]) -> bool {
    let Some(undo) = &ctx.undo else {
        return true;
    };
    if row.changes.password.is_some() {
        ctx.counters.not_undoable.fetch_add(1, Ordering::Relaxed);
    }
    let columns = ctx.target.undo_columns();
    // A value that was empty is restored by `<clear>` where the API can clear it (Graph);
    // elsewhere the cell stays empty ("unchanged": it cannot be restored).
    let previous: Vec<(&'static str, String)> = fields
        .iter()
        .filter(|f| f.changes)
        .filter_map(|f| {
            let (_, field) = columns.iter().find(|(api, _)| *api == f.field)?;
            let empty = || match ctx.target.can_clear(*field) {
                true => crate::targets::CLEAR.to_string(),
                false => String::new(),
            };
            Some((field.column(), f.current.clone().unwrap_or_else(empty)))
        })
        .collect();
    if previous.is_empty() {
        return true; // only a password changes: nothing to keep
    }
    match undo.record(row.customer, row.user, &previous) {
        Ok(_) => true,
        Err(e) => {
            ctx.stop.stop(StopReason::WriteFailed(e.to_string()));
            false
        }
    }
}

/// An audit row's outcome from its GET.
fn audit_outcome(read: &Driven, record: &Record, unchanged: bool) -> Outcome {
    match (&read.verdict, record.http_status) {
        (Some(Verdict::Success), _) if unchanged => Outcome::Unchanged,
        (Some(Verdict::Success), _) => Outcome::WouldChange,
        (Some(Verdict::Fail { .. }), Some(404)) => Outcome::NotFound,
        (Some(Verdict::Fail { .. }), Some(403)) => Outcome::Forbidden,
        _ => record.outcome,
    }
}

/// One request of a row through its retries, with one token refresh and retry after a 401
/// (a second 401, or a failed refresh, stops the run). Counts attempts and 429s, and tells
/// `ctx.tenants` what the answer said about the customer. Sends nothing, and sets `held`, when
/// the customer is found refused before the row's first request.
async fn exchange(
    ctx: &Context,
    row: &Row,
    op: Op,
    correlation_id: Uuid,
    first_sent: &OnceLock<std::time::Instant>,
    held: &OnceLock<Refusal>,
) -> Driven {
    let secrets: Vec<&str> = row
        .changes
        .password
        .iter()
        .map(|p| p.expose_secret())
        .collect();
    let (line, customer, user) = (row.line, row.customer, row.user);
    let generation = AtomicU64::new(0);
    let target = &*ctx.target;
    let mut send = |request_id: Uuid| {
        let (secrets, generation) = (&secrets, &generation);
        async move {
            if first_sent.get().is_none() {
                if let Some(refusal) = ctx.tenants.refused(customer) {
                    let _ = held.set(refusal);
                    return None;
                }
            }
            let auth = match authorization(ctx, customer).await {
                Ok(auth) => auth,
                Err(refused) => {
                    if let Some(refusal) = refused {
                        let _ = held.set(refusal);
                    }
                    return None;
                }
            };
            generation.store(auth.generation, Ordering::Relaxed);
            first_sent.get_or_init(std::time::Instant::now);
            tracing::trace!(line, ?op, %request_id, %correlation_id, "sending");
            let ids = Ids {
                request: request_id,
                correlation: correlation_id,
            };
            let rows = [RowRef {
                customer,
                user,
                changes: &row.changes,
            }];
            let request = target.request(op, &rows, ids);
            let attempt = (ctx.client)
                .send_request(auth.value, request, secrets, op == Op::Read)
                .await;
            if let Some(reason) = ctx.reach.observe(&attempt) {
                ctx.stop.stop(reason);
            }
            Some(attempt)
        }
    };
    let (stop, pacer) = (&ctx.stop, &ctx.pacer);
    let mut driven = retry::drive(&ctx.policy, pacer, stop, Some(customer), &mut send).await;
    if matches!(driven.verdict, Some(Verdict::Unauthorized { .. })) {
        let generation = generation.load(Ordering::Relaxed);
        match ctx.tokens.refresh_after_401(generation).await {
            Ok(true) => {
                let left = ctx.policy.max_attempts.saturating_sub(driven.attempts);
                let policy = Policy {
                    max_attempts: left.max(1),
                    ..ctx.policy
                };
                let again = retry::drive(&policy, pacer, stop, Some(customer), &mut send).await;
                driven = after_refresh(driven, again);
                if matches!(driven.verdict, Some(Verdict::Unauthorized { .. })) {
                    ctx.stop.stop(StopReason::Unauthorized);
                }
            }
            Ok(false) => ctx.stop.stop(StopReason::Unauthorized),
            Err(e) => ctx.stop.stop(StopReason::AuthFailed(e.to_string())),
        }
    }
    count(ctx, op, &driven);
    ctx.tenants.observe(customer, Seen::of(target, &driven));
    driven
}

/// The Authorization header for a request to `customer`'s tenant. Err(Some) when the tenant
/// refused its token (its rows are held); Err(None) when the sign-in itself failed (the run
/// stops).
pub(super) async fn authorization(
    ctx: &Context,
    customer: Uuid,
) -> Result<crate::send::auth::AuthHeader, Option<Refusal>> {
    match ctx.tokens.header_for(Some(customer)).await {
        Ok(auth) => Ok(auth),
        Err(crate::send::auth::AuthError::Tenant(refused)) => Err(Some(refused.refusal())),
        Err(e) => {
            ctx.stop.stop(StopReason::AuthFailed(e.to_string()));
            Err(None)
        }
    }
}

/// A row's attempts before a 401 and after the token was refreshed, as one: counts added, and
/// the first answer kept when nothing was sent after the refresh.
fn after_refresh(first: Driven, mut again: Driven) -> Driven {
    again.attempts += first.attempts;
    again.throttled += first.throttled;
    if again.last.is_none() {
        again.last = first.last;
        again.verdict = first.verdict;
        again.request_id = first.request_id;
        again.ending = Ending::Finished;
    }
    again
}

/// Counts a row's attempts, 429s and (for a read) reads in the run's counters.
fn count(ctx: &Context, op: Op, driven: &Driven) {
    let counters = &ctx.counters;
    let attempts = u64::from(driven.attempts);
    counters.attempts.fetch_add(attempts, Ordering::Relaxed);
    (counters.throttled).fetch_add(u64::from(driven.throttled), Ordering::Relaxed);
    if op == Op::Read {
        counters.reads.fetch_add(attempts, Ordering::Relaxed);
    }
}

/// The results record for a driven row (None when nothing was sent).
fn outcome_record(
    row: &Row,
    driven: &Driven,
    correlation_id: Uuid,
    elapsed: Duration,
) -> Option<Record> {
    let (http_status, error_code, last_message) = match &driven.last {
        Some(Attempt::Response(r)) => (Some(r.status), r.error_code.clone(), r.message.clone()),
        Some(Attempt::Timeout) => (None, None, "timed out waiting for a response".into()),
        Some(Attempt::Connection(m)) => (None, None, m.clone()),
        None => (None, None, String::new()),
    };
    let n = driven.attempts;
    let (outcome, message) = match (&driven.ending, &driven.verdict) {
        (Ending::NotAttempted, _) => return None,
        (Ending::Finished, Some(Verdict::Success)) => (Outcome::Updated, String::new()),
        (Ending::Finished, Some(Verdict::Unauthorized { .. })) => (
            Outcome::Failed,
            format!("access token refused (401), run stopped: {last_message}"),
        ),
        (Ending::Finished, _) => (Outcome::Failed, last_message),
        (Ending::Exhausted, _) => (
            Outcome::Failed,
            format!("gave up after {n} attempts: {last_message}"),
        ),
        (Ending::StoppedBeforeRetry, _) => (
            Outcome::Failed,
            format!("run stopped before retrying: {last_message}"),
        ),
        (Ending::Interrupted, _) => (
            Outcome::Interrupted,
            "run stopped at once while the request was in flight: the update may or may not have been applied".into(),
        ),
    };
    Some(Record {
        line: row.line,
        customer_id: row.customer.to_string(),
        user_id: row.user.to_string(),
        outcome,
        http_status,
        error_code,
        message,
        attempts: n,
        elapsed_ms: elapsed.as_millis() as u64,
        request_id: Some(driven.request_id),
        correlation_id: Some(correlation_id),
        finished_at: SystemTime::now(),
        body: None,
        row_hash: row.hash,
        throttled: driven.throttled,
        fields: Vec::new(),
        context: row.context.clone(),
    })
}
