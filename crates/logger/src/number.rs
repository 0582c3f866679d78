//! Numbers written into a JSON line without the formatting machinery: integers with `itoa`,
//! and floats that are a whole number of thousandths (latencies in milliseconds from a
//! microsecond clock) as their decimal. Each writes exactly what `Display` writes.

/// `n` in decimal.
pub(crate) fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `n` in decimal, with its sign.
pub(crate) fn push_i64(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A finite `v` as `Display` writes it: the shortest decimal that reads back as `v`.
pub(crate) fn push_f64(out: &mut String, v: f64) {
    // A whole number of thousandths below 10^12 (where one unit in the last place is under
    // 0.0005, so no shorter decimal reads back as `v`) is its own shortest decimal.
    let thousandths = (v * 1000.0).round();
    if v != 0.0 && v.abs() < 1e12 && thousandths / 1000.0 == v {
        if v < 0.0 {
            out.push('-');
        }
        let k = thousandths.abs() as u64;
        push_u64(out, k / 1000);
        let mut frac = k % 1000;
        if frac != 0 {
            out.push('.');
            let mut width = 3;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            let mut digits = [b'0'; 3];
            for slot in digits[..width].iter_mut().rev() {
                *slot = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            for &d in &digits[..width] {
                out.push(char::from(d));
            }
        }
        return;
    }
    use std::fmt::Write;
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_text(v: f64) -> String {
        let mut s = String::new();
        push_f64(&mut s, v);
        s
    }

    #[test]
    fn integers_match_display() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for n in [0, -1, 7, i64::MIN, i64::MAX, -1_000] {
            let mut s = String::new();
            push_i64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn floats_match_display_at_the_edges() {
        for v in [
            0.0,
            -0.0,
            0.001,
            0.01,
            0.1,
            0.123,
            1.0,
            1.5,
            11.903,
            12.0,
            -3.25,
            999_999_999_999.999,
            1e12,
            1e15,
            0.1 + 0.2,
            1e-7,
            1.0 / 3.0,
            2.5e-3,
            123_456.789,
        ] {
            assert_eq!(f64_text(v), v.to_string(), "{v:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn latencies_from_microseconds_match_display(micros in 0u64..100_000_000_000) {
            let v = micros as f64 / 1000.0;
            proptest::prop_assert_eq!(f64_text(v), v.to_string());
        }

        #[test]
        fn any_finite_float_matches_display(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assert_eq!(f64_text(v), v.to_string());
        }

        #[test]
        fn any_integer_matches_display(n in proptest::num::i64::ANY, u in proptest::num::u64::ANY) {
            let mut s = String::new();
            push_i64(&mut s, n);
            push_u64(&mut s, u);
            proptest::prop_assert_eq!(s, format!("{n}{u}"));
        }
    }
}
