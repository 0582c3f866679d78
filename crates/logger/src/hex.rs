//! Lowercase hex, for the ids the logger writes (trace and span ids on every line, fresh request
//! ids): written through a stack buffer and appended at once (pushing digit by digit cost about
//! 20 instructions a byte).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex, two digits per byte.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        let digits = &mut buf[..chunk.len() * 2];
        for (pair, &b) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        // Hex digits are ASCII: the check cannot fail.
        out.push_str(std::str::from_utf8(digits).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::push_hex;

    #[test]
    fn bytes_are_written_as_lowercase_hex_in_order() {
        let hex = |bytes: &[u8]| {
            let mut s = String::from("x");
            push_hex(&mut s, bytes);
            s
        };
        assert_eq!(hex(&[]), "x");
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "x000ff0ff");
        // Longer than one stack buffer: every byte, in order.
        let long: Vec<u8> = (0..=255).collect();
        let want: String = long.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&long), format!("x{want}"));
    }
}
