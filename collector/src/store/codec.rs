//! Bit streams and the number codes that blocks and packed rollups share.
//!
//! - [`Rice`]: an adaptive Golomb–Rice code for signed integers (zigzag, then a unary quotient
//!   and `k` low bits). `k` follows the mean of the recent magnitudes (LOCO-I's rule: the
//!   smallest `k` with `n << k >= a`), so a run of zeros costs one bit a number and noise costs
//!   about two bits over its entropy. Numbers too large for the unary part are escaped with
//!   [`ESCAPE_Q`] ones and written whole.
//! - [`Values`]: a series of f64 values. While values are decimals (`int / 10^scale` exactly,
//!   [`decimal`]), it codes the integers' residuals against a predictor — the previous value, or
//!   the previous value plus the previous delta for series that grow steadily, whichever has
//!   been cheaper lately — with [`Rice`]. A value that is not such a decimal (NaN, ±Inf, -0.0,
//!   subnormals, more than [`MAX_SCALE`] decimals) is escaped and written as its 64 bits. A
//!   block that starts with such a value uses Gorilla's XOR code throughout instead.
//!
//! Every state change depends only on numbers already coded, so the decoder follows the
//! encoder without side information, and the whole state fits in a fixed-size header: an
//! encoder resumes a stored stream without decoding it.

/// Most decimals a value may have to be coded as a decimal.
pub const MAX_SCALE: u8 = 9;
/// Unary ones that announce an escape.
pub const ESCAPE_Q: u32 = 24;
/// Largest integer magnitude kept exact by f64.
const MAX_EXACT: i64 = 1 << 53;

const POW10: [f64; 10] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const POW10_I: [i64; 10] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// Why a stream does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bit stream ends early or holds a code that cannot occur")]
pub struct StreamError;

/// `v` as `int / 10^scale` at `scale`, if that gives `v` back bit for bit.
pub fn decimal_at(v: f64, scale: u8) -> Option<i64> {
    let p = *POW10.get(usize::from(scale))?;
    let x = (v * p).round();
    if !x.is_finite() || x.abs() >= MAX_EXACT as f64 {
        return None;
    }
    let i = x as i64;
    ((i as f64 / p).to_bits() == v.to_bits()).then_some(i)
}

/// The smallest scale at which `v` is an exact decimal, with its integer.
pub fn decimal(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|s| decimal_at(v, s).map(|i| (s, i)))
}

fn from_decimal(i: i64, scale: u8) -> f64 {
    i as f64 / POW10[usize::from(scale.min(MAX_SCALE))]
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A bit stream being written: at most [`Piece`]s of 64 bits at a time.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    /// Bytes; the last may be partly used.
    pub buf: Vec<u8>,
    /// Bits written.
    pub bits: u64,
}

/// `(value, bits)`: the low `bits` bits of `value`, most significant first.
pub type Piece = (u64, u32);

