//! The scheduler between the reader and the workers, where the customer tenant is the unit of
//! scheduling: a feeder task keeps a bounded look-ahead of rows per customer, and each worker
//! takes the next row, round-robin across customers, of a customer that may send now: its
//! lane is not paused or waiting for its pace, and fewer of its rows are in flight than its
//! fair share of the workers (so one customer's slow answers cannot hold every worker). A
//! file grouped by customer is thus sent interleaved, and a throttled customer waits without
//! holding up the others. Uses `core`, `input` and `send::lanes`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use crate::core::run_state::Stop;
use crate::input::interleave::Interleaver;
use crate::input::rows::Row;
use crate::send::lanes::Lanes;

/// Rows held ahead of the workers. 4096 rows are a few MB whatever the file's size, and
/// enough to interleave the customers a partner-wide limit needs: with 15/s per partner and
/// 3/s per customer, 5 customers must be in flight, which 4096 rows cover for customers of up
/// to ~800 rows each.
pub const LOOK_AHEAD: usize = 4096;

/// Rows go out before the look-ahead is full (or the input ends) only to a worker that has
/// waited this long: the input is slow (a password synced to disk per row, say). Otherwise a
/// file grouped by customer would start with the first customer's rows alone.
const FILL_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Debug)]
struct State {
    look: Interleaver<Uuid, Row>,
    /// Rows taken by a worker and not yet finished, per customer (no entry at zero).
    in_flight: HashMap<Uuid, usize>,
    /// The reader has sent its last row (or the run stopped).
    closed: bool,
}

/// What a worker gets when it asks for a row.
enum Take {
    Row(Box<Row>),
    /// Nothing may go now; the earliest instant a waiting customer's lane opens, if known.
    Wait(Option<Instant>),
    /// Every row has been handed out.
    Done,
    /// The look-ahead is still filling: wait for more rows (up to `FILL_WAIT`).
    Filling,
}

/// The rows between the reader and the workers.
#[derive(Debug)]
pub struct Scheduler {
    state: Mutex<State>,
    workers: usize,
    /// A customer with rows in flight gets no more until they finish (batches: one request of
    /// a customer at a time, so its rows reach the server at the pace they were given).
    one_at_a_time: bool,
    /// A row arrived, a row finished, or the input ended: waiting workers look again.
    wake: Notify,
    /// The look-ahead has room again: the feeder reads on.
    room: Notify,
}

impl Scheduler {
    /// A scheduler for `workers` workers, fed from `rows` by a task it spawns (which ends at
    /// the last row or when the run stops).
    pub fn start(rows: mpsc::Receiver<Row>, workers: usize, stop: Arc<Stop>) -> Arc<Scheduler> {
        Scheduler::with_look_ahead(rows, workers, stop, LOOK_AHEAD, false)
    }

    /// As [`Scheduler::start`], for workers that take a customer's rows in batches
    /// ([`Scheduler::take_more`]): a customer with rows in flight waits until they finish.
    pub fn start_batched(
        rows: mpsc::Receiver<Row>,
        workers: usize,
        stop: Arc<Stop>,
    ) -> Arc<Scheduler> {
        Scheduler::with_look_ahead(rows, workers, stop, LOOK_AHEAD, true)
    }

    fn with_look_ahead(
        rows: mpsc::Receiver<Row>,
        workers: usize,
        stop: Arc<Stop>,
        look_ahead: usize,
        one_at_a_time: bool,
    ) -> Arc<Scheduler> {
        let scheduler = Arc::new(Scheduler {
            state: Mutex::new(State {
                look: Interleaver::new(look_ahead),
                in_flight: HashMap::new(),
                closed: false,
            }),
            workers: workers.max(1),
            one_at_a_time,
            wake: Notify::new(),
            room: Notify::new(),
        });
        tokio::spawn(scheduler.clone().feed(rows, stop));
        scheduler
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("scheduler lock")
    }

