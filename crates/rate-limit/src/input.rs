//! Checks on what callers pass in (key, cost) before any backend sees it, and the digest that
//! keeps every key short enough to store.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Longest key stored as given, in bytes. A longer key is stored as its digest (see
/// [`stored_key`]), so a client that sends a long API key is limited like any other, never let
/// through.
pub const MAX_KEY_LEN: usize = 512;

/// What a digested key starts with: `sha256:` and 64 lowercase hex digits (71 bytes).
pub const DIGEST_PREFIX: &str = "sha256:";

/// The key a backend stores for `key`: `key` itself when it is 1 to [`MAX_KEY_LEN`] bytes and
/// does not start with [`DIGEST_PREFIX`]; otherwise `sha256:` followed by the SHA-256 of the
/// key in lowercase hex.
///
/// The digest is the same on every instance and backend (memory and Redis agree), collisions
/// need a SHA-256 collision, and a client cannot name another key's digest: a key that already
/// starts with `sha256:` is digested too. An empty key is an error (field `key`).
///
/// ```
/// use nilecare_rate_limit::{MAX_KEY_LEN, stored_key};
///
/// assert_eq!(stored_key("h:abc")?, "h:abc");
/// let long = "k".repeat(MAX_KEY_LEN + 1);
/// let digest = stored_key(&long)?;
/// assert!(digest.starts_with("sha256:") && digest.len() == 71);
/// assert_ne!(stored_key(&digest)?, digest); // a client cannot pose as a digest
/// # Ok::<(), nilecare_rate_limit::Error>(())
/// ```
pub fn stored_key(key: &str) -> Result<Cow<'_, str>> {
    if key.is_empty() {
        return Err(Error::InvalidInput {
            field: "key",
            message: "must not be empty".into(),
        });
    }
    if key.len() <= MAX_KEY_LEN && !key.starts_with(DIGEST_PREFIX) {
        return Ok(Cow::Borrowed(key));
    }
    Ok(Cow::Owned(format!(
        "{DIGEST_PREFIX}{:x}",
        Sha256::digest(key.as_bytes())
    )))
}

/// The stored key of `key` after checking `cost` (0 only where `allow_zero_cost`, i.e. peeks).
pub(crate) fn checked(key: &str, cost: u64, allow_zero_cost: bool) -> Result<Cow<'_, str>> {
    if cost == 0 && !allow_zero_cost {
        return Err(Error::InvalidInput {
            field: "cost",
            message: "must be at least 1".into(),
        });
    }
    stored_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_kept_and_long_ones_digested() {
        assert!(matches!(
            stored_key("ip:1.2.3.4").unwrap(),
            Cow::Borrowed(_)
        ));
        let at_limit = "x".repeat(MAX_KEY_LEN);
        assert_eq!(stored_key(&at_limit).unwrap(), at_limit);
        let long = "x".repeat(4000);
        let d = stored_key(&long).unwrap();
        assert_eq!(d.len(), DIGEST_PREFIX.len() + 64);
        // A key posing as a digest is digested itself.
        let posed = stored_key("sha256:abc").unwrap();
        assert!(
            posed.starts_with(DIGEST_PREFIX) && posed.len() == 71,
            "{posed}"
        );
        // SHA-256 known answer for "abc" (FIPS 180-2, appendix B.1): the digest is SHA-256.
        let hex: String = Sha256::digest(b"abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let expected = format!("{DIGEST_PREFIX}{}", {
            let d = Sha256::digest(long.as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
        assert_eq!(d, expected);
    }

    #[test]
    fn distinct_long_keys_get_distinct_digests_and_the_same_key_the_same() {
        let a = "a".repeat(1000);
        let mut b = a.clone();
        b.push('b');
        assert_ne!(stored_key(&a).unwrap(), stored_key(&b).unwrap());
        assert_eq!(stored_key(&a).unwrap(), stored_key(&a.clone()).unwrap());
    }

    #[test]
    fn empty_key_and_zero_cost_are_errors_naming_the_field() {
        let e = stored_key("").unwrap_err();
        assert!(matches!(e, Error::InvalidInput { field: "key", .. }), "{e}");
        let e = checked("k", 0, false).unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { field: "cost", .. }),
            "{e}"
        );
        assert!(checked("k", 0, true).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// Every non-empty key has a stored key of at most `MAX_KEY_LEN` bytes, the same
            /// each time; short plain keys are themselves; two keys share a stored key only
            /// when they are equal (a digest never equals a plain key).
            #[test]
            fn stored_keys_are_bounded_stable_and_distinct(
                a in (0usize..600, any::<char>()).prop_map(|(n, c)| format!("{}{c}", "k".repeat(n))),
                b in (0usize..600, any::<char>()).prop_map(|(n, c)| format!("{}{c}", "k".repeat(n))),
                empty in any::<bool>(),
                posed in any::<bool>(),
            ) {
                let a = if posed { format!("{DIGEST_PREFIX}{a}") } else { a };
                let b = if empty { String::new() } else { b };
                match (stored_key(&a), stored_key(&b)) {
                    (Ok(sa), Ok(sb)) => {
                        prop_assert!(sa.len() <= MAX_KEY_LEN);
                        prop_assert_eq!(&sa, &stored_key(&a).unwrap());
                        if a.len() <= MAX_KEY_LEN && !a.starts_with(DIGEST_PREFIX) {
                            prop_assert_eq!(&*sa, a.as_str());
                        } else {
                            prop_assert!(sa.starts_with(DIGEST_PREFIX));
                        }
                        prop_assert_eq!(sa == sb, a == b);
                    }
                    (ra, rb) => {
                        prop_assert_eq!(ra.is_err(), a.is_empty());
                        prop_assert_eq!(rb.is_err(), b.is_empty());
                    }
                }
            }
        }
    }
}
