//! The pacer every request waits on: the ceiling (a governor limiter, burst of one), an
//! optional per-customer limit (keyed), the adaptive pace below the ceiling, and the pause a
//! 429 or a spent quota imposes on every worker. Uses `core` and `send::pace`.
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use uuid::Uuid;

use crate::core::run_state::Stop;
use crate::send::attempt::Attempt;

/// Paces requests: the ceiling (a governor limiter, burst of one), an optional per-customer
/// limit (a keyed governor limiter), the adaptive pace below the ceiling, and the pause a 429
/// imposes on every worker.
#[derive(Debug)]
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    per_customer: Option<DefaultKeyedRateLimiter<Uuid>>,
    adaptive: Arc<crate::send::pace::Controller>,
    paused_until: Mutex<Option<Instant>>,
}

fn smooth_quota(every: Duration) -> Quota {
    Quota::with_period(every.max(Duration::from_nanos(1)))
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::MIN)
}

impl Pacer {
    /// A pacer sending one request per `interval` at most, or unpaced when None.
    pub fn new(interval: Option<Duration>) -> Pacer {
        Pacer::with_limits(interval, None)
    }

    /// A pacer with a ceiling and, optionally, a per-customer interval.
    pub fn with_limits(interval: Option<Duration>, per_customer: Option<Duration>) -> Pacer {
        Pacer {
            limiter: interval.map(|every| RateLimiter::direct(smooth_quota(every))),
            per_customer: per_customer.map(|every| RateLimiter::keyed(smooth_quota(every))),
            adaptive: Arc::new(crate::send::pace::Controller::new(
                interval.map(|i| 1.0 / i.as_secs_f64()),
            )),
            paused_until: Mutex::new(None),
        }
    }

    /// The adaptive controller (for the progress display and the summary).
    pub fn controller(&self) -> Arc<crate::send::pace::Controller> {
        self.adaptive.clone()
    }

    /// Feeds an attempt's answer to the adaptive pace.
    pub fn observe(&self, attempt: &Attempt) {
        if let Attempt::Response(r) = attempt {
            if r.status == 429 {
                self.adaptive
                    .on_throttle(r.retry_after.unwrap_or(Duration::ZERO));
            } else {
                self.adaptive.on_success();
            }
            if let Some(wait) = r.quota.and_then(|q| self.adaptive.on_quota(q)) {
                // The quota is spent: a request now would only be answered 429.
                self.pause_for(wait);
            }
        }
    }

    /// Waits for this worker's turn to send (to `customer`, when per-customer limits apply);
    /// false when the run is stopping instead.
    pub async fn ready(&self, stop: &Stop, customer: Option<Uuid>) -> bool {
        loop {
            if stop.is_stopping() {
                return false;
            }
            if let Some(until) = self.paused_until() {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = stop.stopping() => return false,
                }
                continue;
            }
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    _ = limiter.until_ready() => {}
                    _ = stop.stopping() => return false,
                }
            }
            if let (Some(keyed), Some(customer)) = (&self.per_customer, customer) {
                tokio::select! {
                    _ = keyed.until_key_ready(&customer) => {}
                    _ = stop.stopping() => return false,
                }
            }
            if let Some(slot) = self.adaptive.reserve() {
                tokio::select! {
                    _ = tokio::time::sleep_until(slot) => {}
                    _ = stop.stopping() => return false,
                }
            }
            // A 429 may have arrived while this worker waited for the limiter.
            if self.paused_until().is_none() {
                return true;
            }
        }
    }

    /// Pauses every worker for `wait` from now (a longer pause already set is kept).
    pub fn pause_for(&self, wait: Duration) {
        let until = crate::core::checked::after(Instant::now(), wait);
        let mut guard = self.paused_until.lock().expect("pause lock");
        if guard.is_none_or(|u| u < until) {
            *guard = Some(until);
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        let guard = self.paused_until.lock().expect("pause lock");
        guard.filter(|u| *u > Instant::now())
    }
}
