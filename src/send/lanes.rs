//! Each customer's lane: its own adaptive pace and its own pause after a 429, and the judgement
//! whether 429s come from one customer's limit or from the partner's. Partner Center throttles
//! per partner and per partner+customer pair (Graph per app per tenant), and only the answers
//! tell which limit was hit: 429s concentrated on one customer (two or more of the last five
//! seconds' 429s, and two thirds of them) are that customer's; 429s spread over customers, or
//! from several customers within a second, are the partner's. Uses `core` and `send::pace`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::core::checked;
use crate::send::pace::{Controller, Quota};

/// 429s this close together belong to the same judgement.
const SPREAD: Duration = Duration::from_secs(1);
/// 429s from this many customers within `SPREAD` (or from every customer answered in it,
/// when fewer were, but at least two) show the partner-wide limit.
const PARTNER_SPREAD: usize = 3;
/// How long answers are remembered: the judgement's window, and the success rate a new lane
/// starts from (the pace's measuring window).
const REMEMBER: Duration = Duration::from_secs(2);
/// The answers remembered at most (the newest).
const RECENT_MAX: usize = 4096;
/// A customer's own limit shows as 429s concentrated on it: at least `OWN_429S` of the 429s
/// within `CONCENTRATION`, and at least `OWN_SHARE` of them. A partner's limit spreads them
/// over the customers sending; a lone first 429 is taken as the partner's.
const CONCENTRATION: Duration = Duration::from_secs(5);
const OWN_429S: usize = 2;
const OWN_SHARE: f64 = 2.0 / 3.0;
/// Lanes kept at most; a 429 of a customer beyond them is handled partner-wide.
const LANES_MAX: usize = 100_000;
/// A customer's batches grow back by a quarter (at least one row) after this many batches
/// without a 429, once a batch answered partly 429 cut them to what the server took at once.
const BATCHES_BEFORE_GROWING: u32 = 8;

/// Which limit a 429 hit (ordered: the partner's is the wider).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The customer's own limit: only its lane slows down and pauses.
    Customer,
    /// The partner's limit: every request slows down and pauses.
    Partner,
}

impl Scope {
    /// What a 429's `x-ms-throttle-scope` says (Graph: `Tenant_Application/ReadWrite/<app>/<tenant>`):
    /// `Tenant_Application` and `Tenant` are the customer tenant's limits, `Application` the
    /// app's own across every tenant (the partner's, here). None when absent or unknown.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Scope> {
        let value = headers.get("x-ms-throttle-scope")?.to_str().ok()?;
        let kind = value.split('/').next()?.trim();
        if kind.eq_ignore_ascii_case("tenant_application") || kind.eq_ignore_ascii_case("tenant") {
            Some(Scope::Customer)
        } else if kind.eq_ignore_ascii_case("application") {
            Some(Scope::Partner)
        } else {
            None
        }
    }
}

/// One customer's pace and pause, created at its first 429 (or rate-limit warning).
#[derive(Debug)]
struct Lane {
    pace: Controller,
    paused_until: Option<Instant>,
    /// The lane's last cut, and its pace and pause before it: a cut later found to be the
    /// partner's doing (more customers throttled within `SPREAD`) is taken back.
    last_cut: Option<(Instant, Option<f64>, Option<Instant>)>,
    /// When the lane was created (by a 429 that may turn out to be the partner's).
    created: Instant,
    /// The customer's latest answer.
    last_seen: Instant,
    /// Whether a 429 or a warning of its own slowed it (not only started at a documented pace).
    slowed: bool,
    /// Its batches' size, once a batch was answered partly 429 (None: the run's `--batch`).
    batch_limit: Option<BatchLimit>,
}

/// The size of a customer's batches after a batch answered partly 429.
#[derive(Clone, Copy, Debug)]
struct BatchLimit {
    /// The rows a batch carries at most.
    size: usize,
    /// The most rows a batch carried that the server took whole since the last cut.
    proven: usize,
    /// Batches answered without a 429 since the size last changed.
    clean: u32,
}