impl BitWriter {
    /// A writer continuing `buf`, of which `bits` bits are used.
    pub fn resume(buf: Vec<u8>, bits: u64) -> BitWriter {
        BitWriter { buf, bits }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    pub fn write(&mut self, v: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            let used = (self.bits % 8) as u32;
            if used == 0 {
                self.buf.push(0);
            }
            let free = 8 - used;
            let take = free.min(left);
            let chunk = ((v >> (left - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            left -= take;
            self.bits += u64::from(take);
        }
    }

    /// Writes the bits of another stream.
    pub fn append(&mut self, other: &BitWriter) {
        let mut r = BitReader::new(&other.buf, other.bits);
        let mut left = other.bits;
        while left > 0 {
            let n = left.min(64) as u32;
            // `other` holds `other.bits` bits: the read cannot fail.
            self.write(r.read(n).unwrap_or(0), n);
            left -= u64::from(n);
        }
    }

    /// Writes planned pieces.
    pub fn put(&mut self, pieces: &[Piece]) {
        for &(v, n) in pieces {
            self.write(v, n);
        }
    }
}

/// A bit stream being read.
pub struct BitReader<'a> {
    stream: &'a [u8],
    pos: u64,
    end: u64,
}

impl<'a> BitReader<'a> {
    /// Reads `bits` bits of `stream`.
    pub fn new(stream: &'a [u8], bits: u64) -> BitReader<'a> {
        BitReader { stream, pos: 0, end: bits.min(stream.len() as u64 * 8) }
    }

    /// Bits read so far.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Whether every bit was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.end
    }

    /// The next `n` bits (n ≤ 64) without consuming them; bits past the end read as 0.
    fn peek(&self, n: u32) -> u64 {
        if n == 0 {
            return 0;
        }
        let at = (self.pos / 8) as usize;
        let window = match self.stream.get(at..at + 16) {
            Some(b) => <[u8; 16]>::try_from(b).unwrap_or([0; 16]),
            None => {
                // Near the end: pad with zeros.
                let mut w = [0u8; 16];
                let rest = self.stream.get(at..).unwrap_or_default();
                w[..rest.len().min(16)].copy_from_slice(&rest[..rest.len().min(16)]);
                w
            }
        };
        let w = u128::from_be_bytes(window) << (self.pos % 8);
        (w >> (128 - n)) as u64
    }

    /// Reads `n` bits (n ≤ 64).
    pub fn read(&mut self, n: u32) -> Result<u64, StreamError> {
        if self.pos + u64::from(n) > self.end {
            return Err(StreamError);
        }
        let v = self.peek(n);
        self.pos += u64::from(n);
        Ok(v)
    }

    /// Reads a two's-complement number of `n` bits.
    pub fn signed(&mut self, n: u32) -> Result<i64, StreamError> {
        let v = self.read(n)?;
        Ok(if n == 64 { v as i64 } else { ((v << (64 - n)) as i64) >> (64 - n) })
    }

    /// Counts ones up to the next zero (which it consumes), at most `max` (≤ 63).
    fn unary(&mut self, max: u32) -> Result<u32, StreamError> {
        let left = self.end - self.pos;
        let look = (u64::from(max) + 1).min(left) as u32;
        let ones = (!self.peek(look) << (64 - look.max(1))).leading_zeros().min(look);
        let q = ones.min(max);
        // q ones, and the zero after them unless `max` was reached.
        let used = if q < max { q + 1 } else { q };
        if u64::from(used) > left {
            return Err(StreamError);
        }
        self.pos += u64::from(used);
        Ok(q)
    }
}

/// Adaptive Rice coder state: the sum of recent magnitudes and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rice {
    /// Sum of recent zigzagged magnitudes (halved with `n`).
    pub a: u32,
    /// Numbers in `a`.
    pub n: u8,
}

impl Default for Rice {
    fn default() -> Self {
        Rice { a: 4, n: 1 }
    }
}

const RICE_RESET: u8 = 16;

impl Rice {
    fn k(self) -> u32 {
        let mut k = 0;
        while k < 60 && (u64::from(self.n) << k) < u64::from(self.a) {
            k += 1;
        }
        k
    }

    fn update(&mut self, u: u64) {
        self.a = self.a.saturating_add(u.min(u64::from(u32::MAX >> 1)) as u32);
        self.n += 1;
        if self.n >= RICE_RESET {
            self.a = self.a.div_ceil(2);
            self.n /= 2;
        }
    }

    /// Plans the code of `v` into `out`, and updates the state.
    pub fn plan(&mut self, v: i64, out: &mut Plan) {
        let u = zigzag(v);
        let k = self.k();
        let q = u >> k;
        if q < u64::from(ESCAPE_Q) {
            // q ones and a zero: at most 25 bits.
            out.push((((1u64 << q) - 1) << 1, q as u32 + 1));
            if k > 0 {
                out.push((u & ((1u64 << k) - 1), k));
            }
        } else {
            out.push(((1u64 << ESCAPE_Q) - 1, ESCAPE_Q));
            out.push((0, 1));
            out.push((u, 64));
        }
        self.update(u);
    }

