//! Notices a run where nothing connects (DNS failure, connection refused, TLS failure) before
//! any answer came back, so that the run stops after a few attempts instead of spending every
//! attempt of every row. Uses the client's `Attempt` and the pool's `StopReason`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::core::run_state::StopReason;
use crate::send::attempt::Attempt;

/// Failed connection attempts, with no answer ever, after which the run stops. Requests
/// already in flight (up to the concurrency less one) may still add theirs.
pub const NOTHING_CONNECTS_AFTER: u32 = 3;

/// Whether the API has been reached at all in this run.
#[derive(Debug)]
pub struct Reach {
    host: String,
    answered: AtomicBool,
    failures: AtomicU32,
}

impl Reach {
    /// Watches the connections to `host` (the base URL's host, named in the stop's message).
    pub fn new(host: &str) -> Reach {
        Reach {
            host: host.to_string(),
            answered: AtomicBool::new(false),
            failures: AtomicU32::new(0),
        }
    }

    /// Counts an attempt; the stop reason when it is the attempt that shows nothing connects.
    /// Once any answer has come back (whatever its status), it never stops the run: a network
    /// that failed later is the retries' business.
    pub fn observe(&self, attempt: &Attempt) -> Option<StopReason> {
        match attempt {
            Attempt::Response(_) => {
                self.answered.store(true, Ordering::Relaxed);
                None
            }
            Attempt::Connection(error) if is_connect_failure(error) => {
                if self.answered.load(Ordering::Relaxed) {
                    return None;
                }
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                (n == NOTHING_CONNECTS_AFTER).then(|| StopReason::NothingConnects {
                    host: self.host.clone(),
                    attempts: n,
                    error: error.clone(),
                })
            }
            // A timeout or a dropped connection: something was reached.
            _ => None,
        }
    }
}

/// The client words a failure to open a connection (DNS, refused, TLS handshake, connect
/// timeout) as "cannot connect: ..."; a connection dropped after it opened differs.
fn is_connect_failure(message: &str) -> bool {
    message.starts_with("cannot connect")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_on_the_third_failure_unless_something_answered() {
        let refused = Attempt::Connection("cannot connect: Connection refused".into());
        let reach = Reach::new("api.example");
        assert_eq!(reach.observe(&refused), None);
        assert_eq!(reach.observe(&Attempt::Timeout), None);
        assert_eq!(reach.observe(&refused), None);
        let stop = reach.observe(&refused).expect("the third failure stops");
        let text = stop.to_string();
        assert!(
            text.contains("api.example") && text.contains("Connection refused"),
            "{text}"
        );
        assert_eq!(reach.observe(&refused), None, "stops once");

        let reach = Reach::new("api.example");
        let dropped = Attempt::Connection("connection failed: reset".into());
        for _ in 0..5 {
            assert_eq!(reach.observe(&dropped), None);
        }
    }
}
