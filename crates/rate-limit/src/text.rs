//! Numbers written into keys and header values without the `fmt` machinery (hot per request).

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_match_display() {
        for n in [0, 1, 9, 10, 99, 100, 255, 65_535, 1_000_000_007, u64::MAX] {
            let mut s = String::from("x");
            super::push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }
}
