//! The one checked conversion from outside numbers (server headers, token answers, config and
//! command-line values) to durations, counts and instants, and the documented range of each.
//!
//! A value from a server is clamped into its range (it is the server's word, not the user's);
//! a value from the user is refused with a message naming the range, for the caller to name
//! the key. Nothing here panics or overflows, whatever the input: NaN is "no value", infinities
//! and huge values become the range's maximum, negative values its minimum.
//! Uses only std and tokio's `Instant`; every other module converts through here.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// An inclusive range of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: Duration,
    pub max: Duration,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn range(min: Duration, max: Duration) -> Range {
    Range { min, max }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

// Ranges of values a server sends: clamped.

/// How long a server may make the run wait (`Retry-After`, a rate-limit reset with no requests
/// left): at most 15 minutes.
pub const SERVER_PAUSE: Range = range(Duration::ZERO, secs(15 * MINUTE));
/// A rate-limit window (`RateLimit-Policy: q=..;w=..`): 1 ms to a day.
pub const SERVER_WINDOW: Range = range(Duration::from_millis(1), secs(DAY));
/// The largest request count a server's headers are taken at (remaining, quota).
pub const SERVER_COUNT_MAX: f64 = 1e9;
/// An access token's `expires_in`: taken as 1 second to 24 hours. 0 would mean a refresh before
/// every request (with the floor, refreshes are at least 0.8 s apart whatever the request rate);
/// 2^64-1 seconds a token kept past its real expiry (a 401 still refreshes it).
pub const TOKEN_LIFETIME: Range = range(secs(1), secs(DAY));
/// A device-code grant's poll interval (`interval`, plus 5 s per `slow_down`): 1 s to a minute.
pub const DEVICE_POLL: Range = range(secs(1), secs(MINUTE));

// Ranges of values the user sets: refused outside.

/// `--timeout` / `timeout`.
pub const TIMEOUT: Range = range(Duration::from_millis(10), secs(HOUR));
/// `connect_timeout`.
pub const CONNECT_TIMEOUT: Range = range(Duration::from_millis(10), secs(10 * MINUTE));
/// `backoff_base`.
pub const BACKOFF_BASE: Range = range(Duration::from_millis(1), secs(HOUR));
/// `backoff_cap`.
pub const BACKOFF_CAP: Range = range(Duration::from_millis(1), secs(HOUR));
/// `--grace-period` / `grace_period`.
pub const GRACE_PERIOD: Range = range(Duration::from_millis(1), secs(HOUR));
/// `progress_interval`.
pub const PROGRESS_INTERVAL: Range = range(Duration::from_millis(100), secs(DAY));
/// The simulator's durations (`--latency`, `--slow-delay`, `--token-lifetime`, a `--quota` window).
pub const SIMULATOR_DELAY: Range = range(Duration::ZERO, secs(DAY));
/// `--rate` / `--per-customer-rate`, in requests per second: 1/h to 1,000,000/s.
pub const RATE_MIN_PER_SECOND: f64 = 1.0 / HOUR as f64;
pub const RATE_MAX_PER_SECOND: f64 = 1_000_000.0;

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} and {}",
            humantime::format_duration(self.min),
            humantime::format_duration(self.max)
        )
    }
}

/// `secs` seconds clamped into `range`; None for NaN (not a number: no value at all).
pub fn duration_from_secs_f64(secs: f64, range: Range) -> Option<Duration> {
    if secs.is_nan() {
        return None;
    }
    let clamped = secs.clamp(range.min.as_secs_f64(), range.max.as_secs_f64());
    // In range, so finite, non-negative and far below Duration's limit.
    Some(Duration::from_secs_f64(clamped).clamp(range.min, range.max))
}

/// `secs` whole seconds clamped into `range`.
pub fn duration_from_secs(secs: u64, range: Range) -> Duration {
    Duration::from_secs(secs).clamp(range.min, range.max)
}

/// `d` clamped into `range`.
pub fn clamp(d: Duration, range: Range) -> Duration {
    d.clamp(range.min, range.max)
}

/// A user's duration, refused outside `range` with a message for the caller to prefix with
/// the key: "must be between 1ms and 1h (got `2y`)".
pub fn check(d: Duration, range: Range, text: &str) -> Result<Duration, String> {
    if (range.min..=range.max).contains(&d) {
        Ok(d)
    } else {
        Err(format!("must be between {range} (got `{}`)", text.trim()))
    }
}

/// A request count from a server, clamped to 0 ..= `SERVER_COUNT_MAX`; None for NaN.
pub fn count_from_f64(value: f64) -> Option<f64> {
    (!value.is_nan()).then(|| value.clamp(0.0, SERVER_COUNT_MAX))
}

/// A user's rate in requests per second, refused unless finite and within
/// `RATE_MIN_PER_SECOND ..= RATE_MAX_PER_SECOND`.
pub fn rate_per_second(per_second: f64) -> Result<f64, &'static str> {
    if !per_second.is_finite() {
        Err("must be a finite number")
    } else if per_second <= 0.0 {
        Err("must be more than zero")
    } else if per_second < RATE_MIN_PER_SECOND * (1.0 - 1e-9) {
        Err("is below the slowest rate, 1/h")
    } else if per_second > RATE_MAX_PER_SECOND {
        Err("is above 1,000,000/s; use `unlimited` for no pacing")
    } else {
        Ok(per_second)
    }
}

