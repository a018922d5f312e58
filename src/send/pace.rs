//! Adapts the request rate to what the API accepts: backs off on a 429 to just under the rate that was succeeding, probes back up while requests succeed, and slows down before a 429 when the server sends rate-limit headers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::core::checked;

/// The window over which the success rate is measured.
const WINDOW: Duration = Duration::from_secs(2);
/// After a decrease, 429s until the pause has passed and this much more belong to the same
/// congestion.
const HOLD: Duration = Duration::from_millis(500);
/// Probing: every this long without a 429, the pace rises by `INCREASE`.
const INCREASE_EVERY: Duration = Duration::from_secs(2);
const INCREASE: f64 = 1.01;
/// A success rate measured over less than this is a guess (the first 429 can come within
/// milliseconds, inside the server's burst): after a cut on such a guess, probing is faster,
/// `FAST_INCREASE` every `FAST_EVERY`, until a 429 measured over a longer span.
const CONFIDENT_SPAN: Duration = Duration::from_secs(1);
const FAST_EVERY: Duration = Duration::from_millis(500);
const FAST_INCREASE: f64 = 1.1;
/// A 429 sets the pace to this share of the success rate measured just before it.
const BACKOFF: f64 = 0.95;
/// A customer's first cut does not go below this share of its announced ceiling, before
/// `BACKOFF`.
const LANE_MAX_CUT: f64 = 0.85;
/// The shortest span a success rate is measured over (the first 429 can come within ms).
const MIN_SPAN: Duration = Duration::from_millis(250);
/// The steady pace under an announced policy keeps this margin below its fastest safe rate,
/// for requests that reach the server closer together than they were sent.
const POLICY_MARGIN: f64 = 0.99;
/// The pace never goes below this (requests per second).
const MIN_RATE: f64 = 0.2;

