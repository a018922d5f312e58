//! Adapts the request rate to what the API accepts: backs off on a 429 to just under the rate that was succeeding, probes back up while requests succeed, and slows down before a 429 when the server sends rate-limit headers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The window over which the success rate is measured.
const WINDOW: Duration = Duration::from_secs(2);
/// After a decrease, 429s until the pause has passed and this much more belong to the same
/// congestion.
const HOLD: Duration = Duration::from_millis(500);
/// Probing: every this long without a 429, the pace rises by `INCREASE`.
const INCREASE_EVERY: Duration = Duration::from_secs(2);
const INCREASE: f64 = 1.01;
/// A 429 sets the pace to this share of the success rate measured just before it.
const BACKOFF: f64 = 0.95;
/// The shortest span a success rate is measured over (the first 429 can come within ms).
const MIN_SPAN: Duration = Duration::from_millis(250);
/// The pace never goes below this (requests per second).
const MIN_RATE: f64 = 0.2;

/// A hint from rate-limit headers: `remaining` requests allowed in the next `reset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    pub remaining: f64,
    pub reset: Duration,
}

#[derive(Debug)]
struct State {
    ceiling: Option<f64>,
    /// The adaptive pace; None while running at the ceiling.
    pace: Option<f64>,
    successes: VecDeque<Instant>,
    /// 429s before this instant belong to the congestion already answered.
    hold_until: Option<Instant>,
    last_increase: Instant,
    next_slot: Instant,
}

/// The shared rate controller of a run.
#[derive(Debug)]
pub struct Controller {
    state: Mutex<State>,
}

