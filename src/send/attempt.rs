//! What one request attempt produced: an answer (its status, Retry-After, error code and a
//! short message, never a body that may hold a secret), a timeout, or a failed connection.
//! Uses nothing else of the crate but `send::pace` (the quota an answer announces).

use std::time::Duration;

/// What one attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// The server answered (any status).
    Response(Response),
    /// No answer within the request timeout.
    Timeout,
    /// The connection failed or was dropped before an answer arrived.
    Connection(String),
}

impl Attempt {
    /// Whether an answer arrived (the next attempt then needs a new MS-RequestId).
    pub fn got_response(&self) -> bool {
        matches!(self, Attempt::Response(_))
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Response(r) => Some(r.status),
            _ => None,
        }
    }
}

/// The parts of an HTTP answer the tool records.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The wait the server asked for (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
    /// The target's error code (Partner Center's numbers as text, Graph's names), when the body had one.
    pub error_code: Option<String>,
    /// A short, single-line, secret-free message (empty on success).
    pub message: String,
    /// The user's fields, for a successful GET (never kept for a PATCH: it may echo a password).
    pub user: Option<serde_json::Map<String, serde_json::Value>>,
    /// What rate-limit headers said remains, if the server sent any.
    pub quota: Option<crate::send::pace::Quota>,
    /// Which limit a 429 hit, when the server said (Graph's `x-ms-throttle-scope`).
    pub throttle_scope: Option<crate::send::lanes::Scope>,
}
