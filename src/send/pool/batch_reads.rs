//! Reads in batches (`--batch N` with an audit, `--skip-unchanged` or `--undo-file`): a row
//! read in a batch of GETs ends here, as a row read alone would (`pool::after_read`): its
//! audit record, an unchanged or unreadable row's record, or, when it changes, the row going
//! on to its write in a later batch of PATCHes, its read's attempts counted in its record and
//! a write of its own (new request id, `--max-attempts` anew, the same correlation id). Part
//! of the pool's batches (`pool::batch`); uses `targets` and the rest of `send`.

use std::time::Duration;

use super::batch::Slot;
use super::{after_read, AfterRead, Context};
use crate::output::results::Record;
use crate::send::retry::Driven;
use crate::targets::Op;

/// What the next request of a customer's batch does: the writes of rows already read go before
/// more rows are read, so each row's write follows its read closely.
pub(super) fn next_op(slots: &[Slot], start: Op) -> Op {
    if slots.iter().any(|s| s.op == Op::Write) {
        Op::Write
    } else {
        start
    }
}

/// A row whose read ended (`read`, its attempts as counted): the row, now to be written, or
/// its record (None: nothing to record).
pub(super) fn read_finished(
    mut slot: Slot,
    read: &Driven,
    elapsed: Duration,
    ctx: &Context,
) -> Result<Slot, Option<Box<Record>>> {
    match after_read(ctx, &slot.row, read, slot.correlation, elapsed) {
        AfterRead::Done(record) => Err(record),
        AfterRead::Write => {
            slot.op = Op::Write;
            slot.read = (read.attempts, read.throttled);
            slot.attempts = 0;
            slot.throttled = 0;
            slot.last = None;
            slot.verdict = None;
            slot.request_id = crate::core::ids::new_id();
            Ok(slot)
        }
    }
}