/// What a server's rate-limit headers said.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quota {
    /// `remaining` requests allowed until the quota resets, `reset` from now (IETF, Okta);
    /// `policy` is the long-run rate the server announced (`RateLimit-Policy`), if any.
    Left {
        remaining: f64,
        reset: Duration,
        policy: Option<f64>,
    },
    /// The share of the limit already used, in percent (Graph sends it from 80%).
    Used { percent: f64 },
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
    /// Successes are counted from here: the start, or the end of the last 429's pause.
    measured_from: Instant,
    /// Whether the pace was last cut on a rate measured over too short a span to trust.
    guessed: bool,
    /// The share of the ceiling a lane's first cut may go to, at least (0: any cut).
    max_cut: f64,
    /// A customer's lane: its first cut is always a guess (what succeeded for one customer
    /// among many says little about its own limit), and its ceiling bounds the cut as a
    /// learned pace would.
    lane: bool,
    /// Cuts made so far.
    cuts: u32,
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
                measured_from: now,
                guessed: false,
                max_cut: 0.0,
                lane: false,
                cuts: 0,
            }),
        }
    }

    /// A controller for one customer, created at its first 429: `successes` are the times of
    /// the customer's recent answers, remembered since `since`, so its first cut starts from
    /// the rate it was getting, not from nothing.
    pub fn seeded(ceiling: Option<f64>, successes: Vec<Instant>, since: Instant) -> Controller {
        let c = Controller::new(ceiling);
        {
            let mut s = c.lock();
            s.successes = successes.into();
            s.measured_from = since.min(s.measured_from);
            s.max_cut = LANE_MAX_CUT;
            s.lane = true;
        }
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("rate controller lock")
    }

    /// The pace now, in requests per second (None: unlimited).
    pub fn rate(&self) -> Option<f64> {
        let s = self.lock();
        s.pace.or(s.ceiling)
    }

    /// The adaptive pace, when it is below the ceiling (None at the ceiling).
    pub fn adapted(&self) -> Option<f64> {
        self.lock().pace
    }

    /// Puts the adaptive pace back to `pace` (a cut taken back); the next cut starts afresh.
    pub fn set_adapted(&self, pace: Option<f64>) {
        let mut s = self.lock();
        s.pace = pace.map(|p| match s.ceiling {
            Some(c) => p.min(c),
            None => p,
        });
        s.hold_until = None;
        s.cuts = s.cuts.saturating_sub(1);
    }

    /// Starts pacing at `pace` (a lane's documented limit), below the ceiling; probing up
    /// from there as after a cut measured long enough to trust.
    pub fn start_at(&self, pace: f64) {
        let mut s = self.lock();
        if s.ceiling.is_none_or(|c| pace < c) {
            s.pace = Some(pace.max(MIN_RATE));
            s.last_increase = Instant::now();
            s.guessed = false;
        }
    }

    /// Reserves the next send slot of the adaptive pace; None when not pacing below the ceiling
    /// (the ceiling's own limiter paces then).
    pub fn reserve(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut s = self.lock();
        let pace = s.pace?;
        let slot = s.next_slot.max(now);
        s.next_slot = checked::after(slot, checked::interval_for_rate(pace));
        Some(slot)
    }

    /// Successes are counted from `at` (when everyone was paused until then: that time is no
    /// time of failing to succeed).
    pub fn measure_from(&self, at: Instant) {
        let mut s = self.lock();
        s.measured_from = s.measured_from.max(at);
    }

    /// The next free send slot of the adaptive pace, without taking it; None when not pacing
    /// below the ceiling.
    pub fn next_slot(&self) -> Option<Instant> {
        let s = self.lock();
        s.pace.map(|_| s.next_slot)
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
        let (every, increase) = if s.guessed {
            (FAST_EVERY, FAST_INCREASE)
        } else {
            (INCREASE_EVERY, INCREASE)
        };
        if calm && now - s.last_increase >= every {
            s.last_increase = now;
            let up = pace * increase;
            s.pace = match s.ceiling {
                Some(c) if up >= c => None,
                _ => Some(up),
            };
        }
    }

    /// A 429: the pace drops to just under the rate that was succeeding (once per congestion).
    pub fn on_throttle(&self, pause: Duration) {
        self.back_off(pause, "429");
    }

    fn back_off(&self, pause: Duration, why: &str) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.hold_until.is_some_and(|h| now < h) {
            return;
        }
        while s.successes.front().is_some_and(|t| now - *t > WINDOW) {
            s.successes.pop_front();
        }
        // The successes since the measurement began (within the window), over that span: a
        // pause is not counted as a time of no successes.
        let from = now
            .checked_sub(WINDOW)
            .map_or(s.measured_from, |w| w.max(s.measured_from));
        let measured = now.saturating_duration_since(from);
        let count = s.successes.iter().rev().take_while(|t| **t >= from).count();
        let succeeding = count as f64 / measured.max(MIN_SPAN).as_secs_f64();
        s.guessed = measured < CONFIDENT_SPAN || (s.lane && s.cuts == 0);
        let resumed = checked::after(now, pause);
        s.measured_from = resumed;
        if measured < CONFIDENT_SPAN && count < 2 {
            // Nothing to go by (a customer's first request, say): the pause alone answers it.
            s.hold_until = Some(checked::after(resumed, HOLD));
            return;
        }
        let current = s.pace.or(s.ceiling).unwrap_or(f64::INFINITY);
        // A customer's learned pace is cut by at most `LANE_MAX_CUT` per congestion: what
        // succeeded for it may have been held down by the partner-wide pace or its share.
        // A customer's first cut is bounded by its announced ceiling (`--per-customer-rate`):
        // what succeeded for it was shaped by the other customers too.
        let floor = match (s.lane, s.cuts, s.ceiling) {
            (true, 0, Some(ceiling)) => ceiling * s.max_cut,
            _ => 0.0,
        };
        s.cuts = s.cuts.saturating_add(1);
        let target = (succeeding.max(floor) * BACKOFF)
            .min(current * BACKOFF)
            .max(MIN_RATE);
        s.pace = Some(target);
        s.hold_until = Some(checked::after(resumed, HOLD));
        s.last_increase = now;
        tracing::debug!(
            rate = format!("{target:.2}/s"),
            measured_ms = measured.as_millis() as u64,
            "{why}: slowing down"
        );
    }

    /// Rate-limit headers, the server's own word on its quota. With requests left, the pace
    /// becomes the one that spends them by the reset (up or down, never above the ceiling), or
    /// the announced policy's steady rate when that is faster: a reset in whole seconds
    /// (the standard's) would otherwise leave part of each short window unused. With none
    /// left, returns how long every request should wait: until the reset, as a 429 would have
    /// said. Graph's share-used header slows down as a 429 would, before there is one.
    pub fn on_quota(&self, quota: Quota) -> Option<Duration> {
        match quota {
            Quota::Left {
                remaining, reset, ..
            } if remaining < 1.0 => {
                Some(checked::clamp(reset, checked::SERVER_PAUSE)).filter(|r| !r.is_zero())
            }
            Quota::Left {
                remaining,
                reset,
                policy,
            } => {
                if !reset.is_zero() {
                    let spend = remaining / reset.as_secs_f64();
                    let steady = policy.unwrap_or(0.0);
                    let allowed = spend.max(steady).max(MIN_RATE);
                    let mut s = self.lock();
                    s.pace = match s.ceiling {
                        Some(c) if allowed >= c => None,
                        _ => Some(allowed),
                    };
                    s.last_increase = Instant::now();
                    s.guessed = false;
                }
                None
            }
            Quota::Used { percent } => {
                if percent >= 80.0 {
                    self.back_off(Duration::ZERO, "rate-limit headers");
                }
                None
            }
        }
    }
}

