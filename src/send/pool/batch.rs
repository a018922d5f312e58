//! Rows of one customer tenant sent several at once in one request (Graph `$batch`,
//! `--batch N`): a worker that takes a row gathers up to N-1 more of the same customer from the
//! scheduler, sends them through the target's [`crate::targets::Target::request_many`] and splits the answer
//! with [`crate::targets::Target::split_many`]. Each row keeps its own attempt count, 429 count, request and
//! correlation ids and record, exactly as when sent alone: rows answered 429 or 5xx go again
//! in a later request after the longest wait asked for (the tenant's lane paused once for it),
//! a 4xx is final for its row, and the request's own 429, 5xx or lost answer sends every row
//! of it again (no answer means no row's outcome is known). Reads (audits, `--skip-unchanged`,
//! `--undo-file`) go the same way, a batch of GETs, and what follows each row's read is
//! [`super::batch_reads`]'s. Part of the pool (its context, protection check and records);
//! uses `core`, `targets`, `input`, `output` and the rest of `send`.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::time::Instant;
use uuid::Uuid;

use super::{batch_reads, guard, outcome_record, Context};
use crate::core::run_state::StopReason;
use crate::input::rows::Row;
use crate::send::attempt::{Attempt, Response};
use crate::send::retry::{self, Driven, Ending, Verdict};
use crate::send::schedule::Scheduler;
use crate::send::tenants::{held_record, Seen};
use crate::targets::{Answer, Ids, Op, RowAnswer, RowRef};

/// One row of a batch: its own ids and its attempts so far.
pub(super) struct Slot {
    pub(super) row: Row,
    /// What the row's next request does: its read first, then (if it changes) its write.
    pub(super) op: Op,
    pub(super) correlation: Uuid,
    pub(super) request_id: Uuid,
    /// Attempts (and 429s) of the current `op`: each has `--max-attempts` of its own.
    pub(super) attempts: u32,
    pub(super) throttled: u32,
    /// Attempts and 429s of the row's read, once it goes on to its write (its record counts both).
    pub(super) read: (u32, u32),
    pub(super) last: Option<Attempt>,
    pub(super) verdict: Option<Verdict>,
    first_sent: Option<Instant>,
    /// The row's password is known to the redaction point while the row is in flight.
    _password: crate::core::redact::RowGuard,
}

impl Slot {
    fn new(row: Row, op: Op) -> Slot {
        Slot {
            _password: crate::core::redact::hold(row.changes.password.as_ref()),
            row,
            op,
            correlation: crate::core::ids::new_id(),
            request_id: crate::core::ids::new_id(),
            attempts: 0,
            throttled: 0,
            read: (0, 0),
            last: None,
            verdict: None,
            first_sent: None,
        }
    }
}

/// Whether rows are sent in batches: `--batch` above 1 (reads and writes alike).
pub fn applies(ctx: &Context) -> bool {
    ctx.batch > 1
}

/// Sends `first` and more rows of its customer in batches until each has its record (or the
/// run stopped before anything was sent for it). Calls `finished` for every row taken.
pub async fn run(first: Row, scheduler: &Scheduler, ctx: &Context) {
    let customer = first.customer;
    // New rows start with their read when rows are read first, else with their write.
    let start = if super::reads_first(ctx) {
        Op::Read
    } else {
        Op::Write
    };
    let mut slots = admit(vec![first], start, scheduler, ctx).await;
    let mut wait = Duration::ZERO;
    let mut refreshed = false;
    loop {
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.stop.stopping() => {
                    return finish_all(slots, Ending::StoppedBeforeRetry, scheduler, ctx);
                }
            }
        }
        // Rows read and found to change are written before more rows are read.
        let op = batch_reads::next_op(&slots, start);
        let (mut now, mut waiting): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut slots)
            .into_iter()
            .partition(|s| s.op == op);
        // After a 429 the rows answered so go again alone: a full batch would only meet the
        // limit again.
        let throttled = now.iter().any(|s| {
            matches!(
                s.verdict,
                Some(Verdict::Retry {
                    throttled: true,
                    ..
                })
            )
        });
        // As many rows as the tenant took at once lately (`--batch` until a batch was answered
        // partly 429); rows beyond that from earlier batches wait for the next request.
        let size = ctx.pacer.lanes().batch_size(customer, ctx.batch);
        let room = size.saturating_sub(now.len());
        if op == start && room > 0 && !throttled && !ctx.stop.is_stopping() {
            let more = scheduler.take_more(customer, room);
            now.extend(admit(more, start, scheduler, ctx).await);
        }
        if now.is_empty() {
            // `op` is that of a waiting row, if any: nothing waits.
            return finish_all(waiting, Ending::StoppedBeforeRetry, scheduler, ctx);
        }
        waiting.extend(now.split_off(size.min(now.len())));
        match envelope(op, &mut now, ctx, &mut refreshed).await {
            Ok(sent) => {
                wait = sent.wait;
                slots = settle(now, scheduler, ctx);
                slots.extend(waiting);
                if slots.is_empty() {
                    // Every row has its record, and the customer's next rows go to the worker
                    // that takes them next: taking more here as well would send a second batch
                    // of the tenant beside that worker's.
                    return;
                }
            }
            Err(Halt::Stopped(ending)) => {
                now.extend(waiting);
                return finish_all(now, ending, scheduler, ctx);
            }
            Err(Halt::Refused(refusal)) => {
                for slot in now.into_iter().chain(waiting) {
                    ctx.results
                        .send(held_record(&slot.row, &refusal, ctx.operation));
                    scheduler.finished(slot.row.customer);
                }
                return;
            }
        }
    }
}