    /// Plans an escape (ones without the number); the caller writes what follows.
    pub fn plan_escape(out: &mut Plan, op: u64) {
        out.push(((1u64 << ESCAPE_Q) - 1, ESCAPE_Q));
        out.push((1, 1));
        out.push((op, 2));
    }

    /// Reads a number, or `Err(Escape(op))` for an escape.
    pub fn read(&mut self, r: &mut BitReader<'_>) -> Result<Coded, StreamError> {
        let k = self.k();
        let q = r.unary(ESCAPE_Q)?;
        let u = if q < ESCAPE_Q {
            let low = if k > 0 { r.read(k)? } else { 0 };
            (u64::from(q) << k) | low
        } else if r.read(1)? == 0 {
            r.read(64)?
        } else {
            return Ok(Coded::Escape(r.read(2)?));
        };
        self.update(u);
        Ok(Coded::Number(unzigzag(u)))
    }
}

/// What [`Rice::read`] found.
pub enum Coded {
    /// A number.
    Number(i64),
    /// An escape with its 2-bit operation.
    Escape(u64),
}

/// The pieces of one planned point: at most a few dozen bits each, at most 12 of them.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pieces: [Piece; 12],
    len: usize,
}

impl Plan {
    /// Adds a piece.
    pub fn push(&mut self, p: Piece) {
        if let Some(slot) = self.pieces.get_mut(self.len) {
            *slot = p;
            self.len += 1;
        }
    }

    /// The pieces.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces[..self.len]
    }

    /// Bits in all pieces.
    pub fn bits(&self) -> u64 {
        self.pieces().iter().map(|p| u64::from(p.1)).sum()
    }
}

/// Escape operations in decimal mode.
const OP_FLOAT: u64 = 0;
const OP_RESCALE: u64 = 1;
/// The first integer of a stream, whole: it would only teach the Rice coder a magnitude that
/// the residuals after it do not have.
const OP_FIRST: u64 = 2;

/// How a [`Values`] stream codes.
pub const MODE_DECIMAL: u8 = 0;
/// Gorilla XOR.
pub const MODE_XOR: u8 = 1;
/// The nearest decimal at a fixed scale plus the distance in ulps: for sums of decimals, which
/// f64 addition leaves a few ulps off a decimal.
pub const MODE_NEAR: u8 = 2;
/// Marks "no XOR window yet".
const NO_WINDOW: u8 = 0xff;

/// The state of a value stream, all of it stored in block headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values {
    /// [`MODE_DECIMAL`] or [`MODE_XOR`].
    pub mode: u8,
    /// Decimals of the integers (decimal mode); leading zeros of the XOR window (XOR mode).
    pub scale: u8,
    /// Trailing zeros of the XOR window (XOR mode).
    pub trail: u8,
    /// The previous integer (decimal mode) or the previous value's bits (XOR mode).
    pub prev: u64,
    /// The previous integer delta (decimal mode).
    pub delta: i64,
    /// Recent cost of predicting "same as before" and "same step as before".
    pub cost: [u32; 2],
    /// Residual coder.
    pub rice: Rice,
    /// 1 until the first integer is coded.
    pub fresh: u8,
    /// Coder of the ulp distances ([`MODE_NEAR`]).
    pub ulp: Rice,
}

/// Stored size of [`Values`].
pub const VALUES_LEN: usize = 1 + 1 + 1 + 8 + 8 + 4 + 4 + 4 + 1 + 1 + 4 + 1;

impl Values {
    /// The state before the first value; the mode follows from that value.
    pub fn start(first: f64) -> Values {
        Values::start_mode(if decimal(first).is_some() { MODE_DECIMAL } else { MODE_XOR })
    }

    /// The state before the first value in `mode`.
    pub fn start_mode(mode: u8) -> Values {
        let scale = if mode == MODE_XOR { NO_WINDOW } else { 0 };
        Values { mode, scale, trail: 0, prev: 0, delta: 0, cost: [0, 0], rice: Rice::default(), fresh: 1, ulp: Rice::default() }
    }

