//! `--max-changes` counted after reading (`--skip-unchanged`, `--undo-file`): a row that would
//! change is held back, not written, until every row has been read. More held rows than the
//! limit stop the run with nothing written; otherwise the held rows are written in a second
//! pass, without reading them again. Memory: at most the limit, plus one, rows. Uses `input`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::input::rows::Row;

/// The rows held back until every row has been read.
#[derive(Debug)]
pub struct Gate {
    limit: u64,
    held: Mutex<Vec<Row>>,
    open: AtomicBool,
}

impl Gate {
    pub fn new(limit: u64) -> Gate {
        Gate {
            limit,
            held: Mutex::new(Vec::new()),
            open: AtomicBool::new(false),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether every row has been read: rows now go straight to their write.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Holds a row that would change; false when that makes more rows than the limit (the row
    /// is not kept: the run stops).
    pub fn hold(&self, row: Row) -> bool {
        let mut held = self.held.lock().expect("gate lock");
        if held.len() as u64 >= self.limit {
            return false;
        }
        held.push(row);
        true
    }

    /// Opens the gate: the rows held, to be written.
    pub fn open(&self) -> Vec<Row> {
        self.open.store(true, Ordering::Release);
        std::mem::take(&mut *self.held.lock().expect("gate lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64) -> Row {
        Row {
            line: n,
            customer: uuid::Uuid::nil(),
            user: uuid::Uuid::from_u128(u128::from(n)),
            changes: Default::default(),
            hash: n,
            context: Default::default(),
        }
    }

    #[test]
    fn rows_are_held_up_to_the_limit_and_released_when_opened() {
        let gate = Gate::new(2);
        assert!(gate.hold(row(1)) && gate.hold(row(2)));
        assert!(!gate.hold(row(3)), "a third is over the limit");
        assert!(!gate.is_open());
        let released: Vec<u64> = gate.open().iter().map(|r| r.line).collect();
        assert_eq!(released, [1, 2]);
        assert!(gate.is_open());
    }
}