/// The rows that go on to be sent: a row of a refused customer, or a password row the
/// protection check stops, gets its record here.
async fn admit(rows: Vec<Row>, op: Op, scheduler: &Scheduler, ctx: &Context) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(refusal) = ctx.tenants.refused(row.customer) {
            ctx.results.send(held_record(&row, &refusal, ctx.operation));
            scheduler.finished(row.customer);
            continue;
        }
        match guard(ctx, &row).await {
            None => slots.push(Slot::new(row, op)),
            Some(record) => {
                if let Some(record) = record {
                    ctx.results.send(record);
                }
                scheduler.finished(row.customer);
            }
        }
    }
    slots
}

/// What one request did to its rows (each slot holds its answer): the wait before the rows
/// that go again are sent.
struct Sent {
    wait: Duration,
}

/// Why nothing more is sent for the slots.
enum Halt {
    /// The run is stopping (each slot ends by whether it was ever sent).
    Stopped(Ending),
    /// The customer was found refused before the first request.
    Refused(crate::send::tenants::Refusal),
}

/// Sends one request for every slot and reads the answer into them.
async fn envelope(
    op: Op,
    slots: &mut [Slot],
    ctx: &Context,
    refreshed: &mut bool,
) -> Result<Sent, Halt> {
    let customer = slots.first().map(|s| s.row.customer).unwrap_or_default();
    // Paced per row: Graph counts each sub-request against its limits, as a request of its own.
    for _ in 0..slots.len() {
        if !ctx.pacer.ready(&ctx.stop, Some(customer)).await {
            return Err(Halt::Stopped(Ending::StoppedBeforeRetry));
        }
    }
    if slots.iter().all(|s| s.first_sent.is_none()) {
        if let Some(refusal) = ctx.tenants.refused(customer) {
            return Err(Halt::Refused(refusal));
        }
    }
    // The Authorization header of the batch's tenant, as for a row sent alone (`pool::exchange`).
    let auth = match super::authorization(ctx, customer).await {
        Ok(auth) => auth,
        Err(Some(refusal)) => return Err(Halt::Refused(refusal)),
        Err(None) => return Err(Halt::Stopped(Ending::StoppedBeforeRetry)),
    };
    let Some((attempt, body)) = send(op, slots, ctx, auth.value).await else {
        return Err(Halt::Stopped(Ending::Interrupted));
    };
    if let Some(reason) = ctx.reach.observe(&attempt) {
        ctx.stop.stop(reason);
    }
    let verdict = retry::classify(&attempt);
    if let Verdict::Unauthorized { .. } = verdict {
        if unauthorized(ctx, refreshed, auth.generation).await {
            for slot in slots.iter_mut() {
                slot.last = Some(attempt.clone());
                slot.verdict = Some(verdict.clone());
            }
            return Ok(Sent {
                wait: Duration::ZERO,
            });
        }
    }
    Ok(match verdict {
        Verdict::Success => read_rows(op, slots, ctx, &body),
        _ => whole(slots, ctx, attempt, verdict),
    })
}

/// After a 401: true when the token was refreshed (the first time) and the rows go again;
/// otherwise the run stops.
async fn unauthorized(ctx: &Context, refreshed: &mut bool, generation: u64) -> bool {
    if std::mem::replace(refreshed, true) {
        ctx.stop.stop(StopReason::Unauthorized);
        return false;
    }
    match ctx.tokens.refresh_after_401(generation).await {
        Ok(true) => true,
        Ok(false) => {
            ctx.stop.stop(StopReason::Unauthorized);
            false
        }
        Err(e) => {
            ctx.stop.stop(StopReason::AuthFailed(e.to_string()));
            false
        }
    }
}

