//! Decides what an attempt's result means (success, retry or final, with a reason), separately decides how long to wait (full-jitter backoff, overridden by Retry-After), and drives one row's attempts.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use uuid::Uuid;

use crate::core::run_state::Stop;
use crate::send::attempt::Attempt;
use crate::send::pacer::Pacer;

/// The longest `Retry-After` honoured; a larger value is taken as this (`checked::SERVER_PAUSE`).
pub const MAX_RETRY_AFTER: Duration = crate::core::checked::SERVER_PAUSE.max;

/// What an attempt's result means for the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The update was applied.
    Success,
    /// Worth another try (throttling, a server error, a timeout, a dropped connection).
    Retry { reason: String, throttled: bool },
    /// Final for this row: retrying cannot help.
    Fail { reason: String },
    /// The token was refused: final for the whole run.
    Unauthorized { reason: String },
}

/// Classifies one attempt. Transient: the statuses of `core::transient`, timeouts and
/// connection errors; a 401 stops the run; every other status is final.
pub fn classify(attempt: &Attempt) -> Verdict {
    match attempt {
        Attempt::Timeout => Verdict::Retry {
            reason: "timed out waiting for a response".into(),
            throttled: false,
        },
        Attempt::Connection(m) => Verdict::Retry {
            reason: m.clone(),
            throttled: false,
        },
        Attempt::Response(r) => {
            let reason = r.message.clone();
            match r.status {
                200..=299 => Verdict::Success,
                401 => Verdict::Unauthorized { reason },
                429 => Verdict::Retry {
                    reason,
                    throttled: true,
                },
                s if crate::core::transient::is_transient(s) => Verdict::Retry {
                    reason,
                    throttled: false,
                },
                _ => Verdict::Fail { reason },
            }
        }
    }
}

/// Exponential backoff with full jitter: attempt n waits a uniform time in [0, min(cap, base * 2^(n-1))].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The upper bound of the wait after the `failed_attempts`-th failure (1-based).
    pub fn ceiling(&self, failed_attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempts.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait in [0, ceiling].
    pub fn delay(&self, failed_attempts: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failed_attempts);
        let range = crate::core::checked::Range {
            min: Duration::ZERO,
            max: ceiling,
        };
        crate::core::checked::duration_from_secs_f64(
            rng.random_range(0.0..=ceiling.as_secs_f64()),
            range,
        )
        .unwrap_or(Duration::ZERO)
    }
}

/// Reads `Retry-After` as delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    use crate::core::checked::{self, SERVER_PAUSE};
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        Some(checked::duration_from_secs(secs, SERVER_PAUSE))
    } else if let Ok(secs) = v.parse::<f64>() {
        // A negative or infinite delay is no delay the standard allows: ignored.
        (secs.is_finite() && secs >= 0.0)
            .then(|| checked::duration_from_secs_f64(secs, SERVER_PAUSE))
            .flatten()
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
        Some(checked::clamp(wait, SERVER_PAUSE))
    }
}

/// How a row's attempts ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A final verdict (success, a final failure or a refused token).
    Finished,
    /// Every allowed attempt failed transiently.
    Exhausted,
    /// The run stopped while the row waited to retry.
    StoppedBeforeRetry,
    /// The run stopped before the row's first attempt: nothing was sent.
    NotAttempted,
    /// The run was stopped at once while a request was in flight.
    Interrupted,
}

/// The result of driving one row.
#[derive(Clone, Debug)]
pub struct Driven {
    pub ending: Ending,
    pub attempts: u32,
    /// Number of those attempts answered 429.
    pub throttled: u32,
    pub last: Option<Attempt>,
    pub verdict: Option<Verdict>,
    /// The MS-RequestId of the last attempt.
    pub request_id: Uuid,
}

/// Retry settings for a run.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// When a retry gets a new request id (the target's rule).
    pub ids: crate::targets::IdRule,
}

impl Policy {
    /// The run's retry settings: `--max-attempts`, the backoff, and the target's id rule.
    pub fn for_settings(settings: &crate::settings::Settings) -> Policy {
        Policy {
            max_attempts: settings.max_attempts,
            backoff: Backoff {
                base: settings.backoff_base,
                cap: settings.backoff_cap,
            },
            ids: settings.target.request_ids(),
        }
    }
}