    /// The state before the first value of a [`MODE_NEAR`] stream at `scale`.
    pub fn start_near(scale: u8) -> Values {
        Values { scale: scale.min(MAX_SCALE), ..Values::start_mode(MODE_NEAR) }
    }

    /// Writes the state.
    pub fn store(&self, out: &mut Vec<u8>) {
        out.push(self.mode);
        out.push(self.scale);
        out.push(self.trail);
        out.extend_from_slice(&self.prev.to_be_bytes());
        out.extend_from_slice(&self.delta.to_be_bytes());
        out.extend_from_slice(&self.cost[0].to_be_bytes());
        out.extend_from_slice(&self.cost[1].to_be_bytes());
        out.extend_from_slice(&self.rice.a.to_be_bytes());
        out.push(self.rice.n);
        out.push(self.fresh);
        out.extend_from_slice(&self.ulp.a.to_be_bytes());
        out.push(self.ulp.n);
    }

    /// Reads a stored state.
    pub fn load(b: &[u8]) -> Option<Values> {
        let b: &[u8; VALUES_LEN] = b.get(..VALUES_LEN)?.try_into().ok()?;
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        let v = Values {
            mode: b[0],
            scale: b[1],
            trail: b[2],
            prev: u64_at(3),
            delta: u64_at(11) as i64,
            cost: [u32_at(19), u32_at(23)],
            rice: Rice { a: u32_at(27), n: b[31] },
            fresh: b[32],
            ulp: Rice { a: u32_at(33), n: b[37] },
        };
        let sane = match v.mode {
            MODE_DECIMAL | MODE_NEAR => v.scale <= MAX_SCALE,
            MODE_XOR => v.scale == NO_WINDOW || (v.scale < 64 && u32::from(v.scale) + u32::from(v.trail) < 64),
            _ => false,
        };
        let rices = [v.rice, v.ulp].iter().all(|r| r.n > 0 && r.n < RICE_RESET);
        (sane && rices && v.fresh <= 1).then_some(v)
    }

    /// Plans the code of `v`, updating the state; returns whether `v` was escaped as a float
    /// in decimal mode.
    pub fn plan(&mut self, v: f64, out: &mut Plan) -> bool {
        if self.mode == MODE_XOR {
            self.plan_xor(v.to_bits(), out);
            return false;
        }
        if self.mode == MODE_NEAR {
            return self.plan_near(v, out);
        }
        let i = match decimal_at(v, self.scale) {
            Some(i) => i,
            None => match decimal(v).filter(|(s, _)| *s > self.scale).and_then(|(s, _)| self.rescaled(s)) {
                Some(up) => {
                    Rice::plan_escape(out, OP_RESCALE);
                    out.push((u64::from(up.scale), 4));
                    *self = up;
                    match decimal_at(v, self.scale) {
                        Some(i) => i,
                        None => return self.plan_float(v, out),
                    }
                }
                None => return self.plan_float(v, out),
            },
        };
        self.plan_int(i, out);
        false
    }

    /// Codes integer `i`: whole if it is the first, else its residual against the predictor.
    fn plan_int(&mut self, i: i64, out: &mut Plan) {
        if self.fresh == 1 {
            Rice::plan_escape(out, OP_FIRST);
            out.push((i as u64, 64));
            self.fresh = 0;
        } else {
            let prev = self.prev as i64;
            let guesses = [prev, prev.wrapping_add(self.delta)];
            let pick = usize::from(self.cost[1] < self.cost[0]);
            self.rice.plan(i.wrapping_sub(guesses[pick]), out);
        }
        self.follow(i);
    }

    fn plan_near(&mut self, v: f64, out: &mut Plan) -> bool {
        let x = (v * POW10[usize::from(self.scale)]).round();
        if !x.is_finite() || x.abs() >= MAX_EXACT as f64 {
            return self.plan_float(v, out);
        }
        let i = x as i64;
        let ulps = (v.to_bits() as i64).wrapping_sub(from_decimal(i, self.scale).to_bits() as i64);
        self.plan_int(i, out);
        self.ulp.plan(ulps, out);
        false
    }