/// Sends the request for the slots, each counting an attempt with its own ids. None when the
/// run was stopped at once while it was in flight (every slot then ends interrupted).
async fn send(
    op: Op,
    slots: &mut [Slot],
    ctx: &Context,
    auth: http::HeaderValue,
) -> Option<(Attempt, Vec<u8>)> {
    let now = Instant::now();
    (ctx.counters.batches).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for slot in slots.iter_mut() {
        slot.attempts += 1;
        slot.first_sent.get_or_insert(now);
    }
    let rows: Vec<(RowRef<'_>, Ids)> = slots
        .iter()
        .map(|s| {
            let row = RowRef {
                customer: s.row.customer,
                user: s.row.user,
                changes: &s.row.changes,
            };
            let ids = Ids {
                request: s.request_id,
                correlation: s.correlation,
            };
            (row, ids)
        })
        .collect();
    let envelope = Ids {
        request: crate::core::ids::new_id(),
        correlation: crate::core::ids::new_id(),
    };
    let request = ctx.target.request_many(op, &rows, envelope);
    let secrets = secrets(slots);
    tracing::trace!(rows = slots.len(), %envelope.request, "sending a batch");
    tokio::select! {
        sent = ctx.client.send_batch(auth, request, &secrets) => Some(sent),
        _ = ctx.stop.aborted() => None,
    }
}

fn secrets(slots: &[Slot]) -> Vec<&str> {
    slots
        .iter()
        .filter_map(|s| s.row.changes.password.as_ref())
        .map(|p| p.expose_secret())
        .collect()
}

/// The request's own answer (not a success) is every row's: final, or all sent again.
fn whole(slots: &mut [Slot], ctx: &Context, attempt: Attempt, verdict: Verdict) -> Sent {
    let customer = slots.first().map(|s| s.row.customer);
    ctx.pacer.observe(&attempt, customer);
    let (retry_after, said) = match &attempt {
        Attempt::Response(r) => (r.retry_after, r.throttle_scope),
        _ => (None, None),
    };
    let most = slots.iter().map(|s| s.attempts).max().unwrap_or(1);
    let wait = retry_after.unwrap_or_else(|| ctx.policy.backoff.delay(most, &mut rand::rng()));
    let throttled = matches!(
        verdict,
        Verdict::Retry {
            throttled: true,
            ..
        }
    );
    if throttled {
        ctx.pacer.throttled(customer, wait, said);
    }
    let got_response = attempt.got_response();
    for slot in slots.iter_mut() {
        slot.throttled += u32::from(throttled);
        slot.last = Some(attempt.clone());
        slot.verdict = Some(verdict.clone());
        if ctx.policy.ids.renews(got_response) {
            slot.request_id = crate::core::ids::new_id();
        }
    }
    Sent { wait }
}

/// A successful request: each row's own answer, fed to the pace; the rows to send again wait
/// for the longest wait any of them was asked for, and a 429 among them pauses the lane once.
fn read_rows(op: Op, slots: &mut [Slot], ctx: &Context, body: &[u8]) -> Sent {
    let Some(customer) = slots.first().map(|s| s.row.customer) else {
        return Sent {
            wait: Duration::ZERO,
        };
    };
    let answer = Answer {
        status: 200,
        body,
        is_json: true,
    };
    let answers = ctx.target.split_many(op, &answer, slots.len());
    let (mut wait, mut throttled_wait) = (Duration::ZERO, None::<Duration>);
    let mut throttled_rows = 0;
    // Which limit the sub-429s said they hit: the app's across tenants wins over the tenant's.
    let mut said = None;
    for (slot, answer) in slots.iter_mut().zip(answers) {
        let attempt = Attempt::Response(sub_response(answer, slot));
        ctx.pacer.observe(&attempt, Some(customer));
        let verdict = match retry::classify(&attempt) {
            // The request's token was good: a row's 401 is that row's failure.
            Verdict::Unauthorized { reason } => Verdict::Fail { reason },
            v => v,
        };
        if let Verdict::Retry { throttled, .. } = verdict {
            let (asked, scope) = match &attempt {
                Attempt::Response(r) => (r.retry_after, r.throttle_scope),
                _ => (None, None),
            };
            let w =
                asked.unwrap_or_else(|| ctx.policy.backoff.delay(slot.attempts, &mut rand::rng()));
            wait = wait.max(w);
            if throttled {
                said = said.max(scope);
                throttled_rows += 1;
                slot.throttled += 1;
                throttled_wait = Some(throttled_wait.unwrap_or_default().max(w));
            }
            slot.request_id = crate::core::ids::new_id();
        }
        slot.last = Some(attempt);
        slot.verdict = Some(verdict);
    }
    let lanes = ctx.pacer.lanes();
    let too_large = lanes.batch_answered(customer, slots.len(), throttled_rows, ctx.batch);
    tracing::trace!(
        sent = slots.len(),
        throttled_rows,
        too_large,
        "batch answered"
    );
    match throttled_wait {
        Some(w) if too_large && said != Some(crate::send::lanes::Scope::Partner) => {
            lanes.pause(customer, w)
        }
        Some(w) => {
            ctx.pacer.throttled(Some(customer), w, said);
        }
        None => {}
    }
    Sent { wait }
}

/// A row's share of a batch answer as an answer of its own: its `Retry-After` and rate-limit
/// headers read through the same checked conversions, its message through the redaction point;
/// a read's user object (the target has dropped any password profile).
fn sub_response(answer: RowAnswer, slot: &Slot) -> Response {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &answer.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = http::HeaderValue::from_str(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    let secrets = secrets(std::slice::from_ref(slot));
    Response {
        error_code: answer.error_code,
        message: crate::send::http::sanitize(&answer.message, &secrets),
        user: answer.user,
        ..crate::send::http::answer_from_headers(answer.status, &headers)
    }
}

/// Records the rows whose answer is final (or whose attempts ran out); the rest go again, with
/// the rows whose read says they change, now to be written.
fn settle(slots: Vec<Slot>, scheduler: &Scheduler, ctx: &Context) -> Vec<Slot> {
    let mut going_on = Vec::with_capacity(slots.len());
    for slot in slots {
        let ending = match &slot.verdict {
            Some(Verdict::Retry { .. }) if ctx.stop.is_stopping() => Ending::StoppedBeforeRetry,
            Some(Verdict::Retry { .. } | Verdict::Unauthorized { .. })
                if slot.attempts >= ctx.policy.max_attempts =>
            {
                Ending::Exhausted
            }
            Some(Verdict::Retry { .. }) => {
                going_on.push(slot);
                continue;
            }
            Some(Verdict::Unauthorized { .. }) if !ctx.stop.is_stopping() => {
                going_on.push(slot);
                continue;
            }
            _ => Ending::Finished,
        };
        going_on.extend(finish(slot, ending, scheduler, ctx));
    }
    going_on
}

fn finish_all(slots: Vec<Slot>, ending: Ending, scheduler: &Scheduler, ctx: &Context) {
    for slot in slots {
        let ending = match (&ending, slot.attempts) {
            (_, 0) => Ending::NotAttempted,
            (e, _) => e.clone(),
        };
        // Not finished reading: nothing goes on to a write.
        let _ = finish(slot, ending, scheduler, ctx);
    }
}

/// The row's record, counted and sent, exactly as for a row sent alone; or, when its read
/// says it changes, the row going on to its write.
fn finish(mut slot: Slot, ending: Ending, scheduler: &Scheduler, ctx: &Context) -> Option<Slot> {
    let mut driven = Driven {
        ending,
        attempts: slot.attempts,
        throttled: slot.throttled,
        last: slot.last.take(),
        verdict: slot.verdict.take(),
        request_id: slot.request_id,
    };
    super::count(ctx, slot.op, &driven);
    let customer = slot.row.customer;
    if driven.ending != Ending::NotAttempted {
        ctx.tenants
            .observe(customer, Seen::of(&*ctx.target, &driven));
    }
    let elapsed = slot.first_sent.map_or(Duration::ZERO, |t| t.elapsed());
    let record = match slot.op {
        Op::Read => match batch_reads::read_finished(slot, &driven, elapsed, ctx) {
            Ok(writing) => return Some(writing),
            Err(record) => record.map(|r| *r),
        },
        Op::Write => {
            driven.attempts += slot.read.0;
            driven.throttled += slot.read.1;
            outcome_record(&slot.row, &driven, slot.correlation, elapsed)
        }
    };
    if let Some(record) = record {
        tracing::debug!(
            line = record.line,
            outcome = record.outcome.as_str(),
            attempts = record.attempts,
            "row finished (batch)"
        );
        ctx.results.send(record);
    }
    scheduler.finished(customer);
    None
}