impl Controller {
    /// `ceiling` is `--rate` in requests per second (None: unlimited).
    pub fn new(ceiling: Option<f64>) -> Controller {
        let now = Instant::now();
        Controller {
            state: Mutex::new(State {
                ceiling,
                pace: None,
                successes: VecDeque::new(),
                hold_until: None,
                last_increase: now,
                next_slot: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("rate controller lock")
    }

    /// The pace now, in requests per second (None: unlimited).
    pub fn rate(&self) -> Option<f64> {
        let s = self.lock();
        s.pace.or(s.ceiling)
    }

    /// Reserves the next send slot of the adaptive pace; None when not pacing below the ceiling
    /// (the ceiling's own limiter paces then).
    pub fn reserve(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut s = self.lock();
        let pace = s.pace?;
        let slot = s.next_slot.max(now);
        s.next_slot = slot + Duration::from_secs_f64(1.0 / pace);
        Some(slot)
    }

    /// A request succeeded (any answer but a 429): counts toward the measured rate, and probes
    /// the pace up after a clean interval.
    pub fn on_success(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        s.successes.push_back(now);
        while s.successes.front().is_some_and(|t| now - *t > WINDOW) {
            s.successes.pop_front();
        }
        let Some(pace) = s.pace else { return };
        let calm = s.hold_until.is_none_or(|h| now >= h);
        if calm && now - s.last_increase >= INCREASE_EVERY {
            s.last_increase = now;
            let up = pace * INCREASE;
            s.pace = match s.ceiling {
                Some(c) if up >= c => None,
                _ => Some(up),
            };
        }
    }

    /// A 429: the pace drops to just under the rate that was succeeding (once per congestion).
    pub fn on_throttle(&self, pause: Duration) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.hold_until.is_some_and(|h| now < h) {
            return;
        }
        while s.successes.front().is_some_and(|t| now - *t > WINDOW) {
            s.successes.pop_front();
        }
        // The successes of the window, over the time they span (at least MIN_SPAN).
        let span = s
            .successes
            .front()
            .map_or(WINDOW, |first| (now - *first).max(MIN_SPAN));
        let succeeding = s.successes.len() as f64 / span.as_secs_f64();
        let current = s.pace.or(s.ceiling).unwrap_or(f64::INFINITY);
        let target = (succeeding * BACKOFF).min(current * BACKOFF).max(MIN_RATE);
        s.pace = Some(target);
        s.hold_until = Some(now + pause + HOLD);
        s.last_increase = now;
        tracing::debug!(rate = format!("{target:.2}/s"), "429: slowing down");
    }

    /// Rate-limit headers: never plan to send faster than what remains until the reset.
    pub fn on_quota(&self, quota: Quota) {
        let mut s = self.lock();
        let allowed = (quota.remaining / quota.reset.as_secs_f64().max(0.001)).max(MIN_RATE);
        let current = s.pace.or(s.ceiling).unwrap_or(f64::INFINITY);
        if allowed < current {
            s.pace = Some(allowed);
            s.last_increase = Instant::now();
        }
    }
}

/// Reads the rate-limit headers servers send: IETF `RateLimit-Remaining`/`RateLimit-Reset`
/// (or `RateLimit: ..., r=, t=`), Okta-style `X-Rate-Limit-Remaining`/`X-Rate-Limit-Reset`
/// (an epoch time), and Graph's `x-ms-throttle-limit-percentage` (share of the limit used).
pub fn quota_from_headers(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Quota> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let num = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok());
    if let (Some(remaining), Some(reset)) = (num("ratelimit-remaining"), num("ratelimit-reset")) {
        return Some(Quota {
            remaining,
            reset: Duration::from_secs_f64(reset.max(0.0)),
        });
    }
    if let Some(combined) = get("ratelimit") {
        // draft-ietf-httpapi-ratelimit-headers: `"policy";r=5;t=1`
        let field = |key: &str| {
            combined
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim() == key)
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        };
        if let (Some(remaining), Some(reset)) = (field("r"), field("t")) {
            return Some(Quota {
                remaining,
                reset: Duration::from_secs_f64(reset.max(0.0)),
            });
        }
    }
    if let (Some(remaining), Some(reset_at)) =
        (num("x-rate-limit-remaining"), num("x-rate-limit-reset"))
    {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        return Some(Quota {
            remaining,
            reset: Duration::from_secs_f64((reset_at - now).max(0.0)),
        });
    }
    if let Some(used) = num("x-ms-throttle-limit-percentage") {
        // Graph sends this once 80% of the limit is used: keep a fifth of the pace per 4% above.
        if used >= 80.0 {
            return Some(Quota {
                remaining: (100.0 - used).max(1.0),
                reset: Duration::from_secs(5),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn successes(c: &Controller, per_second: u32, seconds: u32) {
        for _ in 0..per_second * seconds {
            tokio::time::advance(Duration::from_secs(1) / per_second).await;
            c.on_success();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_sets_the_pace_just_under_the_rate_that_was_succeeding() {
        let c = Controller::new(Some(200.0));
        assert_eq!(c.rate(), Some(200.0));
        assert_eq!(c.reserve(), None, "at the ceiling the governor paces");
        successes(&c, 20, 2).await;
        c.on_throttle(Duration::from_secs(1));
        let rate = c.rate().unwrap();
        assert!((18.5..19.5).contains(&rate), "{rate}");
        // More 429s of the same congestion (during its pause) do not cut further.
        tokio::time::advance(Duration::from_millis(900)).await;
        c.on_throttle(Duration::from_secs(1));
        c.on_throttle(Duration::from_secs(1));
        assert_eq!(c.rate().unwrap(), rate);
        // Slots are spaced at the new pace.
        let a = c.reserve().unwrap();
        let b = c.reserve().unwrap();
        assert_eq!(b - a, Duration::from_secs_f64(1.0 / rate));
    }

    #[tokio::test(start_paused = true)]
    async fn clean_running_probes_back_up_to_the_ceiling() {
        let c = Controller::new(Some(25.0));
        successes(&c, 20, 2).await;
        c.on_throttle(Duration::from_secs(1));
        let low = c.rate().unwrap();
        successes(&c, 18, 11).await;
        let probed = c.rate().unwrap();
        assert!(
            probed > low * 1.03 && probed < low * 1.06,
            "{low} -> {probed}"
        );
        successes(&c, 18, 120).await;
        assert_eq!(c.rate(), Some(25.0), "back at the ceiling");
        assert_eq!(c.reserve(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_runs_get_a_pace_only_after_a_429() {
        let c = Controller::new(None);
        assert_eq!(c.rate(), None);
        successes(&c, 100, 2).await;
        c.on_throttle(Duration::ZERO);
        let rate = c.rate().unwrap();
        assert!((90.0..100.0).contains(&rate), "{rate}");
        // A new congestion after the hold cuts again, from what succeeds now.
        tokio::time::advance(Duration::from_secs(1)).await;
        successes(&c, 40, 2).await;
        c.on_throttle(Duration::ZERO);
        let rate = c.rate().unwrap();
        assert!((36.0..40.0).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_headers_slow_down_before_a_429() {
        let c = Controller::new(Some(100.0));
        c.on_quota(Quota {
            remaining: 10.0,
            reset: Duration::from_secs(2),
        });
        assert_eq!(c.rate(), Some(5.0));
        // A looser quota does not speed up past what the controller has.
        c.on_quota(Quota {
            remaining: 1000.0,
            reset: Duration::from_secs(1),
        });
        assert_eq!(c.rate(), Some(5.0));
    }

    #[test]
    fn rate_limit_header_dialects() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        let map = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let q = |pairs| quota_from_headers(&map(pairs), now);
        assert_eq!(
            q(&[("ratelimit-remaining", "4"), ("ratelimit-reset", "2")]),
            Some(Quota {
                remaining: 4.0,
                reset: Duration::from_secs(2)
            })
        );
        assert_eq!(
            q(&[("ratelimit", "\"default\";r=3;t=1")]),
            Some(Quota {
                remaining: 3.0,
                reset: Duration::from_secs(1)
            })
        );
        assert_eq!(
            q(&[
                ("x-rate-limit-remaining", "50"),
                ("x-rate-limit-reset", "1010")
            ]),
            Some(Quota {
                remaining: 50.0,
                reset: Duration::from_secs(10)
            })
        );
        assert!(q(&[("x-ms-throttle-limit-percentage", "90")]).is_some());
        assert_eq!(q(&[("x-ms-throttle-limit-percentage", "50")]), None);
        assert_eq!(q(&[]), None);
    }
}
