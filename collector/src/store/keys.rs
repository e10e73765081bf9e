//! Key layouts. Every integer in a key is big-endian so that LMDB's byte order is numeric
//! order; timestamps have their sign bit flipped so negative times sort before positive ones.

/// Length of a point key: series id then timestamp.
pub const POINT_KEY_LEN: usize = 16;

/// Order-preserving encoding of a signed timestamp.
pub fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ts_bytes`].
pub fn ts_from(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// `series id (u64 BE) | ts (flipped i64 BE)`.
pub fn point_key(series: u64, ts: i64) -> [u8; POINT_KEY_LEN] {
    let mut k = [0u8; POINT_KEY_LEN];
    k[..8].copy_from_slice(&series.to_be_bytes());
    k[8..].copy_from_slice(&ts_bytes(ts));
    k
}

/// Splits a point key; `None` if it has the wrong length.
pub fn split_point_key(k: &[u8]) -> Option<(u64, i64)> {
    if k.len() != POINT_KEY_LEN {
        return None;
    }
    let mut s = [0u8; 8];
    let mut t = [0u8; 8];
    s.copy_from_slice(&k[..8]);
    t.copy_from_slice(&k[8..]);
    Some((u64::from_be_bytes(s), ts_from(t)))
}

/// `device \0 name \0 (key \x1f value \0)*` — a series' identity. Ids cannot contain NUL and
/// names and labels with control characters are refused at ingest, so the layout is unambiguous.
pub fn series_key(device: &str, name: &str, labels: &[(String, String)]) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + name.len() + 2 + labels.len() * 16);
    series_key_into(&mut k, device, name, labels);
    k
}

/// [`series_key`] into a reused buffer (cleared first): the writer builds one per point.
pub fn series_key_into(k: &mut Vec<u8>, device: &str, name: &str, labels: &[(String, String)]) {
    k.clear();
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    for (key, value) in labels {
        k.extend_from_slice(key.as_bytes());
        k.push(0x1f);
        k.extend_from_slice(value.as_bytes());
        k.push(0);
    }
}

/// Prefix of all series keys of one device.
pub fn device_series_prefix(device: &str) -> Vec<u8> {
    let mut k = device.as_bytes().to_vec();
    k.push(0);
    k
}

/// Label pairs of a series, sorted by key.
pub type Labels = Vec<(String, String)>;

/// Parses a series key back into (device, name, labels).
pub fn parse_series_key(k: &[u8]) -> Option<(String, String, Labels)> {
    let mut parts = k.split(|b| *b == 0);
    let device = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let name = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let mut labels = Vec::new();
    for p in parts {
        if p.is_empty() {
            continue;
        }
        let i = p.iter().position(|b| *b == 0x1f)?;
        labels.push((std::str::from_utf8(&p[..i]).ok()?.to_owned(), std::str::from_utf8(&p[i + 1..]).ok()?.to_owned()));
    }
    Some((device, name, labels))
}

/// `tenant \0 ts (flipped BE) log key (u64 BE) position (u32 BE)` — alerts of a tenant in time
/// order, ties in arrival order. The log key and position say which ingest-log entry the alert
/// came from, which lets a chunked reader skip alerts folded after it read the log's tail.
pub fn alert_key(tenant: &str, ts: i64, seq: u64, pos: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 21);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(&ts_bytes(ts));
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&pos.to_be_bytes());
    k
}

/// Length of an alert key after the tenant and its NUL.
pub const ALERT_SUFFIX_LEN: usize = 20;

/// (ts, log key, position) of an alert key.
pub fn split_alert_key(k: &[u8]) -> Option<(i64, u64, u32)> {
    let at = k.len().checked_sub(ALERT_SUFFIX_LEN)?;
    let s = &k[at..];
    let mut t = [0u8; 8];
    let mut q = [0u8; 8];
    let mut p = [0u8; 4];
    t.copy_from_slice(&s[..8]);
    q.copy_from_slice(&s[8..16]);
    p.copy_from_slice(&s[16..]);
    Some((ts_from(t), u64::from_be_bytes(q), u32::from_be_bytes(p)))
}

/// Ingest-log key: arrival order.
pub fn log_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Inverse of [`log_key`]; `None` if the length is wrong.
pub fn split_log_key(k: &[u8]) -> Option<u64> {
    let a: [u8; 8] = k.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// Block key: `series id (u64 BE) | first timestamp of the block (flipped i64 BE)`. Same layout
/// as [`point_key`]: the blocks of a series are contiguous and in time order.
pub fn block_key(series: u64, first_ts: i64) -> [u8; POINT_KEY_LEN] {
    point_key(series, first_ts)
}

/// Rollup key: `bucket start (flipped i64 BE) | series id (u64 BE)`. Time first, so that the
/// fold's updates of many series land on few pages and retention is one range delete.
pub fn rollup_key(bucket: i64, series: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ts_bytes(bucket));
    k[8..].copy_from_slice(&series.to_be_bytes());
    k
}

/// (bucket, series) of a rollup key.
pub fn split_rollup_key(k: &[u8]) -> Option<(i64, u64)> {
    if k.len() != 16 {
        return None;
    }
    let mut t = [0u8; 8];
    let mut s = [0u8; 8];
    t.copy_from_slice(&k[..8]);
    s.copy_from_slice(&k[8..]);
    Some((ts_from(t), u64::from_be_bytes(s)))
}

/// Alert aggregate key: `tenant \0 level u8 | dimension u8 | bucket (flipped i64 BE) | value`.
/// One dimension of one tenant is contiguous and in time order.
pub fn agg_key(tenant: &str, level: u8, dim: u8, bucket: i64, value: &[u8]) -> Vec<u8> {
    let mut k = agg_prefix(tenant, level, dim);
    k.extend_from_slice(&ts_bytes(bucket));
    k.extend_from_slice(value);
    k
}

/// `tenant \0 level dim`: the start of one aggregate dimension.
pub fn agg_prefix(tenant: &str, level: u8, dim: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 11 + 32);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.push(level);
    k.push(dim);
    k
}

/// (bucket, value) of an aggregate key, given the length of its prefix.
pub fn split_agg_key(k: &[u8], prefix_len: usize) -> Option<(i64, &[u8])> {
    let t: [u8; 8] = k.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    Some((ts_from(t), &k[prefix_len + 8..]))
}

/// Device state history key: `device \0 kind u8 | ts (flipped i64 BE)`.
pub fn state_key(device: &str, kind: u8, ts: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + 10);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.push(kind);
    k.extend_from_slice(&ts_bytes(ts));
    k
}

/// Timestamp of a state key.
pub fn split_state_key(k: &[u8]) -> Option<i64> {
    let at = k.len().checked_sub(8)?;
    Some(ts_from(k[at..].try_into().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn point_keys_sort_like_series_then_time(a in any::<(u64, i64)>(), b in any::<(u64, i64)>()) {
            let (ka, kb) = (point_key(a.0, a.1), point_key(b.0, b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(split_point_key(&ka), Some(a));
        }

        #[test]
        fn alert_keys_sort_by_time_within_a_tenant(a in any::<(i64, u64, u32)>(), b in any::<(i64, u64, u32)>()) {
            let (ka, kb) = (alert_key("acme", a.0, a.1, a.2), alert_key("acme", b.0, b.1, b.2));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(split_alert_key(&ka), Some(a));
        }

        #[test]
        fn rollup_keys_sort_by_time_then_series(a in any::<(i64, u64)>(), b in any::<(i64, u64)>()) {
            let (ka, kb) = (rollup_key(a.0, a.1), rollup_key(b.0, b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(split_rollup_key(&ka), Some(a));
        }

        #[test]
        fn aggregate_keys_sort_by_bucket_then_value(a in any::<(i64, Vec<u8>)>(), b in any::<(i64, Vec<u8>)>()) {
            let (ka, kb) = (agg_key("acme", 1, 2, a.0, &a.1), agg_key("acme", 1, 2, b.0, &b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let n = agg_prefix("acme", 1, 2).len();
            prop_assert_eq!(split_agg_key(&ka, n), Some((a.0, &a.1[..])));
        }
    }

    #[test]
    fn series_keys_round_trip() {
        let labels = vec![("mount".to_owned(), "/var/log".to_owned())];
        let k = series_key("fw-1", "disk.used_percent", &labels);
        assert!(k.starts_with(&device_series_prefix("fw-1")));
        assert!(!k.starts_with(&device_series_prefix("fw")));
        assert_eq!(parse_series_key(&k).unwrap(), ("fw-1".into(), "disk.used_percent".into(), labels));
    }
}