    /// Moves rows from the reader into the look-ahead while it has room.
    async fn feed(self: Arc<Self>, mut rows: mpsc::Receiver<Row>, stop: Arc<Stop>) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.lock().look.is_full() {
                tokio::select! {
                    _ = room => continue,
                    _ = stop.stopping() => break,
                }
            }
            let row = tokio::select! {
                row = rows.recv() => row,
                _ = stop.stopping() => None,
            };
            let Some(row) = row else { break };
            let customer = row.customer;
            // Room was checked above and only this task adds rows.
            let _ = self.lock().look.push(customer, row);
            self.wake.notify_one();
        }
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    /// The next row to send, waiting until one may go; None when every row has been handed
    /// out or the run stops. Call `finished` with its customer when the row is done.
    pub async fn next(&self, lanes: &Lanes, stop: &Stop) -> Option<Row> {
        let waiting_since = Instant::now();
        loop {
            if stop.is_stopping() {
                return None;
            }
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let patient = waiting_since.elapsed() >= FILL_WAIT;
            let share = if self.one_at_a_time { 1 } else { self.workers };
            let until = match self.lock().take(lanes, share, patient) {
                Take::Row(row) => {
                    self.room.notify_one();
                    return Some(*row);
                }
                Take::Done => {
                    // The others waiting are done too.
                    self.wake.notify_waiters();
                    return None;
                }
                Take::Wait(until) => until,
                Take::Filling => Some(waiting_since + FILL_WAIT),
            };
            tokio::select! {
                _ = wake => {}
                _ = sleep_until(until) => {}
                _ = stop.stopping() => return None,
            }
        }
    }

    /// Up to `n` more of `customer`'s rows waiting in the look-ahead, at once and out of turn
    /// (to go with a row `next` gave, in one batch request). Each is in flight like a row
    /// `next` gave: call `finished` for each.
    pub fn take_more(&self, customer: Uuid, n: usize) -> Vec<Row> {
        let rows = {
            let mut state = self.lock();
            let rows = state.look.take(&customer, n);
            if !rows.is_empty() {
                *state.in_flight.entry(customer).or_default() += rows.len();
            }
            rows
        };
        if !rows.is_empty() {
            self.room.notify_one();
        }
        rows
    }

    /// A row of `customer` taken by `next` is done: its place in the customer's share is free.
    pub fn finished(&self, customer: Uuid) {
        {
            let mut state = self.lock();
            if let Some(n) = state.in_flight.get_mut(&customer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.in_flight.remove(&customer);
                }
            }
        }
        self.wake.notify_one();
    }
}

impl State {
    /// The next row of a customer that may send now, round-robin; rows go out only from a
    /// full look-ahead, or the input's end, unless the worker has been `patient`.
    fn take(&mut self, lanes: &Lanes, workers: usize, patient: bool) -> Take {
        if self.look.is_empty() {
            return match self.closed {
                true => Take::Done,
                false => Take::Wait(None),
            };
        }
        if !(self.closed || self.look.is_full() || patient) {
            return Take::Filling;
        }
        let State {
            look, in_flight, ..
        } = self;
        let waiting_elsewhere = in_flight.keys().filter(|c| !look.contains(c)).count();
        let customers = look.key_count() + waiting_elsewhere;
        let share = workers.div_ceil(customers.max(1));
        let paced = !lanes.is_empty();
        let mut opens: Option<Instant> = None;
        let picked = look.pop_first(|customer| {
            if in_flight.get(customer).is_some_and(|n| *n >= share) {
                return false;
            }
            match paced.then(|| lanes.ready_at(*customer)).flatten() {
                Some(at) => {
                    opens = Some(opens.map_or(at, |o| o.min(at)));
                    false
                }
                None => true,
            }
        });
        match picked {
            Some((customer, row)) => {
                *in_flight.entry(customer).or_default() += 1;
                Take::Row(Box::new(row))
            }
            None => Take::Wait(opens),
        }
    }
}