#[derive(Debug, Default)]
struct Inner {
    lanes: HashMap<Uuid, Lane>,
    /// The end of the latest pause of everyone (a partner-wide 429).
    partner_paused_until: Option<Instant>,
    /// Recent answers: when, from which customer, whether it was a 429.
    recent: VecDeque<(Instant, Uuid, bool)>,
    /// The 429s of the last `CONCENTRATION`: when, and from which customer.
    throttles: VecDeque<(Instant, Uuid)>,
}

/// The customers' lanes of a run.
#[derive(Debug)]
pub struct Lanes {
    /// Each lane's ceiling: the per-customer rate, if any.
    ceiling: Option<f64>,
    /// Every 429 is the customer's own (the target throttles per tenant): no judgement.
    tenant_only: bool,
    /// The pace each lane starts at, before any 429: the rate the API documents per tenant.
    start: Option<f64>,
    inner: Mutex<Inner>,
}

impl Lanes {
    pub fn new(ceiling: Option<f64>) -> Lanes {
        Lanes {
            ceiling,
            tenant_only: false,
            start: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Takes every 429 as the customer's own limit (Graph's, per app and tenant), and starts
    /// each customer's lane at `start` per second (the limit the API documents) rather than
    /// at the run's ceiling: its pace probes up from there, or is cut at a 429, as any lane's.
    pub fn set_per_tenant(&mut self, start: Option<f64>) {
        self.tenant_only = true;
        self.start = start.filter(|r| r.is_finite() && *r > 0.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("lanes lock")
    }

    /// An answer other than a 429 from `customer`.
    pub fn on_success(&self, customer: Uuid) {
        let mut inner = self.lock();
        inner.remember(customer, false);
        if let Some(lane) = inner.lanes.get_mut(&customer) {
            lane.pace.on_success();
            lane.last_seen = Instant::now();
        }
    }

    /// A 429 from `customer`, to be retried after `pause`: partner-wide or the customer's own,
    /// as the server `said` (Graph's `x-ms-throttle-scope`), else as the target throttles, else
    /// judged from the spread of the 429s. The customer's own slows and pauses its lane here; a
    /// partner-wide one is left to the caller (the pool-wide pace and pause).
    pub fn on_throttle(&self, customer: Uuid, pause: Duration, said: Option<Scope>) -> Scope {
        let mut inner = self.lock();
        inner.remember(customer, true);
        let judged_partner = match said {
            Some(scope) => scope == Scope::Partner,
            None if self.tenant_only => false,
            None => inner.partner_wide() || !inner.concentrated_on(customer),
        };
        if judged_partner {
            inner.take_back_recent_cuts();
            return Scope::Partner;
        }
        let Some(lane) = inner.lane(customer, self.ceiling) else {
            return Scope::Partner;
        };
        lane.last_cut = Some((Instant::now(), lane.pace.adapted(), lane.paused_until));
        lane.slowed = true;
        lane.pace.on_throttle(pause);
        lane.last_seen = Instant::now();
        let until = checked::after(Instant::now(), pause);
        if lane.paused_until.is_none_or(|u| u < until) {
            lane.paused_until = Some(until);
        }
        Scope::Customer
    }

    /// Everyone pauses until `until` (the partner's limit): no lane counts that time as time
    /// without successes.
    pub fn partner_paused(&self, until: Instant) {
        let mut inner = self.lock();
        inner.partner_paused_until = inner.partner_paused_until.max(Some(until));
        for lane in inner.lanes.values() {
            lane.pace.measure_from(until);
        }
    }

    /// The share of a customer's limit already used (Graph's, per app and tenant): its lane
    /// slows down before a 429.
    pub fn on_quota_used(&self, customer: Uuid, quota: Quota) {
        let mut inner = self.lock();
        if let Some(lane) = inner.lane(customer, self.ceiling) {
            lane.slowed = true;
            lane.pace.on_quota(quota);
        }
    }

    /// How many rows `customer`'s next batch may carry: `max`, or fewer after a batch of it
    /// was answered partly 429 (the server took fewer at once than were sent).
    pub fn batch_size(&self, customer: Uuid, max: usize) -> usize {
        let inner = self.lock();
        let limit = inner.lanes.get(&customer).and_then(|l| l.batch_limit);
        limit.map_or(max, |b| b.size.min(max)).max(1)
    }

    /// A batch of `sent` rows to `customer` answered with `throttled` of them 429: when the
    /// server took some but not all at once, later batches carry at most what it took; after
    /// [`BATCHES_BEFORE_GROWING`] batches without a 429 they grow by a quarter, up to `max`.
    /// True when the 429s answered a batch grown beyond the size last taken whole: the size
    /// was too large, not the pace too fast (the caller pauses the lane without cutting it).
    pub fn batch_answered(
        &self,
        customer: Uuid,
        sent: usize,
        throttled: usize,
        max: usize,
    ) -> bool {
        let mut inner = self.lock();
        let taken = sent.saturating_sub(throttled);
        if throttled > 0 && taken > 0 {
            let Some(lane) = inner.lane(customer, self.ceiling) else {
                return false;
            };
            let grown = lane.batch_limit.is_some_and(|b| sent > b.proven);
            let size = lane.batch_limit.map_or(max, |b| b.size).min(taken);
            lane.batch_limit = Some(BatchLimit {
                size,
                proven: size,
                clean: 0,
            });
            return grown;
        }
        let lane = inner.lanes.get_mut(&customer);
        if let (0, Some(b)) = (throttled, lane.and_then(|l| l.batch_limit.as_mut())) {
            b.proven = b.proven.max(sent);
            b.clean = b.clean.saturating_add(1);
            if b.clean >= BATCHES_BEFORE_GROWING {
                b.size = (b.size + (b.size / 4).max(1)).min(max);
                b.clean = 0;
            }
        }
        false
    }

    /// Pauses `customer`'s lane for `pause` without cutting its pace (a 429 its batch size
    /// explains).
    pub fn pause(&self, customer: Uuid, pause: Duration) {
        let mut inner = self.lock();
        inner.remember(customer, true);
        if let Some(lane) = inner.lane(customer, self.ceiling) {
            let until = checked::after(Instant::now(), pause);
            if lane.paused_until.is_none_or(|u| u < until) {
                lane.paused_until = Some(until);
            }
        }
    }

    /// When `customer`'s lane next lets a request go: the end of its pause or its next pace
    /// slot, if later than now (None: now).
    pub fn ready_at(&self, customer: Uuid) -> Option<Instant> {
        let inner = self.lock();
        let lane = inner.lanes.get(&customer)?;
        let at = lane.paused_until.max(lane.pace.next_slot())?;
        (at > Instant::now()).then_some(at)
    }

    /// The end of `customer`'s pause, if it is paused.
    pub fn paused_until(&self, customer: Uuid) -> Option<Instant> {
        let inner = self.lock();
        let until = inner.lanes.get(&customer)?.paused_until?;
        (until > Instant::now()).then_some(until)
    }

    /// Takes `customer`'s next send slot of its pace: the instant to wait for (None: go now).
    pub fn reserve(&self, customer: Uuid) -> Option<Instant> {
        let mut inner = self.lock();
        if let Some(start) = self.start.filter(|_| !inner.lanes.contains_key(&customer)) {
            if let Some(lane) = inner.lane(customer, self.ceiling) {
                lane.pace.start_at(start);
            }
        }
        let slot = inner.lanes.get(&customer)?.pace.reserve()?;
        (slot > Instant::now()).then_some(slot)
    }

    /// The pace of `customer`'s lane, when it has one below its ceiling.
    pub fn rate(&self, customer: Uuid) -> Option<f64> {
        self.lock().lanes.get(&customer)?.pace.rate()
    }

    /// The customers paced on their own below their ceiling, answered within `within` (all of
    /// them with None): how many, and the slowest three with their pace.
    pub fn slowest(&self, within: Option<Duration>) -> (usize, Vec<(Uuid, f64)>) {
        let inner = self.lock();
        let now = Instant::now();
        let mut paced: Vec<(Uuid, f64)> = inner
            .lanes
            .iter()
            .filter(|(_, lane)| {
                lane.slowed
                    && within.is_none_or(|w| now.saturating_duration_since(lane.last_seen) <= w)
            })
            .filter_map(|(c, lane)| Some((*c, lane.pace.rate()?)))
            .filter(|(_, rate)| self.ceiling.is_none_or(|c| *rate < c * 0.999))
            .collect();
        let count = paced.len();
        paced.sort_by(|a, b| a.1.total_cmp(&b.1));
        paced.truncate(3);
        (count, paced)
    }

    /// How many customers have a lane of their own (were throttled on their own).
    pub fn len(&self) -> usize {
        self.lock().lanes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn remember(&mut self, customer: Uuid, throttled: bool) {
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|(t, ..)| now.saturating_duration_since(*t) > REMEMBER)
            || self.recent.len() >= RECENT_MAX
        {
            self.recent.pop_front();
        }
        self.recent.push_back((now, customer, throttled));
        if throttled {
            while self
                .throttles
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > CONCENTRATION)
                || self.throttles.len() >= RECENT_MAX
            {
                self.throttles.pop_front();
            }
            self.throttles.push_back((now, customer));
        }
    }

    /// Whether `customer`'s 429s are concentrated enough on it to be its own limit's.
    fn concentrated_on(&self, customer: Uuid) -> bool {
        let own = self
            .throttles
            .iter()
            .filter(|(_, c)| *c == customer)
            .count();
        own >= OWN_429S && own as f64 >= OWN_SHARE * self.throttles.len() as f64
    }

    /// Whether the 429s within the window come from enough customers to be the partner's.
    fn partner_wide(&self) -> bool {
        let mut answered = HashSet::new();
        let mut throttled = HashSet::new();
        let now = Instant::now();
        let within = self
            .recent
            .iter()
            .filter(|(t, ..)| now.saturating_duration_since(*t) <= SPREAD);
        for (_, customer, was_429) in within {
            answered.insert(*customer);
            if *was_429 {
                throttled.insert(*customer);
            }
        }
        throttled.len() >= 2 && throttled.len() >= PARTNER_SPREAD.min(answered.len())
    }

    /// The 429s judged one customer's within the window were the partner's: lanes created
    /// by them are dropped, and cuts made by them undone (the pool-wide pause covers them).
    fn take_back_recent_cuts(&mut self) {
        let now = Instant::now();
        let recent = |t: Instant| now.saturating_duration_since(t) <= SPREAD;
        self.lanes
            .retain(|_, lane| !(recent(lane.created) && lane.last_cut.is_some()));
        for lane in self.lanes.values_mut() {
            if let Some((at, pace, paused)) = lane.last_cut.take() {
                if recent(at) {
                    lane.pace.set_adapted(pace);
                    lane.paused_until = paused;
                } else {
                    lane.last_cut = Some((at, pace, paused));
                }
            }
        }
    }

    fn lane(&mut self, customer: Uuid, ceiling: Option<f64>) -> Option<&mut Lane> {
        if self.lanes.len() >= LANES_MAX && !self.lanes.contains_key(&customer) {
            return None;
        }
        let (recent, paused) = (&self.recent, self.partner_paused_until);
        Some(self.lanes.entry(customer).or_insert_with(|| {
            // Measured from the customer's own first answer remembered, or the end of the
            // latest pause of everyone: time before either is not time it failed to succeed.
            let first = recent
                .iter()
                .find(|(_, c, _)| *c == customer)
                .map_or_else(Instant::now, |(t, ..)| *t);
            let since = paused.map_or(first, |p| p.max(first));
            let successes = recent
                .iter()
                .filter(|(t, c, was_429)| *c == customer && !was_429 && *t >= since)
                .map(|(t, ..)| *t)
                .collect();
            Lane {
                pace: Controller::seeded(ceiling, successes, since),
                paused_until: None,
                last_seen: Instant::now(),
                last_cut: None,
                created: Instant::now(),
                slowed: false,
                batch_limit: None,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    async fn answers(lanes: &Lanes, customers: &[Uuid], per_second: u32, seconds: u32) {
        for i in 0..per_second * seconds {
            tokio::time::advance(Duration::from_secs(1) / per_second).await;
            lanes.on_success(customers[i as usize % customers.len()]);
        }
    }

    /// A customer's own 429: a first one (judged the partner's: nothing tells them apart yet),
    /// then the one that shows the 429s concentrated on it.
    fn own_429(lanes: &Lanes, c: Uuid, pause: Duration) -> Scope {
        assert_eq!(lanes.on_throttle(c, Duration::ZERO, None), Scope::Partner);
        lanes.on_throttle(c, pause, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_from_one_customer_pauses_and_slows_only_its_lane() {
        let lanes = Lanes::new(None);
        let (a, b) = (customer(1), customer(2));
        answers(&lanes, &[a, b], 10, 2).await;
        assert_eq!(own_429(&lanes, a, Duration::from_secs(2)), Scope::Customer);
        let until = Instant::now() + Duration::from_secs(2);
        assert_eq!(lanes.ready_at(a), Some(until));
        assert_eq!(lanes.paused_until(a), Some(until));
        assert_eq!(lanes.ready_at(b), None, "the other customer goes on");
        assert_eq!(lanes.paused_until(b), None);
        assert_eq!(lanes.reserve(b), None);
        // A's pace is just under the 5/s that were succeeding for it.
        let rate = lanes.rate(a).unwrap();
        assert!((4.5..=5.1).contains(&rate), "{rate}");
        assert_eq!(lanes.len(), 1);
        // After the pause A's requests are spaced at its pace.
        tokio::time::advance(Duration::from_secs(2)).await;
        let first = lanes.reserve(a);
        let second = lanes.reserve(a).unwrap();
        let gap = second - first.unwrap_or_else(Instant::now);
        assert_eq!(gap, checked::interval_for_rate(rate));
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_spread_over_customers_are_the_partners() {
        let lanes = Lanes::new(None);
        let all: Vec<Uuid> = (1..=6).map(customer).collect();
        answers(&lanes, &all, 15, 2).await;
        // A lone first 429, then 429s over several customers within a second.
        for c in &all[..3] {
            assert_eq!(
                lanes.on_throttle(*c, Duration::from_secs(1), None),
                Scope::Partner
            );
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert_eq!(
            lanes.ready_at(all[2]),
            None,
            "the pool pauses, not its lane"
        );
        assert_eq!(lanes.len(), 0);
        // Long after, 429s concentrated on one customer are its own.
        tokio::time::advance(Duration::from_secs(6)).await;
        answers(&lanes, &all, 15, 1).await;
        assert_eq!(
            own_429(&lanes, all[3], Duration::from_secs(1)),
            Scope::Customer
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_found_to_be_the_partners_is_taken_back() {
        let lanes = Lanes::new(None);
        let all: Vec<Uuid> = (1..=4).map(customer).collect();
        answers(&lanes, &all, 16, 2).await;
        // Customer 1 was throttled on its own long ago: it has a lane of its own.
        own_429(&lanes, all[0], Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(6)).await;
        answers(&lanes, &all, 16, 2).await;
        let own = lanes.rate(all[0]);
        assert!(own.is_some());
        // Its 429s again (its cut), then 2 and 3 within a second: the partner's limit.
        assert_eq!(
            own_429(&lanes, all[0], Duration::from_secs(1)),
            Scope::Customer
        );
        assert!(lanes.paused_until(all[0]).is_some());
        assert_eq!(
            lanes.on_throttle(all[1], Duration::from_secs(1), None),
            Scope::Partner
        );
        assert_eq!(lanes.rate(all[0]), own, "the cut is undone");
        assert_eq!(lanes.paused_until(all[0]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn with_two_customers_both_throttled_is_the_partner() {
        let lanes = Lanes::new(None);
        let (a, b) = (customer(1), customer(2));
        answers(&lanes, &[a, b], 10, 1).await;
        assert_eq!(own_429(&lanes, a, Duration::ZERO), Scope::Customer);
        assert_eq!(lanes.on_throttle(b, Duration::ZERO, None), Scope::Partner);
        // A single customer: its first 429 is taken as the partner's, the next ones its own.
        let solo = Lanes::new(None);
        answers(&solo, &[a], 10, 1).await;
        assert_eq!(solo.on_throttle(a, Duration::ZERO, None), Scope::Partner);
        for _ in 0..5 {
            assert_eq!(solo.on_throttle(a, Duration::ZERO, None), Scope::Customer);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lanes_respect_their_ceiling_and_probe_back_up() {
        let lanes = Lanes::new(Some(3.0));
        let a = customer(1);
        answers(&lanes, &[a], 3, 2).await;
        own_429(&lanes, a, Duration::from_secs(1));
        let low = lanes.rate(a).unwrap();
        assert!(low < 3.0, "{low}");
        tokio::time::advance(Duration::from_secs(2)).await;
        answers(&lanes, &[a], 3, 300).await;
        assert_eq!(lanes.rate(a), Some(3.0), "back at the per-customer ceiling");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_of_everyone_is_not_time_a_customer_failed() {
        let lanes = Lanes::new(None);
        let (a, b) = (customer(1), customer(2));
        // A and B succeed at 4/s each, then everyone pauses 1.5 s (a partner-wide 429).
        answers(&lanes, &[a, b], 8, 1).await;
        let resumed = Instant::now() + Duration::from_millis(1500);
        lanes.partner_paused(resumed);
        tokio::time::advance(Duration::from_millis(1500)).await;
        answers(&lanes, &[a, b], 8, 1).await;
        // A's own 429 now: measured since the pause ended, about 4/s, not 2.
        own_429(&lanes, a, Duration::from_secs(1));
        let rate = lanes.rate(a).unwrap();
        assert!((3.5..4.5).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lanes_first_cut_is_bounded_by_the_per_customer_ceiling() {
        // Everyone was paused for a while: this customer succeeded once in 2 s.
        let lanes = Lanes::new(Some(3.0));
        let a = customer(1);
        answers(&lanes, &[a], 1, 2).await;
        own_429(&lanes, a, Duration::from_secs(1));
        let cut = lanes.rate(a).unwrap();
        assert!((cut - 3.0 * 0.85 * 0.95).abs() < 1e-9, "{cut}");
    }

    #[tokio::test(start_paused = true)]
    async fn share_used_slows_only_that_customer() {
        let lanes = Lanes::new(None);
        let (a, b) = (customer(1), customer(2));
        answers(&lanes, &[a, b], 20, 2).await;
        lanes.on_quota_used(a, Quota::Used { percent: 90.0 });
        assert!(lanes.rate(a).is_some_and(|r| r < 10.0));
        assert_eq!(lanes.rate(b), None);
        assert_eq!(lanes.ready_at(a), None, "no pause before a 429");
    }

    /// A target that throttles per tenant (Graph): every 429 is the customer's own, even the
    /// first and even when several customers are throttled at once; lanes start at the
    /// documented rate and are not counted as throttled until they are.
    #[tokio::test(start_paused = true)]
    async fn per_tenant_429s_are_each_customers_own_and_lanes_start_at_the_documented_rate() {
        let mut lanes = Lanes::new(None);
        lanes.set_per_tenant(Some(20.0));
        let all: Vec<Uuid> = (1..=4).map(customer).collect();
        let first = lanes.reserve(all[0]);
        let second = lanes.reserve(all[0]).unwrap();
        assert_eq!(
            second - first.unwrap_or_else(Instant::now),
            Duration::from_millis(50)
        );
        assert_eq!(lanes.slowest(None).0, 0, "started, not throttled");
        answers(&lanes, &all, 40, 2).await;
        for c in &all {
            assert_eq!(
                lanes.on_throttle(*c, Duration::from_secs(1), None),
                Scope::Customer
            );
        }
        assert_eq!(lanes.slowest(None).0, 4);
        assert!(lanes.paused_until(all[3]).is_some());
    }

    /// A batch answered partly 429 cuts the customer's batches to what the server took; 429s
    /// of a batch grown beyond what it took whole are the size's, not the pace's; clean
    /// batches grow the size back, never beyond `--batch`.
    #[tokio::test(start_paused = true)]
    async fn batches_shrink_to_what_the_server_took_and_grow_back() {
        let lanes = Lanes::new(None);
        let c = customer(1);
        assert_eq!(lanes.batch_size(c, 20), 20);
        assert!(
            !lanes.batch_answered(c, 20, 0, 20),
            "clean: nothing changes"
        );
        assert_eq!(lanes.batch_size(c, 20), 20);
        assert!(
            !lanes.batch_answered(c, 20, 15, 20),
            "the first cut may be the pace's"
        );
        assert_eq!(lanes.batch_size(c, 20), 5);
        assert!(!lanes.batch_answered(c, 5, 5, 20), "none taken: the pace's");
        assert_eq!(lanes.batch_size(c, 20), 5);
        for _ in 0..BATCHES_BEFORE_GROWING {
            assert_eq!(lanes.batch_size(c, 20), 5);
            lanes.batch_answered(c, 5, 0, 20);
        }
        assert_eq!(lanes.batch_size(c, 20), 6);
        assert!(
            lanes.batch_answered(c, 6, 1, 20),
            "grown beyond 5: the size's"
        );
        assert_eq!(lanes.batch_size(c, 20), 5);
        assert!(
            !lanes.batch_answered(c, 5, 1, 20),
            "the size taken before: the pace's"
        );
        assert_eq!(lanes.batch_size(c, 20), 4);
        for _ in 0..BATCHES_BEFORE_GROWING * 40 {
            let n = lanes.batch_size(c, 20);
            lanes.batch_answered(c, n, 0, 20);
        }
        assert_eq!(lanes.batch_size(c, 20), 20);
        assert_eq!(lanes.batch_size(c, 8), 8, "never above --batch");
        assert_eq!(
            lanes.batch_size(customer(2), 20),
            20,
            "other customers untouched"
        );
    }

    /// `x-ms-throttle-scope` says which limit a 429 hit, over any judgement: the tenant's own
    /// (even for a target judged by spread), or the app's across tenants (even per tenant).
    #[tokio::test(start_paused = true)]
    async fn the_servers_throttle_scope_decides() {
        let header = |v: &'static str| {
            let mut h = http::HeaderMap::new();
            h.insert("x-ms-throttle-scope", http::HeaderValue::from_static(v));
            Scope::from_headers(&h)
        };
        let tenant = "Tenant_Application/ReadWrite/9a3e2f1c-0000-4000-8000-000000000001/72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(header(tenant), Some(Scope::Customer));
        assert_eq!(header("Tenant/Write/x/y"), Some(Scope::Customer));
        assert_eq!(header("application/ReadWrite/x"), Some(Scope::Partner));
        assert_eq!(header("Galaxy/x"), None);
        assert_eq!(header(""), None);
        assert_eq!(Scope::from_headers(&http::HeaderMap::new()), None);

        let judged = Lanes::new(None);
        let (a, b) = (customer(1), customer(2));
        answers(&judged, &[a, b], 10, 2).await;
        let pause = Duration::from_secs(1);
        assert_eq!(
            judged.on_throttle(a, pause, Some(Scope::Customer)),
            Scope::Customer
        );
        assert!(judged.paused_until(a).is_some() && judged.paused_until(b).is_none());
        let mut per_tenant = Lanes::new(None);
        per_tenant.set_per_tenant(None);
        assert_eq!(
            per_tenant.on_throttle(a, pause, Some(Scope::Partner)),
            Scope::Partner
        );
        assert_eq!(per_tenant.len(), 0, "no lane of its own");
    }
}
