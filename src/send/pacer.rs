//! The pacer every request waits on: the ceiling (a governor limiter, burst of one), an
//! optional per-customer limit (keyed), the adaptive pace below the ceiling, the pause a
//! partner-wide 429 or a spent quota imposes on every worker, and each customer's lane (its
//! own pace and pause after its own 429s). Uses `core`, `send::pace` and `send::lanes`.
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use uuid::Uuid;

use crate::core::run_state::Stop;
use crate::send::attempt::Attempt;
use crate::send::lanes::{Lanes, Scope};
use crate::send::pace::Quota as Said;

/// Paces requests: the ceiling (a governor limiter, burst of one), an optional per-customer
/// limit (a keyed governor limiter), the adaptive pace below the ceiling, the pause a
/// partner-wide 429 imposes on every worker, and the customers' lanes.
#[derive(Debug)]
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    per_customer: Option<DefaultKeyedRateLimiter<Uuid>>,
    adaptive: Arc<crate::send::pace::Controller>,
    paused_until: Mutex<Option<Instant>>,
    lanes: Lanes,
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
            lanes: Lanes::new(per_customer.map(|i| 1.0 / i.as_secs_f64())),
        }
    }

    /// The pacer of a run or listing: `--rate`, `--per-customer-rate`, and whether the target
    /// throttles per tenant only. The target's documented write rate per tenant is where each
    /// tenant's pace starts when the requests `write` (an audit or a listing only reads, under
    /// the API's far higher read limits).
    pub fn for_settings(settings: &crate::settings::Settings, write: bool) -> Pacer {
        let mut pacer = Pacer::with_limits(
            settings.rate.interval(),
            settings.per_customer_rate.and_then(|r| r.interval()),
        );
        if settings.target.throttles_per_tenant() {
            // Each tenant starts at the rate given for it (`unlimited`: none), else at the
            // API's documented one.
            let start = match settings.per_customer_rate {
                Some(rate) => rate.interval().map(|i| 1.0 / i.as_secs_f64()),
                None if write => settings.target.documented_tenant_rate(),
                None => None,
            };
            pacer.lanes.set_per_tenant(start);
        }
        pacer
    }

    /// How the run is paced now; `recent` limits the customers' paces to those answered in the
    /// last few seconds (for the progress display: customers that finished drop out).
    pub fn now(&self, recent: bool) -> crate::core::run_state::PaceNow {
        let within = recent.then_some(Duration::from_secs(5));
        let (customers_paced, slowest) = self.lanes.slowest(within);
        crate::core::run_state::PaceNow {
            pool: self.adaptive.adapted(),
            customers_paced,
            slowest,
        }
    }

    /// The customers' lanes (for the scheduler and the progress display).
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }

    /// Feeds an answer from `customer` to the paces (a 429 goes to `throttled` as well).
    pub fn observe(&self, attempt: &Attempt, customer: Option<Uuid>) {
        let Attempt::Response(r) = attempt else {
            return;
        };
        if r.status != 429 {
            self.adaptive.on_success();
            if let Some(customer) = customer {
                self.lanes.on_success(customer);
            }
        }
        match (r.quota, customer) {
            // Graph's share used is per app and tenant: that customer's lane slows down.
            (Some(used @ Said::Used { .. }), Some(customer)) => {
                self.lanes.on_quota_used(customer, used)
            }
            (Some(quota), _) => {
                if let Some(wait) = self.adaptive.on_quota(quota) {
                    // The quota is spent: a request now would only be answered 429.
                    self.pause_for(wait);
                }
            }
            (None, _) => {}
        }
    }

    /// A 429 from `customer`, whose row retries after `wait`: the customer's lane slows down
    /// and pauses, or, when the server `said` so, 429s from several customers show the
    /// partner's limit, or no customer is known, every worker does.
    pub fn throttled(&self, customer: Option<Uuid>, wait: Duration, said: Option<Scope>) -> Scope {
        let scope = match customer {
            Some(customer) => self.lanes.on_throttle(customer, wait, said),
            None => Scope::Partner,
        };
        if scope == Scope::Partner {
            self.adaptive.on_throttle(wait);
            self.pause_for(wait);
            self.lanes
                .partner_paused(crate::core::checked::after(Instant::now(), wait));
        }
        scope
    }

    /// Waits for this worker's turn to send (to `customer`, when per-customer limits apply);
    /// false when the run is stopping instead.
    pub async fn ready(&self, stop: &Stop, customer: Option<Uuid>) -> bool {
        loop {
            if stop.is_stopping() {
                return false;
            }
            let lane_pause = customer.and_then(|c| self.lanes.paused_until(c));
            if let Some(until) = self.paused_until().max(lane_pause) {
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
            if let Some(slot) = customer.and_then(|c| self.lanes.reserve(c)) {
                tokio::select! {
                    _ = tokio::time::sleep_until(slot) => {}
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
            let lane_pause = customer.and_then(|c| self.lanes.paused_until(c));
            if self.paused_until().is_none() && lane_pause.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Graph's writes start each tenant at its documented 20/s; its reads (an audit, a
    /// listing) and Partner Center's requests start unpaced per tenant; `--per-customer-rate`
    /// replaces the start, and `unlimited` removes it.
    #[tokio::test(start_paused = true)]
    async fn a_graph_tenant_starts_at_the_documented_write_rate_only_for_writes() {
        let gap = |pacer: &Pacer| {
            let c = Uuid::from_u128(7);
            let first = pacer.lanes().reserve(c);
            let second = pacer.lanes().reserve(c)?;
            Some(second - first.unwrap_or_else(Instant::now))
        };
        let mut graph = crate::settings::Settings::with_defaults("in.csv");
        graph.target = crate::targets::choose("graph").unwrap();
        assert_eq!(
            gap(&Pacer::for_settings(&graph, true)),
            Some(Duration::from_millis(50))
        );
        assert_eq!(gap(&Pacer::for_settings(&graph, false)), None);
        let partner_center = crate::settings::Settings::with_defaults("in.csv");
        assert_eq!(gap(&Pacer::for_settings(&partner_center, true)), None);
        graph.per_customer_rate = Some(crate::settings::Rate::PerSecond(40.0));
        let gap_40 = gap(&Pacer::for_settings(&graph, true));
        // At the per-customer ceiling the keyed limiter paces, not the lane.
        assert_eq!(gap_40, None);
        graph.per_customer_rate = Some(crate::settings::Rate::Unlimited);
        assert_eq!(gap(&Pacer::for_settings(&graph, true)), None);
    }
}
