//! Which spooled batches are in flight and which come next, as plain data: no sockets, no clock.
//!
//! The batches themselves live in the [`Spool`](crate::spool::Spool); the outbox only keeps the
//! sequence numbers in flight and a resend position, so its memory does not grow with the spool.
//! When a stream or the connection fails, the position moves back and the spool is walked again
//! in sequence order: every unacknowledged batch is resent.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Largest distance between the oldest and the newest batch in flight: half the collector's
/// dedupe window (`store::seq::WINDOW` = 1024).
pub const MAX_SPAN: u64 = 512;

/// A framed batch, shared between the transport and the stream sending it.
pub type Frame = Arc<[u8]>;

/// The batches in flight and the position from which the spool is read next.
#[derive(Debug, Default)]
pub struct Outbox {
    in_flight: BTreeSet<u64>,
    next: u64,
}

impl Outbox {
    /// Nothing in flight; the spool is read from its start.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// The lowest sequence number worth looking for in the spool.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Whether `seq` is in flight (skip it when reading the spool).
    pub fn is_in_flight(&self, seq: u64) -> bool {
        self.in_flight.contains(&seq)
    }

    /// Whether another batch may go out.
    pub fn has_room(&self, max_in_flight: usize) -> bool {
        self.in_flight.len() < max_in_flight
    }

    /// Whether `seq` may go out now: it must not be more than [`MAX_SPAN`] above the oldest
    /// batch in flight. The collector treats numbers far below its high-water mark as
    /// duplicates; if a much newer batch (after restarts skipped numbers) were committed
    /// first, an older one still in flight would be taken for one and lost.
    pub fn within_span(&self, seq: u64) -> bool {
        self.in_flight.first().is_none_or(|lo| seq.saturating_sub(*lo) < MAX_SPAN)
    }

    /// Marks a batch read from the spool as in flight.
    pub fn sent(&mut self, seq: u64) {
        self.in_flight.insert(seq);
        self.next = self.next.max(seq.saturating_add(1));
    }

    /// A batch was acknowledged (or refused for good). False if it was not in flight.
    pub fn release(&mut self, seq: u64) -> bool {
        self.in_flight.remove(&seq)
    }

    /// A batch's stream failed: it goes out again, in order.
    pub fn requeue(&mut self, seq: u64) {
        if self.in_flight.remove(&seq) {
            self.next = self.next.min(seq);
        }
    }

    /// The connection is gone: everything unacknowledged goes out again, from the start.
    pub fn requeue_all(&mut self) {
        self.in_flight.clear();
        self.next = 0;
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Simulates the spool as a set of seqs.
    fn send_all(o: &mut Outbox, spool: &BTreeSet<u64>, max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while o.has_room(max) {
            let Some(&seq) = spool.range(o.position()..).find(|s| !o.is_in_flight(**s)) else { break };
            o.sent(seq);
            out.push(seq);
        }
        out
    }

    #[test]
    fn batches_far_above_the_oldest_in_flight_wait() {
        let mut o = Outbox::new();
        o.sent(10);
        assert!(o.within_span(10 + MAX_SPAN - 1));
        assert!(!o.within_span(10 + MAX_SPAN));
        o.release(10);
        assert!(o.within_span(10 + MAX_SPAN));
    }

    #[test]
    fn in_flight_is_bounded_and_failed_batches_are_resent_in_order() {
        let mut spool: BTreeSet<u64> = (1..=10).collect();
        let mut o = Outbox::new();
        assert_eq!(send_all(&mut o, &spool, 8), (1..=8).collect::<Vec<_>>());
        assert!(o.release(3));
        spool.remove(&3);
        assert!(!o.release(3));
        assert_eq!(send_all(&mut o, &spool, 8), [9]);
        o.requeue(5);
        assert_eq!(send_all(&mut o, &spool, 8), [5]);
        o.release(2);
        spool.remove(&2);
        o.requeue_all();
        assert_eq!(o.in_flight(), 0);
        assert_eq!(send_all(&mut o, &spool, 100), [1, 4, 5, 6, 7, 8, 9, 10]);
    }
}