/// Sends a row's attempts until one is final, the attempts run out, or the run stops.
///
/// `send` makes one attempt with the given MS-RequestId, or returns None when it could not
/// send (the run is stopping). The policy's id rule says when the id is renewed (Partner
/// Center: kept when no response arrived, renewed after any response). Each attempt waits for the pacer (rate limit
/// and 429 pauses); a 429 pauses the customer's lane, or the whole pool when it is the
/// partner's limit.
pub async fn drive<F, Fut>(
    policy: &Policy,
    pacer: &Pacer,
    stop: &Stop,
    customer: Option<Uuid>,
    mut send: F,
) -> Driven
where
    F: FnMut(Uuid) -> Fut,
    Fut: Future<Output = Option<Attempt>>,
{
    let mut driven = Driven {
        ending: Ending::NotAttempted,
        attempts: 0,
        throttled: 0,
        last: None,
        verdict: None,
        request_id: crate::core::ids::new_id(),
    };
    loop {
        if !pacer.ready(stop, customer).await {
            driven.ending = if driven.attempts == 0 {
                Ending::NotAttempted
            } else {
                Ending::StoppedBeforeRetry
            };
            return driven;
        }
        driven.attempts += 1;
        let attempt = tokio::select! {
            a = send(driven.request_id) => a,
            _ = stop.aborted() => {
                driven.ending = Ending::Interrupted;
                return driven;
            }
        };
        let Some(attempt) = attempt else {
            driven.attempts -= 1;
            driven.ending = if driven.attempts == 0 {
                Ending::NotAttempted
            } else {
                Ending::StoppedBeforeRetry
            };
            return driven;
        };
        pacer.observe(&attempt, customer);
        let verdict = classify(&attempt);
        let got_response = attempt.got_response();
        let (retry_after, said) = match &attempt {
            Attempt::Response(r) => (r.retry_after, r.throttle_scope),
            _ => (None, None),
        };
        driven.last = Some(attempt);
        driven.verdict = Some(verdict.clone());
        let throttled = match verdict {
            Verdict::Retry { throttled, .. } => throttled,
            _ => {
                driven.ending = Ending::Finished;
                return driven;
            }
        };
        let wait =
            retry_after.unwrap_or_else(|| policy.backoff.delay(driven.attempts, &mut rand::rng()));
        if throttled {
            driven.throttled += 1;
            // The customer's lane waits, or everyone when the partner's limit was hit.
            pacer.throttled(customer, wait, said);
        }
        if driven.attempts >= policy.max_attempts {
            driven.ending = Ending::Exhausted;
            return driven;
        }
        if policy.ids.renews(got_response) {
            driven.request_id = crate::core::ids::new_id();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.stopping() => {
                driven.ending = Ending::StoppedBeforeRetry;
                return driven;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::attempt::Response;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    fn answer(status: u16, retry_after: Option<u64>) -> Attempt {
        Attempt::Response(Response {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            error_code: None,
            message: format!("status {status}"),
            user: None,
            quota: None,
            throttle_scope: None,
        })
    }

    #[test]
    fn transient_and_final_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(&answer(s, None)), Verdict::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 403, 404, 409, 501] {
            assert!(
                matches!(classify(&answer(s, None)), Verdict::Fail { .. }),
                "{s}"
            );
        }
        assert!(matches!(
            classify(&answer(401, None)),
            Verdict::Unauthorized { .. }
        ));
        assert_eq!(classify(&answer(204, None)), Verdict::Success);
        assert!(matches!(classify(&Attempt::Timeout), Verdict::Retry { .. }));
        assert!(matches!(
            classify(&Attempt::Connection("reset".into())),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn backoff_grows_to_the_cap_with_full_jitter() {
        let b = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(500));
        assert_eq!(b.ceiling(2), Duration::from_secs(1));
        assert_eq!(b.ceiling(4), Duration::from_secs(4));
        assert_eq!(b.ceiling(8), Duration::from_secs(60));
        assert_eq!(b.ceiling(1000), Duration::from_secs(60));
        let mut rng = rand::rng();
        let samples: Vec<_> = (0..200).map(|_| b.delay(3, &mut rng)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_secs(2)));
        // Full jitter spreads over the whole range, not just near the ceiling.
        assert!(samples.iter().any(|d| *d < Duration::from_millis(500)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("57", now), Some(Duration::from_secs(57)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        // Hostile values: clamped to the cap or ignored, never a panic.
        for huge in [
            "1e300",
            "1e30",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        for junk in ["inf", "-inf", "NaN", "-1e300"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(999_999_999));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
    }

    /// Runs `drive` against scripted answers, recording when each attempt was made and with which request id.
    async fn scripted(answers: Vec<Attempt>, max_attempts: u32) -> (Driven, Vec<(Duration, Uuid)>) {
        let policy = Policy {
            max_attempts,
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(60),
            },
            ids: crate::targets::IdRule::RenewAfterAnswer,
        };
        let pacer = Pacer::new(None);
        let stop = Stop::default();
        let start = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut answers = answers.into_iter();
        let driven = drive(&policy, &pacer, &stop, None, |rid| {
            log.lock().unwrap().push((start.elapsed(), rid));
            let a = answers.next().expect("no more scripted answers");
            async move { Some(a) }
        })
        .await;
        let log = log.lock().unwrap().clone();
        (driven, log)
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_back_off_within_the_jitter_bounds() {
        let (d, log) = scripted(
            vec![
                answer(503, None),
                answer(500, None),
                answer(502, None),
                answer(200, None),
            ],
            6,
        )
        .await;
        assert_eq!(d.ending, Ending::Finished);
        assert_eq!(d.verdict, Some(Verdict::Success));
        assert_eq!(d.attempts, 4);
        let gaps: Vec<Duration> = log.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let ceilings = [500, 1000, 2000];
        for (gap, ceiling) in gaps.iter().zip(ceilings) {
            assert!(
                *gap <= Duration::from_millis(ceiling),
                "{gap:?} > {ceiling}ms"
            );
        }
        // Each answer was a response: every attempt has a fresh MS-RequestId.
        let mut ids: Vec<Uuid> = log.iter().map(|(_, id)| *id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_overrides_the_backoff() {
        let (d, log) = scripted(vec![answer(503, Some(7)), answer(200, None)], 6).await;
        assert_eq!(d.ending, Ending::Finished);
        assert_eq!(log[1].0 - log[0].0, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_keeps_the_request_id_and_a_response_renews_it() {
        let (d, log) = scripted(
            vec![
                Attempt::Timeout,
                Attempt::Connection("dropped".into()),
                answer(503, Some(1)),
                answer(200, None),
            ],
            6,
        )
        .await;
        assert_eq!(d.attempts, 4);
        assert_eq!(log[0].1, log[1].1, "timeout: same id");
        assert_eq!(log[1].1, log[2].1, "dropped connection: same id");
        assert_ne!(log[2].1, log[3].1, "after a response: new id");
        assert_eq!(d.request_id, log[3].1);
    }

    #[tokio::test(start_paused = true)]
    async fn final_statuses_are_not_retried_and_attempts_are_bounded() {
        let (d, log) = scripted(vec![answer(404, None)], 6).await;
        assert_eq!((d.ending, d.attempts, log.len()), (Ending::Finished, 1, 1));
        assert!(matches!(d.verdict, Some(Verdict::Fail { .. })));

        let (d, _) = scripted(vec![answer(503, None); 3], 3).await;
        assert_eq!((d.ending, d.attempts), (Ending::Exhausted, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_the_whole_pool() {
        let pacer = Pacer::new(None);
        let stop = Stop::default();
        let policy = Policy {
            max_attempts: 3,
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(60),
            },
            ids: crate::targets::IdRule::RenewAfterAnswer,
        };
        let start = Instant::now();
        let throttled_row = drive(&policy, &pacer, &stop, None, |_| async {
            Some(answer(429, Some(5)))
        });
        let other_row = async {
            // This row starts after the 429 arrived; it must not send before the pause ends.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut sent_at = None;
            drive(&policy, &pacer, &stop, None, |_| {
                sent_at = Some(start.elapsed());
                async { Some(answer(200, None)) }
            })
            .await;
            sent_at.unwrap()
        };
        let (d, other_sent) = tokio::join!(throttled_row, other_row);
        assert_eq!(d.throttled, 3);
        assert!(
            other_sent >= Duration::from_secs(5),
            "sent at {other_sent:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_ends_the_wait_before_a_retry() {
        let pacer = Pacer::new(None);
        let stop = Stop::default();
        let policy = Policy {
            max_attempts: 6,
            backoff: Backoff {
                base: Duration::from_secs(30),
                cap: Duration::from_secs(60),
            },
            ids: crate::targets::IdRule::RenewAfterAnswer,
        };
        let row = drive(&policy, &pacer, &stop, None, |_| async {
            Some(answer(503, Some(30)))
        });
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.stop(crate::core::run_state::StopReason::Interrupted);
        };
        let (d, ()) = tokio::join!(row, stopper);
        assert_eq!((d.ending, d.attempts), (Ending::StoppedBeforeRetry, 1));
    }
}
