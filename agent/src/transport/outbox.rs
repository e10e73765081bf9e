//! Batches between "gathered" and "acknowledged", as plain data: no sockets, no clock.
//!
//! Every batch is held, already framed, until the collector acknowledges it. A batch is either
//! waiting or in flight on a stream. When a stream or the connection fails, in-flight batches go
//! back to waiting and are resent in sequence order. The outbox is bounded: when full, the oldest
//! batch is dropped and counted — fresh data matters more to a traffic light than old data, and
//! an agent that grows without bound is the complaint this project exists to answer.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A framed batch, shared between the outbox and the stream sending it.
pub type Frame = Arc<[u8]>;

#[derive(Debug)]
struct Entry {
    frame: Frame,
    in_flight: bool,
}

/// The bounded queue of unacknowledged batches, ordered by sequence number.
#[derive(Debug)]
pub struct Outbox {
    entries: BTreeMap<u64, Entry>,
    in_flight: usize,
    capacity: usize,
    dropped: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` (at least 1) batches.
    pub fn new(capacity: usize) -> Outbox {
        Outbox { entries: BTreeMap::new(), in_flight: 0, capacity: capacity.max(1), dropped: 0 }
    }

    /// Adds a batch. When full, drops the oldest batch first and returns its sequence number.
    pub fn push(&mut self, seq: u64, frame: Frame) -> Option<u64> {
        let mut dropped = None;
        if self.entries.len() >= self.capacity
            && let Some((old, entry)) = self.entries.pop_first()
        {
            // An in-flight batch's stream may still succeed; its ack then finds nothing to release.
            if entry.in_flight {
                self.in_flight -= 1;
            }
            self.dropped += 1;
            dropped = Some(old);
        }
        if let Some(old) = self.entries.insert(seq, Entry { frame, in_flight: false })
            && old.in_flight
        {
            self.in_flight -= 1;
        }
        dropped
    }

    /// The oldest waiting batch, marked in flight, unless `max_in_flight` are out already.
    pub fn next_to_send(&mut self, max_in_flight: usize) -> Option<(u64, Frame)> {
        if self.in_flight >= max_in_flight {
            return None;
        }
        // In-flight entries are skipped; there are at most `max_in_flight` of them.
        let (seq, entry) = self.entries.iter_mut().find(|(_, e)| !e.in_flight)?;
        entry.in_flight = true;
        self.in_flight += 1;
        Some((*seq, entry.frame.clone()))
    }

    /// Releases an acknowledged (or rejected) batch. False if it was not held (dropped already).
    pub fn release(&mut self, seq: u64) -> bool {
        match self.entries.remove(&seq) {
            Some(e) => {
                if e.in_flight {
                    self.in_flight -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Puts an in-flight batch back to waiting (its stream failed).
    pub fn requeue(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq)
            && e.in_flight
        {
            e.in_flight = false;
            self.in_flight -= 1;
        }
    }

    /// Puts every in-flight batch back to waiting (the connection is gone).
    pub fn requeue_all(&mut self) {
        for e in self.entries.values_mut() {
            e.in_flight = false;
        }
        self.in_flight = 0;
    }

    /// Batches held, waiting or in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Batches dropped because the outbox was full, since it was created.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(b: u8) -> Frame {
        Arc::from(vec![b])
    }

    fn send_all(o: &mut Outbox, max: usize) -> Vec<u64> {
        std::iter::from_fn(|| o.next_to_send(max).map(|(s, _)| s)).collect()
    }

    #[test]
    fn batches_stay_until_released_and_in_flight_is_bounded() {
        let mut o = Outbox::new(100);
        for s in 1..=10 {
            o.push(s, frame(s as u8));
        }
        assert_eq!(send_all(&mut o, 8), (1..=8).collect::<Vec<_>>());
        assert_eq!(o.in_flight(), 8);
        assert!(o.release(3));
        assert!(!o.release(3));
        assert_eq!(send_all(&mut o, 8), [9]);
        assert_eq!(o.len(), 9);
    }

    #[test]
    fn failed_batches_are_resent_in_sequence_order() {
        let mut o = Outbox::new(100);
        for s in 1..=5 {
            o.push(s, frame(0));
        }
        send_all(&mut o, 3); // 1, 2, 3 in flight
        o.release(2);
        o.requeue_all();
        o.push(6, frame(0));
        assert_eq!(o.in_flight(), 0);
        assert_eq!(send_all(&mut o, 8), [1, 3, 4, 5, 6]);
        o.requeue(4);
        assert_eq!(send_all(&mut o, 8), [4]);
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts() {
        let mut o = Outbox::new(3);
        for s in 1..=3 {
            assert_eq!(o.push(s, frame(0)), None);
        }
        send_all(&mut o, 1); // 1 in flight
        assert_eq!(o.push(4, frame(0)), Some(1));
        assert_eq!(o.push(5, frame(0)), Some(2));
        assert_eq!((o.len(), o.in_flight(), o.dropped()), (3, 0, 2));
        // The dropped batch's late ack releases nothing.
        assert!(!o.release(1));
        assert_eq!(send_all(&mut o, 8), [3, 4, 5]);
    }
}
