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
    k
}

/// Prefix of all series keys of one device.
pub fn device_series_prefix(device: &str) -> Vec<u8> {
    let mut k = device.as_bytes().to_vec();
    k.push(0);
    k
}

/// Parses a series key back into (name, labels) — the device is known from the prefix.
pub fn parse_series_key(k: &[u8]) -> Option<(String, String, Vec<(String, String)>)> {
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

/// `tenant \0 ts (flipped BE) id (u64 BE)` — alerts of a tenant in time order.
pub fn alert_key(tenant: &str, ts: i64, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 17);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(&ts_bytes(ts));
    k.extend_from_slice(&id.to_be_bytes());
    k
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
        fn alert_keys_sort_by_time_within_a_tenant(t1 in any::<i64>(), t2 in any::<i64>(), i in any::<u64>(), j in any::<u64>()) {
            prop_assert_eq!(alert_key("acme", t1, i).cmp(&alert_key("acme", t2, j)), (t1, i).cmp(&(t2, j)));
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
