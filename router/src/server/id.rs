//! Prediction IDs (UUIDv7: the millisecond time first, so IDs sort by time, then 74 random bits) and timestamps.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::HeaderName;

/// The header that carries the prediction ID, in and out.
pub const PREDICTION_ID: HeaderName = HeaderName::from_static("x-prediction-id");

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A per-thread seed from the standard library's randomly keyed hasher (keys from the OS).
fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    h.finish()
}

/// SplitMix64: fast, and plenty for IDs that only need to be unique.
fn next_random() -> u64 {
    STATE.with(|s| {
        let z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A new UUIDv7, as 36 characters of lower-case hex and dashes.
pub fn new_id(now: SystemTime) -> String {
    let ms = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0) & 0xffff_ffff_ffff;
    let (a, b) = (next_random(), next_random());
    let hi = (ms << 16) | 0x7000 | (a & 0x0fff);
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    // Written digit by digit: `format!` cost more than the rest of the ID (seen in a profile under load).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut put = |from: usize, to: usize, value: u64| {
        for (i, slot) in out[from..to].iter_mut().rev().enumerate() {
            *slot = HEX[((value >> (4 * i)) & 0xf) as usize];
        }
    };
    put(0, 8, hi >> 32);
    put(9, 13, (hi >> 16) & 0xffff);
    put(14, 18, hi & 0xffff);
    put(19, 23, lo >> 48);
    put(24, 36, lo & 0xffff_ffff_ffff);
    ascii(&out)
}

/// The client's prediction ID when it sent a usable one (1 to 128 visible ASCII characters), else a new one.
pub fn prediction_id(headers: &HeaderMap, now: SystemTime) -> String {
    match headers.get(PREDICTION_ID).map(|v| v.as_bytes()) {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.iter().all(|b| (0x21..=0x7e).contains(b)) => {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => new_id(now),
    }
}

thread_local! {
    /// The second last formatted on this thread and its text up to the seconds (`2026-05-01T12:00:00`): log lines come
    /// many a second, and only their milliseconds differ.
    static LAST_SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
}

/// RFC 3339 in UTC with milliseconds: `2026-05-01T12:00:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (last, text) = LAST_SECOND.get();
    let text = if last == secs {
        text
    } else {
        let text = second(secs);
        LAST_SECOND.set((secs, text));
        text
    };
    let mut out = *b"0000-00-00T00:00:00.000Z";
    out[..19].copy_from_slice(&text);
    let ms = d.subsec_millis();
    for (slot, digit) in out[20..23].iter_mut().zip([ms / 100, ms / 10 % 10, ms % 10]) {
        *slot = b'0' + digit as u8;
    }
    ascii(&out)
}

/// `2026-05-01T12:00:00` for a time in seconds since the epoch.
fn second(secs: i64) -> [u8; 19] {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Digit by digit, for the same reason as `new_id`.
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |from: usize, width: usize, mut value: i64| {
        for slot in out[from..from + width].iter_mut().rev() {
            *slot = b'0' + (value.rem_euclid(10)) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    out
}

/// A string of ASCII bytes, copied in one go (collecting them as `char`s cost more than building them: a profile
/// under callgrind, docs/router-benchmark.md).
fn ascii(bytes: &[u8]) -> String {
    std::str::from_utf8(bytes).map(str::to_owned).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_unique() {
        let now = UNIX_EPOCH + Duration::from_millis(0x0190_0000_0001);
        let ids: HashSet<String> = (0..10_000).map(|_| new_id(now)).collect();
        assert_eq!(ids.len(), 10_000);
        let id = new_id(now);
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("01900000-0001-7"), "{id}");
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{id}");
        for (i, c) in id.char_indices() {
            let dash = [8, 13, 18, 23].contains(&i);
            assert!(if dash { c == '-' } else { c.is_ascii_hexdigit() && !c.is_ascii_uppercase() }, "{id}");
        }
    }

    #[test]
    fn a_client_id_is_kept_when_usable() {
        let now = SystemTime::now();
        let mut h = HeaderMap::new();
        h.insert(PREDICTION_ID, HeaderValue::from_static("order-42"));
        assert_eq!(prediction_id(&h, now), "order-42");
        h.insert(PREDICTION_ID, HeaderValue::from_static("has space"));
        assert_ne!(prediction_id(&h, now), "has space");
        assert_eq!(prediction_id(&HeaderMap::new(), now).len(), 36);
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(1_709_210_096_789)), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
        // The same second again, another millisecond, the next second, and back: the cached second is never stale.
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(t + Duration::from_millis(5)), "2024-02-29T12:34:56.794Z");
        assert_eq!(rfc3339(t + Duration::from_millis(211)), "2024-02-29T12:34:57.000Z");
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(7)), "1970-01-01T00:00:00.007Z");
    }
}
