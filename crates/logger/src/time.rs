//! RFC 3339 UTC timestamps without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `now` as `2026-11-21T09:02:32.123456Z` (microseconds, UTC).
pub(crate) fn write_rfc3339(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let year = u32::try_from(y).unwrap_or(0).min(9_999);
    let rem = rem as u32;
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
    out.push('T');
    push_padded(out, rem / 3600, 2);
    out.push(':');
    push_padded(out, rem % 3600 / 60, 2);
    out.push(':');
    push_padded(out, rem % 60, 2);
    out.push('.');
    push_padded(out, since.subsec_micros(), 6);
    out.push('Z');
}

/// `n` in decimal, zero-padded to `width` digits (`n` has at most `width` digits).
fn push_padded(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in &digits[..width] {
        out.push(char::from(d));
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (1_795_251_752, "2026-11-21T09:02:32.000000Z"),
            (4_107_542_399, "2100-02-28T23:59:59.000000Z"),
        ];
        for (secs, want) in cases {
            let mut s = String::new();
            write_rfc3339(&mut s, UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(s, want);
        }
        let mut s = String::new();
        write_rfc3339(&mut s, UNIX_EPOCH + Duration::from_micros(1_500_001));
        assert_eq!(s, "1970-01-01T00:00:01.500001Z");
    }
}
