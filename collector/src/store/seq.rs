//! Duplicate detection by (device, sequence number).
//!
//! An agent keeps several batches in flight and resends what was not acknowledged, so batches
//! arrive out of order and sometimes twice. [`SeqWindow`] remembers the highest sequence number
//! committed and which of the [`WINDOW`] numbers below it were committed too. A batch is new if
//! it is above the mark, or inside the window and not yet seen. Anything older than the window
//! counts as a duplicate: an agent never has that many batches in flight.

/// How many sequence numbers below the high-water mark are tracked individually.
pub const WINDOW: u64 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// Encoded size of a [`SeqWindow`].
pub const ENCODED_LEN: usize = 8 + 8 * WORDS;

/// The committed sequence numbers of one device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeqWindow {
    /// Highest committed sequence number plus one; 0 when nothing was committed yet.
    next: u64,
    /// Bit i set: `next - 1 - i` was committed.
    seen: [u64; WORDS],
}

impl SeqWindow {
    /// Whether `seq` was not committed before (and may be).
    pub fn is_new(&self, seq: u64) -> bool {
        if seq >= self.next {
            return true;
        }
        let back = self.next - 1 - seq;
        back < WINDOW && !self.bit(back)
    }

    /// Records `seq` as committed. Call only after [`is_new`](Self::is_new) said yes.
    pub fn mark(&mut self, seq: u64) {
        if seq >= self.next {
            let shift = seq - self.next + 1;
            self.shift(shift);
            self.next = seq.saturating_add(1);
            self.set(0);
        } else {
            let back = self.next - 1 - seq;
            if back < WINDOW {
                self.set(back);
            }
        }
    }

    /// Unites `other` into this window (a device's windows from two stores): the later
    /// high-water mark wins, and every number either marked that its window still reaches stays
    /// marked, so a batch committed by either store is a duplicate afterwards.
    pub fn merge(&mut self, other: &SeqWindow) {
        let older = if other.next > self.next { std::mem::replace(self, other.clone()) } else { other.clone() };
        for back in 0..WINDOW.min(older.next) {
            if older.bit(back) {
                self.mark(older.next - 1 - back);
            }
        }
    }

    /// Highest committed sequence number, if any.
    pub fn high(&self) -> Option<u64> {
        self.next.checked_sub(1)
    }

    fn bit(&self, back: u64) -> bool {
        self.seen[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    fn set(&mut self, back: u64) {
        self.seen[(back / 64) as usize] |= 1 << (back % 64);
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.seen[s]);
            let lo = src.and_then(|s| s.checked_sub(1)).map_or(0, |s| self.seen[s]);
            self.seen[i] = if bits == 0 { hi } else { (hi << bits) | (lo >> (64 - bits)) };
        }
    }

    /// Fixed-size big-endian encoding.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[..8].copy_from_slice(&self.next.to_be_bytes());
        for (i, w) in self.seen.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Decodes [`encode`](Self::encode)'s output; `None` if the length is wrong.
    pub fn decode(bytes: &[u8]) -> Option<SeqWindow> {
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut w = SeqWindow { next: word(0), seen: [0; WORDS] };
        for i in 0..WORDS {
            w.seen[i] = word(8 + 8 * i);
        }
        Some(w)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn in_order_and_duplicates() {
        let mut w = SeqWindow::default();
        for s in 0..3000 {
            assert!(w.is_new(s));
            w.mark(s);
            assert!(!w.is_new(s));
        }
        assert_eq!(w.high(), Some(2999));
        assert!(!w.is_new(0), "far below the window counts as duplicate");
    }

    #[test]
    fn out_of_order_inside_the_window_is_accepted_once() {
        let mut w = SeqWindow::default();
        w.mark(10);
        assert!(w.is_new(5));
        w.mark(5);
        assert!(!w.is_new(5));
        assert!(w.is_new(9));
        w.mark(200);
        assert!(w.is_new(9) && !w.is_new(10) && !w.is_new(5));
    }

    #[test]
    fn merge_keeps_every_number_either_window_marked() {
        let (mut a, mut b) = (SeqWindow::default(), SeqWindow::default());
        for s in [1, 3, 5] {
            a.mark(s);
        }
        for s in [2, 3, 2000] {
            b.mark(s);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.high(), Some(2000));
        // 1, 3 and 5 are too far below 2000 for the window: duplicates, as for any store.
        assert!(!ab.is_new(2000) && ab.is_new(1999) && ab.is_new(2001) && !ab.is_new(5));
        let mut c = SeqWindow::default();
        c.mark(1000);
        c.merge(&a);
        for s in [1, 3, 5, 1000] {
            assert!(!c.is_new(s), "{s}");
        }
        assert!(c.is_new(2) && c.is_new(999));
        let before = c.clone();
        c.merge(&before);
        assert_eq!(c, before);
    }

    #[test]
    fn encoding_round_trips() {
        let mut w = SeqWindow::default();
        for s in [3u64, 700, 64, 65, 1023, 1500] {
            w.mark(s);
        }
        assert_eq!(SeqWindow::decode(&w.encode()).unwrap(), w);
        assert_eq!(SeqWindow::decode(&[1, 2, 3]), None);
    }

    proptest! {
        /// Against a model that remembers everything: inside the window the answers agree.
        #[test]
        fn agrees_with_a_perfect_memory(seqs in proptest::collection::vec(0u64..3000, 1..400)) {
            let mut w = SeqWindow::default();
            let mut seen = BTreeSet::new();
            for s in seqs {
                let high = seen.iter().next_back().copied();
                let in_window = high.is_none_or(|h| s + WINDOW > h);
                if in_window {
                    prop_assert_eq!(w.is_new(s), !seen.contains(&s), "seq {}", s);
                } else {
                    prop_assert!(!w.is_new(s));
                }
                if w.is_new(s) {
                    w.mark(s);
                    seen.insert(s);
                }
            }
        }
    }
}
