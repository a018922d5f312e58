//! The check a row passes before anything is sent for it when it changes a password: whether
//! its user holds an administrative role (read from the API through the same pacer and
//! retries). The check itself is given by the orchestration (`app::protect`); this module
//! says what the pool asks and what it may hear back. Uses `input`.

use std::future::Future;
use std::pin::Pin;

use crate::input::rows::Row;

/// What the check found for a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// The row may go on.
    Allow,
    /// The row is not changed: why (the role held).
    Protected(String),
    /// The roles could not be read: the row is not changed (a password reset of an
    /// administrator cannot be ruled out), recorded failed with the answer.
    Unknown {
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    /// The run is stopping: nothing recorded for the row.
    Stopped,
}

/// A check the pool runs before a password row is sent.
pub trait Guard: Send + Sync {
    /// Whether `row` needs the check at all (it changes a password).
    fn applies(&self, row: &Row) -> bool {
        row.changes.password.is_some()
    }

    fn check<'a>(&'a self, row: &'a Row) -> Pin<Box<dyn Future<Output = Guarded> + Send + 'a>>;
}