async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn customer(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn row(c: u8, line: u64) -> Row {
        Row {
            line,
            customer: customer(c),
            user: Uuid::from_u128(u128::from(line)),
            changes: Default::default(),
            hash: line,
            context: Default::default(),
        }
    }

    /// A scheduler over `rows` (all sent, the input closed) for `workers` workers.
    async fn loaded(rows: Vec<Row>, workers: usize) -> Arc<Scheduler> {
        let (tx, rx) = mpsc::channel(rows.len().max(1));
        for r in rows {
            tx.send(r).await.unwrap();
        }
        drop(tx);
        let s = Scheduler::with_look_ahead(rx, workers, Arc::new(Stop::default()), 64, false);
        // Let the feeder take everything.
        while !s.lock().closed {
            tokio::task::yield_now().await;
        }
        s
    }

    #[tokio::test(start_paused = true)]
    async fn grouped_rows_go_out_round_robin() {
        let rows = (0..12).map(|i| row(i / 4 + 1, i.into())).collect();
        let s = loaded(rows, 16).await;
        let (lanes, stop) = (Lanes::new(None), Stop::default());
        let mut order = Vec::new();
        while let Some(r) = s.next(&lanes, &stop).await {
            order.push(r.customer);
            s.finished(r.customer);
        }
        let expected: Vec<Uuid> = (0..4).flat_map(|_| (1..=3).map(customer)).collect();
        assert_eq!(order, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_customer_holds_at_most_its_share_of_the_workers() {
        // Customer 1 has many rows and answers slowly (never finishes); customer 2 is quick.
        let mut rows: Vec<Row> = (0..20).map(|i| row(1, i)).collect();
        rows.extend((20..30).map(|i| row(2, i)));
        let s = loaded(rows, 4).await;
        let (lanes, stop) = (Lanes::new(None), Stop::default());
        let mut held = 0;
        for _ in 0..12 {
            let r = s.next(&lanes, &stop).await.unwrap();
            if r.customer == customer(1) {
                held += 1; // never finished: its worker is stuck
            } else {
                s.finished(r.customer);
            }
        }
        assert_eq!(held, 2, "half of 4 workers for each of 2 customers");
        // Customer 2's rows all went while customer 1 held its two.
        assert_eq!(s.lock().in_flight.get(&customer(1)), Some(&2));
        // With nothing of customer 2 left, customer 1 gets the workers that are free.
        let r = tokio::time::timeout(Duration::from_secs(1), s.next(&lanes, &stop)).await;
        assert_eq!(r.unwrap().unwrap().customer, customer(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_customer_waits_while_the_others_go() {
        let rows = (0..6).map(|i| row(i as u8 % 2 + 1, i)).collect();
        let s = loaded(rows, 8).await;
        let stop = Stop::default();
        let lanes = Lanes::new(None);
        // Customer 1 alone is throttled: its lane pauses for 5 s.
        lanes.on_success(customer(1));
        lanes.on_throttle(customer(1), Duration::ZERO, None);
        assert_eq!(
            lanes.on_throttle(customer(1), Duration::from_secs(5), None),
            crate::send::lanes::Scope::Customer
        );
        let start = Instant::now();
        let mut got = Vec::new();
        while let Some(r) = s.next(&lanes, &stop).await {
            got.push((r.customer, start.elapsed()));
            s.finished(r.customer);
        }
        let twos: Vec<_> = got.iter().take(3).map(|g| g.0).collect();
        assert_eq!(twos, vec![customer(2); 3], "{got:?}");
        assert!(got.iter().take(3).all(|g| g.1.is_zero()));
        for (c, at) in &got[3..] {
            assert_eq!(*c, customer(1));
            assert!(*at >= Duration::from_secs(5), "{at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rows_wait_for_the_look_ahead_to_fill_unless_the_input_is_slow() {
        let (tx, rx) = mpsc::channel(8);
        let s = Scheduler::with_look_ahead(rx, 4, Arc::new(Stop::default()), 4, false);
        let (lanes, stop) = (Lanes::new(None), Stop::default());
        // Two of customer 1's rows, not yet a full look-ahead: held while more may come.
        tx.send(row(1, 1)).await.unwrap();
        tx.send(row(1, 2)).await.unwrap();
        let early = tokio::time::timeout(FILL_WAIT / 2, s.next(&lanes, &stop)).await;
        assert!(early.is_err(), "handed out before the look-ahead filled");
        // Customer 2's rows fill it: they interleave with customer 1's.
        tx.send(row(2, 3)).await.unwrap();
        tx.send(row(2, 4)).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..4 {
            let r = s.next(&lanes, &stop).await.unwrap();
            order.push(r.line);
            s.finished(r.customer);
        }
        assert_eq!(order, [1, 3, 2, 4]);
        // A slow input: a lone row goes out after the worker has waited FILL_WAIT.
        let started = Instant::now();
        tx.send(row(3, 5)).await.unwrap();
        assert_eq!(s.next(&lanes, &stop).await.unwrap().line, 5);
        assert_eq!(started.elapsed(), FILL_WAIT);
        drop(tx);
        assert!(s.next(&lanes, &stop).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn more_rows_of_one_customer_are_taken_at_once_and_count_in_flight() {
        let rows = (0..10).map(|i| row(i as u8 % 2 + 1, i)).collect();
        let s = loaded(rows, 4).await;
        let (lanes, stop) = (Lanes::new(None), Stop::default());
        let first = s.next(&lanes, &stop).await.unwrap();
        assert_eq!(first.customer, customer(1));
        let more: Vec<u64> = s.take_more(customer(1), 3).iter().map(|r| r.line).collect();
        assert_eq!(more, [2, 4, 6]);
        assert_eq!(s.lock().in_flight.get(&customer(1)), Some(&4));
        assert_eq!(s.take_more(customer(1), 5).len(), 1, "only one left");
        assert!(s.take_more(customer(1), 5).is_empty());
        for _ in 0..5 {
            s.finished(customer(1));
        }
        assert_eq!(s.lock().in_flight.get(&customer(1)), None);
        // Customer 2's rows all still go, in order.
        let mut rest = Vec::new();
        while let Some(r) = s.next(&lanes, &stop).await {
            rest.push(r.line);
            s.finished(r.customer);
        }
        assert_eq!(rest, [1, 3, 5, 7, 9]);
    }

    #[tokio::test(start_paused = true)]
    async fn batched_a_customer_with_rows_in_flight_waits_for_them() {
        let rows: Vec<Row> = (0..6).map(|i| row(i as u8 % 2 + 1, i)).collect();
        let (tx, rx) = mpsc::channel(6);
        for r in rows {
            tx.send(r).await.unwrap();
        }
        drop(tx);
        let s = Scheduler::with_look_ahead(rx, 8, Arc::new(Stop::default()), 64, true);
        let (lanes, stop) = (Lanes::new(None), Stop::default());
        let a = s.next(&lanes, &stop).await.unwrap();
        let b = s.next(&lanes, &stop).await.unwrap();
        assert_ne!(a.customer, b.customer);
        // Both customers have a row in flight: nothing more goes, however many workers.
        let third = tokio::time::timeout(Duration::from_secs(5), s.next(&lanes, &stop)).await;
        assert!(third.is_err(), "{third:?}");
        s.finished(a.customer);
        let c = s.next(&lanes, &stop).await.unwrap();
        assert_eq!(c.customer, a.customer);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_waiting() {
        let (_tx, rx) = mpsc::channel::<Row>(1);
        let stop = Arc::new(Stop::default());
        let s = Scheduler::start(rx, 2, stop.clone());
        let lanes = Lanes::new(None);
        let waiting = {
            let (s, stop) = (s.clone(), stop.clone());
            tokio::spawn(async move { s.next(&lanes, &stop).await.is_none() })
        };
        stop.stop(crate::core::run_state::StopReason::Interrupted);
        assert!(waiting.await.unwrap());
    }
}