/// Reads the rate-limit headers servers send: IETF `RateLimit-Remaining`/`RateLimit-Reset`
/// (or `RateLimit: ..., r=, t=`), Okta-style `X-Rate-Limit-Remaining`/`X-Rate-Limit-Reset`
/// (an epoch time), and Graph's `x-ms-throttle-limit-percentage` (share of the limit used).
pub fn quota_from_headers(headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<Quota> {
    // Most answers carry none of them: one pass over the names (lowercase in a HeaderMap)
    // rather than a hashed lookup for each header below.
    let rate_limit_names = ["ratelimit", "x-rate-limit-", "x-ms-throttle-"];
    if !headers
        .keys()
        .any(|k| rate_limit_names.iter().any(|p| k.as_str().starts_with(p)))
    {
        return None;
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let num = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok());
    let policy = get("ratelimit-policy").and_then(policy_rate);
    // Every number goes through the checked conversion: a count or a reset that is not a
    // number makes the header pair unusable; huge, infinite or negative ones are clamped.
    let left = |remaining: f64, reset_secs: f64, policy| {
        Some(Quota::Left {
            remaining: checked::count_from_f64(remaining)?,
            reset: checked::duration_from_secs_f64(reset_secs, checked::SERVER_PAUSE)?,
            policy,
        })
    };
    if let (Some(remaining), Some(reset)) = (num("ratelimit-remaining"), num("ratelimit-reset")) {
        return left(remaining, reset, policy);
    }
    if let Some(combined) = get("ratelimit") {
        // draft-ietf-httpapi-ratelimit-headers: `"policy";r=5;t=1`
        if let (Some(remaining), Some(reset)) = (param(combined, "r"), param(combined, "t")) {
            return left(remaining, reset, policy);
        }
    }
    if let (Some(remaining), Some(reset_at)) =
        (num("x-rate-limit-remaining"), num("x-rate-limit-reset"))
    {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        return left(remaining, reset_at - now, None);
    }
    if let Some(used) = num("x-ms-throttle-limit-percentage").filter(|p| !p.is_nan()) {
        return Some(Quota::Used {
            percent: used.clamp(0.0, 100.0),
        });
    }
    None
}

/// The number after `key=` among the `;`-separated parameters of one header item
/// (`"default";r=5;t=1`).
fn param(item: &str, key: &str) -> Option<f64> {
    item.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
}

/// The steady rate the first policy in `RateLimit-Policy` allows, in requests per second:
/// `100;w=60` (the earlier drafts) or `"default";q=100;w=60` (the later ones). Requests evenly
/// spaced at (q - 1) per window never fill a window, wherever its boundaries fall, so the
/// quota never runs out and no one waits for a reset (given in whole seconds, it is late).
fn policy_rate(value: &str) -> Option<f64> {
    let first = value.split(',').next()?;
    let head = first.split(';').next()?.trim();
    let quota = param(first, "q").or_else(|| head.parse::<f64>().ok());
    let quota = checked::count_from_f64(quota?)?;
    let window = param(first, "w").filter(|w| *w > 0.0)?;
    let window = checked::duration_from_secs_f64(window, checked::SERVER_WINDOW)?;
    (quota > 1.0).then(|| (quota - 1.0) / window.as_secs_f64() * POLICY_MARGIN)
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
    async fn a_429_inside_the_first_burst_is_a_guess_probed_faster() {
        let c = Controller::new(Some(400.0));
        // The server's burst of 5 goes through at once, and the 6th is refused 15 ms in.
        for _ in 0..5 {
            tokio::time::advance(Duration::from_millis(3)).await;
            c.on_success();
        }
        c.on_throttle(Duration::from_secs(1));
        let guess = c.rate().unwrap();
        assert!(
            (18.0..20.0).contains(&guess),
            "5 in a quarter second: {guess}"
        );
        // During the pause and the hold nothing changes; then +5% every half second.
        tokio::time::advance(Duration::from_millis(1500)).await;
        successes(&c, 20, 4).await;
        let probed = c.rate().unwrap();
        let expected = guess * FAST_INCREASE.powi(8);
        assert!(
            (expected * 0.95..expected * 1.05).contains(&probed),
            "{guess} -> {probed}, expected about {expected}"
        );
        // A 429 measured over seconds is trusted: back to slow probing.
        c.on_throttle(Duration::from_secs(1));
        let measured = c.rate().unwrap();
        assert!((18.0..20.0).contains(&measured), "{measured}");
        tokio::time::advance(Duration::from_millis(1500)).await;
        successes(&c, 19, 4).await;
        let probed = c.rate().unwrap();
        assert!(
            probed <= measured * INCREASE * INCREASE + 1e-9,
            "{measured} -> {probed}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_nothing_measured_only_pauses() {
        let c = Controller::new(Some(50.0));
        tokio::time::advance(Duration::from_millis(40)).await;
        c.on_throttle(Duration::from_secs(1));
        assert_eq!(
            c.adapted(),
            None,
            "no success to go by: no cut to the minimum"
        );
        // With successes to measure, the next congestion cuts.
        tokio::time::advance(Duration::from_millis(1500)).await;
        successes(&c, 10, 2).await;
        c.on_throttle(Duration::from_secs(1));
        assert!(c.adapted().is_some_and(|r| (9.0..10.0).contains(&r)));
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
    async fn rate_limit_headers_set_the_pace_that_lasts_until_the_reset() {
        let c = Controller::new(Some(100.0));
        let left = |remaining: f64, secs: u64| Quota::Left {
            remaining,
            reset: Duration::from_secs(secs),
            policy: None,
        };
        assert_eq!(c.on_quota(left(10.0, 2)), None);
        assert_eq!(c.rate(), Some(5.0));
        // A new window with more left: faster again, up to the ceiling and no further.
        assert_eq!(c.on_quota(left(60.0, 2)), None);
        assert_eq!(c.rate(), Some(30.0));
        assert_eq!(c.on_quota(left(1000.0, 1)), None);
        assert_eq!(c.rate(), Some(100.0));
        assert_eq!(c.reserve(), None, "at the ceiling the governor paces");
        // None left: everyone waits for the reset, and the pace is kept for after it.
        assert_eq!(c.on_quota(left(0.0, 3)), Some(Duration::from_secs(3)));
        assert_eq!(c.rate(), Some(100.0));
        assert_eq!(c.on_quota(left(0.0, 0)), None, "it resets now");
        // With a policy of 20 a second, a window's last second, rounded up, does not slow it
        // to what is left.
        let with_policy = |remaining: f64| Quota::Left {
            remaining,
            reset: Duration::from_secs(1),
            policy: Some(20.0),
        };
        assert_eq!(c.on_quota(with_policy(3.0)), None);
        assert_eq!(c.rate(), Some(20.0));
        assert_eq!(c.on_quota(with_policy(50.0)), None);
        assert_eq!(c.rate(), Some(50.0));
    }

    #[tokio::test(start_paused = true)]
    async fn graph_share_used_slows_down_like_a_429() {
        let c = Controller::new(Some(100.0));
        successes(&c, 40, 2).await;
        assert_eq!(c.on_quota(Quota::Used { percent: 50.0 }), None);
        assert_eq!(c.rate(), Some(100.0), "below 80% used is no warning");
        assert_eq!(c.on_quota(Quota::Used { percent: 85.0 }), None);
        let rate = c.rate().unwrap();
        assert!((36.0..40.0).contains(&rate), "{rate}");
    }

    /// `RateLimit-Remaining: 0` with a reset of 999999999 s (31 years): the whole pool pauses
    /// for the capped 15 minutes, not 31 years; a hostile pace never overflows the clock.
    #[tokio::test(start_paused = true)]
    async fn a_huge_reset_with_nothing_left_pauses_for_the_cap_only() {
        use http::header::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("ratelimit-reset", HeaderValue::from_static("999999999"));
        let pacer = crate::send::pacer::Pacer::new(None);
        let answer = crate::send::attempt::Attempt::Response(crate::send::attempt::Response {
            status: 200,
            retry_after: None,
            error_code: None,
            message: String::new(),
            user: None,
            quota: quota_from_headers(&headers, std::time::SystemTime::now()),
            throttle_scope: None,
        });
        let started = Instant::now();
        pacer.observe(&answer, None);
        let stop = crate::core::run_state::Stop::default();
        assert!(pacer.ready(&stop, None).await);
        assert_eq!(started.elapsed(), crate::core::checked::SERVER_PAUSE.max);

        // A pace from an infinite or tiny rate, a huge 429 pause: no overflow.
        let c = Controller::new(Some(100.0));
        c.on_success();
        c.on_success();
        c.on_throttle(Duration::MAX);
        assert!(c.reserve().is_some());
        let c = Controller::new(None);
        c.on_quota(Quota::Left {
            remaining: f64::INFINITY,
            reset: Duration::from_nanos(1),
            policy: Some(f64::INFINITY),
        });
        c.reserve();
        c.reserve();
        assert_eq!(
            c.on_quota(Quota::Left {
                remaining: 0.0,
                reset: Duration::MAX,
                policy: None
            }),
            Some(crate::core::checked::SERVER_PAUSE.max)
        );
    }

    #[test]
    fn rate_limit_header_dialects() {
        use http::header::{HeaderMap, HeaderValue};
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
            Some(Quota::Left {
                remaining: 4.0,
                reset: Duration::from_secs(2),
                policy: None
            })
        );
        assert_eq!(
            q(&[("ratelimit", "\"default\";r=3;t=1")]),
            Some(Quota::Left {
                remaining: 3.0,
                reset: Duration::from_secs(1),
                policy: None
            })
        );
        assert_eq!(
            q(&[
                ("x-rate-limit-remaining", "50"),
                ("x-rate-limit-reset", "1010")
            ]),
            Some(Quota::Left {
                remaining: 50.0,
                reset: Duration::from_secs(10),
                policy: None
            })
        );
        assert_eq!(
            q(&[("x-ms-throttle-limit-percentage", "90")]),
            Some(Quota::Used { percent: 90.0 })
        );
        for policy in [
            "100;w=60",
            "\"default\";q=100;w=60",
            "100;w=60, 1000;w=3600",
        ] {
            let rate = policy_rate(policy).unwrap();
            assert!(
                (rate - 99.0 / 60.0 * POLICY_MARGIN).abs() < 1e-9,
                "{policy}: {rate}"
            );
        }
        assert_eq!(policy_rate("\"default\";w=60"), None);
        assert_eq!(
            q(&[
                ("ratelimit-remaining", "4"),
                ("ratelimit-reset", "2"),
                ("ratelimit-policy", "11;w=2")
            ]),
            Some(Quota::Left {
                remaining: 4.0,
                reset: Duration::from_secs(2),
                policy: Some(5.0 * POLICY_MARGIN)
            })
        );
        assert_eq!(q(&[]), None);
        let left = |remaining: f64, reset: Duration| {
            Some(Quota::Left {
                remaining,
                reset,
                policy: None,
            })
        };
        let cap = crate::core::checked::SERVER_PAUSE.max;
        // Hostile values: clamped into their ranges, or the header ignored, never a panic.
        assert_eq!(
            q(&[("ratelimit-remaining", "4"), ("ratelimit-reset", "1e30")]),
            left(4.0, cap)
        );
        assert_eq!(
            q(&[
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "999999999")
            ]),
            left(0.0, cap)
        );
        assert_eq!(q(&[("ratelimit", "r=1;t=1e300")]), left(1.0, cap));
        assert_eq!(
            q(&[
                ("x-rate-limit-remaining", "5"),
                ("x-rate-limit-reset", "inf")
            ]),
            left(5.0, cap)
        );
        assert_eq!(
            q(&[
                ("x-rate-limit-remaining", "5"),
                ("x-rate-limit-reset", "-inf")
            ]),
            left(5.0, Duration::ZERO)
        );
        assert_eq!(
            q(&[("ratelimit-remaining", "1e300"), ("ratelimit-reset", "-7")]),
            left(crate::core::checked::SERVER_COUNT_MAX, Duration::ZERO)
        );
        assert_eq!(
            q(&[("ratelimit-remaining", "-3"), ("ratelimit-reset", "2")]),
            left(0.0, Duration::from_secs(2))
        );
        assert_eq!(
            q(&[("ratelimit-remaining", "NaN"), ("ratelimit-reset", "2")]),
            None
        );
        assert_eq!(
            q(&[("ratelimit-remaining", "2"), ("ratelimit-reset", "NaN")]),
            None
        );
        assert_eq!(q(&[("x-ms-throttle-limit-percentage", "NaN")]), None);
        assert_eq!(
            q(&[("x-ms-throttle-limit-percentage", "1e300")]),
            Some(Quota::Used { percent: 100.0 })
        );
        // Policy windows and quotas: a window of 1e-300 s is a millisecond, a quota of inf 1e9.
        let fastest = (crate::core::checked::SERVER_COUNT_MAX - 1.0) / 0.001 * POLICY_MARGIN;
        for policy in [
            "inf;w=1e-300",
            "1e300;w=0.000000001",
            "\"p\";q=inf;w=1e-320",
        ] {
            let rate = policy_rate(policy).unwrap();
            assert!(
                rate.is_finite() && (rate - fastest).abs() < 1.0,
                "{policy}: {rate}"
            );
        }
        assert_eq!(
            policy_rate("100;w=1e300"),
            Some(99.0 / 86_400.0 * POLICY_MARGIN)
        );
        for junk in ["NaN;w=1", "100;w=NaN", "100;w=-1", "100;w=0", "-5;w=1"] {
            assert_eq!(policy_rate(junk), None, "{junk}");
        }
        assert_eq!(
            q(&[("content-type", "application/json"), ("x-rate", "4")]),
            None
        );
    }
}