    fn plan_float(&mut self, v: f64, out: &mut Plan) -> bool {
        Rice::plan_escape(out, OP_FLOAT);
        out.push((v.to_bits(), 64));
        true
    }

    /// The state at a larger scale, if the integers stay exact.
    fn rescaled(&self, scale: u8) -> Option<Values> {
        let m = *POW10_I.get(usize::from(scale - self.scale))?;
        let prev = (self.prev as i64).checked_mul(m).filter(|p| p.abs() < MAX_EXACT)?;
        let delta = self.delta.checked_mul(m)?;
        Some(Values { scale, prev: prev as u64, delta, ..*self })
    }

    /// Moves the predictors on to integer `i`.
    fn follow(&mut self, i: i64) {
        let prev = self.prev as i64;
        let costs = [i.wrapping_sub(prev), i.wrapping_sub(prev.wrapping_add(self.delta))];
        // The cost of a guess is about the bits its residual takes, decayed by 1/8 a value.
        for (c, r) in self.cost.iter_mut().zip(costs) {
            let bits = 64 - r.unsigned_abs().leading_zeros();
            *c = *c - (*c >> 3) + 16 * bits;
        }
        self.delta = i.wrapping_sub(prev);
        self.prev = i as u64;
    }

    fn plan_xor(&mut self, bits: u64, out: &mut Plan) {
        let xor = bits ^ self.prev;
        if xor == 0 {
            out.push((0, 1));
        } else {
            let lead = xor.leading_zeros().min(63) as u8;
            let trail = xor.trailing_zeros() as u8;
            if self.scale != NO_WINDOW && lead >= self.scale && trail >= self.trail {
                let len = 64 - u32::from(self.scale) - u32::from(self.trail);
                out.push((0b10, 2));
                out.push((xor >> self.trail, len));
            } else {
                let len = 64 - u32::from(lead) - u32::from(trail);
                out.push((0b11, 2));
                out.push((u64::from(lead), 6));
                out.push((u64::from(len - 1), 6));
                out.push((xor >> trail, len));
                self.scale = lead;
                self.trail = trail;
            }
        }
        self.prev = bits;
    }

    /// Reads the next value.
    pub fn read(&mut self, r: &mut BitReader<'_>) -> Result<f64, StreamError> {
        if self.mode == MODE_XOR {
            return self.read_xor(r);
        }
        let i = loop {
            let prev = self.prev as i64;
            let guesses = [prev, prev.wrapping_add(self.delta)];
            let pick = usize::from(self.cost[1] < self.cost[0]);
            match self.rice.read(r)? {
                Coded::Number(res) => break guesses[pick].wrapping_add(res),
                Coded::Escape(OP_FLOAT) => return Ok(f64::from_bits(r.read(64)?)),
                Coded::Escape(OP_FIRST) if self.fresh == 1 => {
                    self.fresh = 0;
                    break r.read(64)? as i64;
                }
                Coded::Escape(OP_RESCALE) if self.mode == MODE_DECIMAL => {
                    let s = r.read(4)? as u8;
                    *self = self.rescaled(s).filter(|_| s > self.scale && s <= MAX_SCALE).ok_or(StreamError)?;
                }
                Coded::Escape(_) => return Err(StreamError),
            }
        };
        self.follow(i);
        let v = from_decimal(i, self.scale);
        if self.mode != MODE_NEAR {
            return Ok(v);
        }
        match self.ulp.read(r)? {
            Coded::Number(d) => Ok(f64::from_bits((v.to_bits() as i64).wrapping_add(d) as u64)),
            Coded::Escape(_) => Err(StreamError),
        }
    }

