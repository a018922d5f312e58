//! The bounded look-ahead that takes rows fairly across customers: rows are kept per customer
//! (up to a fixed number in all) and handed out round-robin over the customers, so a file
//! grouped by customer reaches the workers as customer A, B, C, A, B, C, ... Pure: uses only
//! `std`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Rows held per key (a customer), taken out one key at a time in turn.
#[derive(Debug)]
pub struct Interleaver<K, T> {
    capacity: usize,
    len: usize,
    /// Each key with rows waiting, in their turn order; a key appears once.
    turns: VecDeque<K>,
    lanes: HashMap<K, VecDeque<T>>,
}

impl<K: Hash + Eq + Copy, T> Interleaver<K, T> {
    /// A look-ahead holding at most `capacity` rows (at least one).
    pub fn new(capacity: usize) -> Self {
        Interleaver {
            capacity: capacity.max(1),
            len: 0,
            turns: VecDeque::new(),
            lanes: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more rows fit: pop one before the next push.
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Adds a row at the end of its key's lane; a new key takes its turn after those waiting.
    /// A full look-ahead hands the row back.
    pub fn push(&mut self, key: K, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        let lane = self.lanes.entry(key).or_default();
        if lane.is_empty() {
            self.turns.push_back(key);
        }
        lane.push_back(item);
        self.len += 1;
        Ok(())
    }

    /// The keys with rows waiting, in turn order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.turns.iter()
    }

    /// How many keys have rows waiting.
    pub fn key_count(&self) -> usize {
        self.lanes.len()
    }

    /// Whether `key` has rows waiting.
    pub fn contains(&self, key: &K) -> bool {
        self.lanes.contains_key(key)
    }

    /// The oldest row of the first key, in turn order, that `ready` accepts; that key then
    /// waits behind the others, and the keys passed over keep their turn.
    pub fn pop_first(&mut self, mut ready: impl FnMut(&K) -> bool) -> Option<(K, T)> {
        let at = self.turns.iter().position(&mut ready)?;
        let key = self.turns.remove(at)?;
        let lane = self.lanes.get_mut(&key)?;
        let item = lane.pop_front()?;
        if lane.is_empty() {
            self.lanes.remove(&key);
        } else {
            self.turns.push_back(key);
        }
        self.len -= 1;
        Some((key, item))
    }

    /// Up to `n` of `key`'s oldest rows, out of turn (a batch of one customer's rows); the key
    /// keeps its place in the turns while it has rows left.
    pub fn take(&mut self, key: &K, n: usize) -> Vec<T> {
        let Some(lane) = self.lanes.get_mut(key) else {
            return Vec::new();
        };
        let taken: Vec<T> = lane.drain(..n.min(lane.len())).collect();
        if lane.is_empty() {
            self.lanes.remove(key);
            self.turns.retain(|k| k != key);
        }
        self.len -= taken.len();
        taken
    }

    /// The oldest row of the key whose turn it is; that key then waits behind the others.
    pub fn pop(&mut self) -> Option<T> {
        let key = self.turns.pop_front()?;
        let lane = self.lanes.get_mut(&key)?;
        let item = lane.pop_front();
        if lane.is_empty() {
            self.lanes.remove(&key);
        } else {
            self.turns.push_back(key);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `customers` x `each` rows grouped by customer: (customer, index within the customer).
    fn grouped(customers: u32, each: u32) -> Vec<(u32, u32)> {
        (0..customers)
            .flat_map(|c| (0..each).map(move |i| (c, i)))
            .collect()
    }

    /// Feeds `rows` through a look-ahead of `capacity` as the reader does (pop only when full,
    /// then drain) and returns the order they came out in.
    fn through(capacity: usize, rows: &[(u32, u32)]) -> Vec<(u32, u32)> {
        let mut look = Interleaver::new(capacity);
        let mut out = Vec::new();
        for &(c, i) in rows {
            if look.is_full() {
                out.push(look.pop().unwrap());
            }
            look.push(c, (c, i)).unwrap();
            assert!(look.len() <= capacity);
        }
        while let Some(r) = look.pop() {
            out.push(r);
        }
        assert!(look.is_empty());
        out
    }

    #[test]
    fn grouped_input_comes_out_round_robin() {
        let out = through(64, &grouped(4, 15));
        let customers: Vec<u32> = out.iter().map(|r| r.0).collect();
        for (n, round) in customers.chunks(4).enumerate() {
            assert_eq!(round, [0, 1, 2, 3], "round {n}: {customers:?}");
        }
        // Within a customer the file's order is kept.
        for c in 0..4 {
            let mine: Vec<u32> = out.iter().filter(|r| r.0 == c).map(|r| r.1).collect();
            assert_eq!(mine, (0..15).collect::<Vec<_>>());
        }
    }

    #[test]
    fn capacity_is_respected_and_a_full_look_ahead_refuses() {
        let mut look = Interleaver::new(3);
        for i in 0..3 {
            look.push(i % 2, i).unwrap();
        }
        assert!(look.is_full());
        assert_eq!(look.push(7, 99), Err(99));
        assert_eq!(look.len(), 3);
        assert_eq!(look.pop(), Some(0));
        assert!(look.push(7, 3).is_ok());
        assert_eq!(Interleaver::<u8, u8>::new(0).capacity, 1);
    }

    #[test]
    fn every_row_comes_out_exactly_once_whatever_the_capacity() {
        let mut rows = grouped(7, 13);
        // Interleave a shuffled tail too: the order of arrival must not lose or repeat rows.
        rows.extend((0..50).map(|i| ((i * 7919) % 5, 100 + i)));
        for capacity in [1, 2, 5, 16, 1000] {
            let mut out = through(capacity, &rows);
            assert_eq!(out.len(), rows.len(), "capacity {capacity}");
            out.sort();
            let mut want = rows.clone();
            want.sort();
            assert_eq!(out, want, "capacity {capacity}");
        }
    }

    #[test]
    fn a_look_ahead_smaller_than_a_customer_still_mixes_what_it_sees() {
        // 3 customers x 10 rows through 8: once the window spans two customers they alternate.
        let out = through(8, &grouped(3, 10));
        let first: Vec<u32> = out.iter().take(6).map(|r| r.0).collect();
        assert_eq!(first, [0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn a_single_customer_still_flows_in_file_order() {
        let out = through(4, &grouped(1, 20));
        assert_eq!(out, grouped(1, 20));
        let mut look = Interleaver::new(4);
        look.push(1, 'a').unwrap();
        assert_eq!(look.pop(), Some('a'));
        assert_eq!(look.pop(), None);
    }
}