/// The time between two requests at `per_second`, within 0 ..= 1 hour (the slowest rate's);
/// zero for infinite or NaN rates (no pacing rather than a panic).
pub fn interval_for_rate(per_second: f64) -> Duration {
    duration_from_secs_f64(1.0 / per_second, range(Duration::ZERO, secs(HOUR)))
        .unwrap_or(Duration::ZERO)
}

/// `now + by`, saturating at a year from now (never overflows the clock).
pub fn after(now: Instant, by: Duration) -> Instant {
    let by = by.min(secs(365 * DAY));
    now.checked_add(by).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_from_outside_are_clamped_never_a_panic() {
        let r = SERVER_PAUSE;
        assert_eq!(duration_from_secs_f64(f64::NAN, r), None);
        assert_eq!(duration_from_secs_f64(f64::INFINITY, r), Some(r.max));
        assert_eq!(duration_from_secs_f64(f64::NEG_INFINITY, r), Some(r.min));
        assert_eq!(duration_from_secs_f64(-5.0, r), Some(Duration::ZERO));
        assert_eq!(duration_from_secs_f64(1e300, r), Some(r.max));
        assert_eq!(duration_from_secs_f64(1e30, r), Some(r.max));
        assert_eq!(duration_from_secs_f64(u64::MAX as f64, r), Some(r.max));
        assert_eq!(duration_from_secs_f64(f64::MAX, r), Some(r.max));
        assert_eq!(
            duration_from_secs_f64(1.5, r),
            Some(Duration::from_millis(1500))
        );
        // The boundaries themselves are kept, and one past them is clamped.
        assert_eq!(duration_from_secs_f64(900.0, r), Some(secs(900)));
        assert_eq!(duration_from_secs_f64(900.001, r), Some(secs(900)));
        assert_eq!(duration_from_secs_f64(0.0, r), Some(Duration::ZERO));
        let t = TOKEN_LIFETIME;
        assert_eq!(duration_from_secs_f64(0.0, t), Some(secs(1)));
        assert_eq!(duration_from_secs_f64(0.999, t), Some(secs(1)));
        assert_eq!(duration_from_secs_f64(86_400.0, t), Some(secs(86_400)));
        assert_eq!(duration_from_secs_f64(86_400.5, t), Some(secs(86_400)));
        assert_eq!(duration_from_secs_f64(1e-320, t), Some(secs(1)));
    }

    #[test]
    fn whole_seconds_are_clamped() {
        assert_eq!(duration_from_secs(u64::MAX, TOKEN_LIFETIME), secs(DAY));
        assert_eq!(duration_from_secs(0, TOKEN_LIFETIME), secs(1));
        assert_eq!(duration_from_secs(3600, TOKEN_LIFETIME), secs(3600));
        assert_eq!(duration_from_secs(999_999_999, SERVER_PAUSE), secs(900));
        assert_eq!(clamp(Duration::MAX, SERVER_PAUSE), secs(900));
    }

    #[test]
    fn counts_are_clamped() {
        assert_eq!(count_from_f64(f64::NAN), None);
        assert_eq!(count_from_f64(-1.0), Some(0.0));
        assert_eq!(count_from_f64(f64::INFINITY), Some(SERVER_COUNT_MAX));
        assert_eq!(count_from_f64(u64::MAX as f64), Some(SERVER_COUNT_MAX));
        assert_eq!(count_from_f64(42.0), Some(42.0));
    }

    #[test]
    fn user_values_outside_their_range_are_refused_with_the_range() {
        assert_eq!(check(secs(30), TIMEOUT, "30s"), Ok(secs(30)));
        assert_eq!(check(secs(HOUR), TIMEOUT, "1h"), Ok(secs(HOUR)));
        let e = check(secs(HOUR + 1), TIMEOUT, "3601s").unwrap_err();
        assert_eq!(e, "must be between 10ms and 1h (got `3601s`)");
        assert!(check(Duration::from_millis(9), TIMEOUT, "9ms").is_err());
        assert!(check(Duration::MAX, BACKOFF_CAP, "huge").is_err());
    }

    #[test]
    fn rates_are_refused_outside_one_an_hour_to_a_million_a_second() {
        for bad in [1e-20, 1e-12, 0.0, -1.0, f64::NAN, f64::INFINITY, 2e6] {
            assert!(rate_per_second(bad).is_err(), "{bad}");
        }
        assert_eq!(rate_per_second(1.0 / 3600.0), Ok(1.0 / 3600.0));
        assert_eq!(rate_per_second(1e6), Ok(1e6));
        assert_eq!(interval_for_rate(4.0), Duration::from_millis(250));
        assert_eq!(interval_for_rate(1e-20), secs(HOUR));
        assert_eq!(interval_for_rate(f64::INFINITY), Duration::ZERO);
        assert_eq!(interval_for_rate(f64::NAN), Duration::ZERO);
        assert_eq!(interval_for_rate(0.0), secs(HOUR));
    }

    #[tokio::test(start_paused = true)]
    async fn instants_saturate() {
        let now = Instant::now();
        assert_eq!(after(now, secs(5)), now + secs(5));
        assert_eq!(after(now, Duration::MAX), now + secs(365 * DAY));
    }
}