    fn read_xor(&mut self, r: &mut BitReader<'_>) -> Result<f64, StreamError> {
        if r.read(1)? == 1 {
            let xor = if r.read(1)? == 0 {
                if self.scale == NO_WINDOW {
                    return Err(StreamError);
                }
                let len = 64 - u32::from(self.scale) - u32::from(self.trail);
                r.read(len)? << self.trail
            } else {
                let lead = r.read(6)? as u8;
                let len = r.read(6)? as u32 + 1;
                if u32::from(lead) + len > 64 {
                    return Err(StreamError);
                }
                self.scale = lead;
                self.trail = (64 - u32::from(lead) - len) as u8;
                r.read(len)? << self.trail
            };
            self.prev ^= xor;
        }
        Ok(f64::from_bits(self.prev))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip_with(start: Values, vals: &[f64]) -> Vec<f64> {
        let mut st = start;
        let mut w = BitWriter::default();
        for &v in vals {
            let mut p = Plan::default();
            st.plan(v, &mut p);
            w.put(p.pieces());
        }
        let mut r = BitReader::new(&w.buf, w.bits);
        let mut st = start;
        let back: Vec<f64> = vals.iter().map(|_| st.read(&mut r).unwrap()).collect();
        assert!(r.at_end());
        back
    }

    #[test]
    fn sums_of_decimals_cost_a_few_bits_over_their_decimal() {
        let mut sum = 0.0;
        let sums: Vec<f64> = (0..1000)
            .map(|i| {
                sum += f64::from(i % 17) / 10.0 + 0.01;
                sum
            })
            .collect();
        assert!(decimal(sums[500]).is_none(), "the sums are not decimals, as f64 addition makes them");
        let mut st = Values::start_near(2);
        let mut bits = 0;
        for &v in &sums {
            let mut p = Plan::default();
            st.plan(v, &mut p);
            bits += p.bits();
        }
        assert!(bits < 1000 * 16, "{bits} bits for 1000 sums");
        assert_eq!(round_trip_with(Values::start_near(2), &sums), sums);
    }

    fn round_trip(vals: &[f64]) -> (Vec<f64>, u64) {
        let mut st = Values::start(vals[0]);
        let start = st;
        let mut w = BitWriter::default();
        for &v in vals {
            let mut p = Plan::default();
            st.plan(v, &mut p);
            w.put(p.pieces());
        }
        let mut r = BitReader::new(&w.buf, w.bits);
        let mut st = start;
        let back: Vec<f64> = vals.iter().map(|_| st.read(&mut r).unwrap()).collect();
        assert!(r.at_end());
        (back, w.bits)
    }

    #[test]
    fn decimals_are_found_and_odd_floats_are_not() {
        assert_eq!(decimal(30.3), Some((1, 303)));
        assert_eq!(decimal(0.52), Some((2, 52)));
        assert_eq!(decimal(1e15), Some((0, 1_000_000_000_000_000)));
        for odd in [f64::NAN, f64::INFINITY, -0.0, 5e-324, 1e308, 0.1 + 0.2] {
            assert_eq!(decimal(odd), None, "{odd}");
        }
    }

    #[test]
    fn steady_series_cost_about_a_bit_a_value() {
        let constant = vec![0.0; 1000];
        assert!(round_trip(&constant).1 < 1100);
        let uptime: Vec<f64> = (0..1000).map(|i| 86_400.0 + 10.0 * f64::from(i)).collect();
        assert!(round_trip(&uptime).1 < 1600, "{}", round_trip(&uptime).1);
    }

    proptest! {
        #[test]
        fn any_values_round_trip_bit_for_bit(bits in proptest::collection::vec(any::<u64>(), 1..300),
                                             decimals in proptest::collection::vec((-100_000i64..100_000, 0u8..4), 1..300),
                                             mix in any::<u64>()) {
            let mut vals: Vec<f64> = decimals.iter().map(|(i, s)| *i as f64 / POW10[usize::from(*s)]).collect();
            for (n, b) in bits.iter().enumerate() {
                if mix >> (n % 64) & 1 == 1 { vals.insert(n.min(vals.len()), f64::from_bits(*b)); }
            }
            let (back, _) = round_trip(&vals);
            prop_assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            for scale in [0, 2, 9] {
                let back = round_trip_with(Values::start_near(scale), &vals);
                prop_assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }
    }
}
