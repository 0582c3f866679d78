//! Key naming: a namespace prefix, escaping of user-supplied parts, hash tags for same-slot
//! multi-key scripts, and escaping for `SCAN MATCH` patterns.
//!
//! Layout of every key written by a NileCare crate:
//!
//! ```text
//! nilecare:cache:clinic%3A7:patients:123
//! └───┬───┘└─┬──┘└───┬────┘└─────┬─────┘
//!  prefix  crate  escaped      final part
//!                 segment      (as given)
//! ```
//!
//! Segments (crate names, tenants, policy names) are escaped with [`escape_key_part`], so a
//! segment can never contain the `:` separator, `{`/`}` (which would move the key to another
//! hash slot) or `%`; two different segment lists therefore never produce the same key, and one
//! tenant can never address another tenant's keys. The final part is appended as given.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A full key from [`KeyPrefix::stack_key`]: on the stack up to [`StackKey::INLINE`] bytes, on
/// the heap beyond. Derefs to `str`.
#[derive(Clone)]
pub struct StackKey(StackKeyRepr);

#[derive(Clone)]
enum StackKeyRepr {
    Inline {
        bytes: [u8; StackKey::INLINE],
        len: usize,
    },
    Heap(String),
}

impl StackKey {
    /// The longest key kept on the stack, in bytes.
    pub const INLINE: usize = 96;
}

impl std::ops::Deref for StackKey {
    type Target = str;

    fn deref(&self) -> &str {
        match &self.0 {
            // Two `str`s copied whole: valid UTF-8, so the check cannot fail.
            StackKeyRepr::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..*len]).unwrap_or("")
            }
            StackKeyRepr::Heap(s) => s,
        }
    }
}

impl fmt::Debug for StackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Longest accepted prefix, in bytes.
const MAX_PREFIX_LEN: usize = 256;

/// The namespace every key of a crate lives under, e.g. `nilecare:` or `nilecare:rl:`.
///
/// Cheap to clone. Built from a validated root ([`KeyPrefix::new`], default `nilecare:`) and
/// extended with escaped [`segment`](KeyPrefix::segment)s.
///
/// ```
/// use nilecare_redis::KeyPrefix;
///
/// let cache = KeyPrefix::default().segment("cache");
/// let tenant = cache.segment("clinic:7");              // user-supplied, escaped
/// assert_eq!(tenant.key("patients:123"), "nilecare:cache:clinic%3A7:patients:123");
/// // A SCAN pattern that can only match this tenant's keys:
/// assert_eq!(tenant.pattern("patients:*"), "nilecare:cache:clinic%3A7:patients:*");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(Arc<str>);

impl KeyPrefix {
    /// The default root prefix.
    pub const DEFAULT: &'static str = "nilecare:";

    /// A root prefix chosen by the operator (e.g. `myapp:`). Rejected when longer than 256 bytes
    /// or when it contains `{`, `}` (it would decide the hash slot of every key), whitespace or
    /// control characters. An empty prefix is allowed (keys then start with the crate segment).
    pub fn new(prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(Error::InvalidKey {
                field: "prefix",
                message: format!(
                    "must be at most {MAX_PREFIX_LEN} bytes, got {}",
                    prefix.len()
                ),
            });
        }
        if let Some(c) = prefix
            .chars()
            .find(|c| matches!(c, '{' | '}') || c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidKey {
                field: "prefix",
                message: format!("must not contain {c:?} (in {prefix:?})"),
            });
        }
        Ok(KeyPrefix(prefix.into()))
    }

    /// The prefix as written in keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends one escaped segment and the `:` separator: `prefix + escape(segment) + ":"`.
    #[must_use]
    pub fn segment(&self, segment: &str) -> KeyPrefix {
        let escaped = escape_key_part(segment);
        let mut s = String::with_capacity(self.0.len() + escaped.len() + 1);
        s.push_str(&self.0);
        s.push_str(&escaped);
        s.push(':');
        KeyPrefix(s.into())
    }

    /// Appends a hash-tagged segment: `prefix + "{" + escape(tag) + "}:"`. Every key built from
    /// the result lands in the same Redis Cluster hash slot, which multi-key scripts need.
    ///
    /// ```
    /// # #[cfg(feature = "client")] {
    /// use nilecare_redis::{KeyPrefix, key_slot};
    ///
    /// let user = KeyPrefix::default().segment("rl").tagged("user:42");
    /// assert_eq!(user.key("minute"), "nilecare:rl:{user%3A42}:minute");
    /// assert_eq!(key_slot(&user.key("minute")), key_slot(&user.key("hour")));
    /// # }
    /// ```
    #[must_use]
    pub fn tagged(&self, tag: &str) -> KeyPrefix {
        let escaped = escape_key_part(tag);
        let mut s = String::with_capacity(self.0.len() + escaped.len() + 3);
        s.push_str(&self.0);
        s.push('{');
        s.push_str(&escaped);
        s.push_str("}:");
        KeyPrefix(s.into())
    }

    /// `self.tagged(tag).key(last)` in one allocation (for hot paths): the prefix, the
    /// escaped `tag` in braces, `:`, then `last` as given.
    ///
    /// ```
    /// use nilecare_redis::KeyPrefix;
    ///
    /// let rl = KeyPrefix::default().segment("rl");
    /// assert_eq!(rl.tagged_key("user:42", "api"), rl.tagged("user:42").key("api"));
    /// ```
    pub fn tagged_key(&self, tag: &str, last: &str) -> String {
        let escaped = escape_key_part(tag);
        let mut s = String::with_capacity(self.0.len() + escaped.len() + 3 + last.len());
        s.push_str(&self.0);
        s.push('{');
        s.push_str(&escaped);
        s.push_str("}:");
        s.push_str(last);
        s
    }

    /// [`key`](Self::key) without a heap allocation when the key fits in
    /// [`StackKey::INLINE`] bytes (most keys): for hot paths that only lend the key out.
    ///
    /// ```
    /// use nilecare_redis::KeyPrefix;
    ///
    /// let cache = KeyPrefix::default().segment("cache");
    /// assert_eq!(&*cache.stack_key("patients:1"), cache.key("patients:1"));
    /// ```
    pub fn stack_key(&self, last: &str) -> StackKey {
        let len = self.0.len() + last.len();
        if len > StackKey::INLINE {
            return StackKey(StackKeyRepr::Heap(self.key(last)));
        }
        let mut bytes = [0u8; StackKey::INLINE];
        bytes[..self.0.len()].copy_from_slice(self.0.as_bytes());
        bytes[self.0.len()..len].copy_from_slice(last.as_bytes());
        StackKey(StackKeyRepr::Inline { bytes, len })
    }

    /// A full key: the prefix followed by `last` as given.
    pub fn key(&self, last: &str) -> String {
        let mut s = String::with_capacity(self.0.len() + last.len());
        s.push_str(&self.0);
        s.push_str(last);
        s
    }

    /// A `SCAN MATCH` pattern: the prefix, glob-escaped so it matches only itself, followed by
    /// `glob` (whose wildcards stay active). The pattern can never match keys outside this prefix.
    pub fn pattern(&self, glob: &str) -> String {
        let mut s = escape_glob(&self.0).into_owned();
        s.push_str(glob);
        s
    }

    /// A pattern matching every key under this prefix.
    pub fn pattern_all(&self) -> String {
        self.pattern("*")
    }

    /// `true` when `key` lies under this prefix.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&*self.0)
    }

    /// The part of `key` after this prefix, if `key` lies under it.
    pub fn strip<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&*self.0)
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        KeyPrefix(Self::DEFAULT.into())
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", &*self.0)
    }
}

impl AsRef<str> for KeyPrefix {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Escapes a user-supplied key segment: `%` → `%25`, `:` → `%3A`, `{` → `%7B`, `}` → `%7D`.
/// The result contains no separator and no hash-tag braces, and distinct inputs stay distinct.
///
/// ```
/// use nilecare_redis::escape_key_part;
/// assert_eq!(escape_key_part("clinic-7"), "clinic-7");
/// assert_eq!(escape_key_part("a:{b}%"), "a%3A%7Bb%7D%25");
/// ```
pub fn escape_key_part(part: &str) -> Cow<'_, str> {
    if !part.contains(['%', ':', '{', '}']) {
        return Cow::Borrowed(part);
    }
    let mut out = String::with_capacity(part.len() + 8);
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes text so that, inside a `SCAN MATCH` / `KEYS`-style glob, it matches only itself:
/// `*`, `?`, `[`, `]` and `\` get a backslash.
///
/// ```
/// use nilecare_redis::escape_glob;
/// assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
/// ```
pub fn escape_glob(text: &str) -> Cow<'_, str> {
    if !text.contains(['*', '?', '[', ']', '\\']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// The Redis Cluster hash slot (0..16384) of a key, honouring `{hash tags}`.
#[cfg(feature = "client")]
pub fn key_slot(key: &str) -> u16 {
    fred::util::redis_keyslot(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_collide_across_tenants() {
        let root = KeyPrefix::default().segment("cache");
        let a = root.segment("a").key("b:c");
        let b = root.segment("a:b").key("c");
        assert_ne!(a, b);
        assert_eq!(b, "nilecare:cache:a%3Ab:c");
        // an escaped segment is not a prefix of a sibling tenant
        assert!(!root.segment("a%3Ab").contains(&b));
    }

    #[cfg(feature = "client")]
    #[test]
    fn segments_cannot_inject_hash_tags() {
        let p = KeyPrefix::default().segment("{x}").tagged("user}{1");
        let key = p.key("k");
        assert_eq!(key, "nilecare:%7Bx%7D:{user%7D%7B1}:k");
        assert_eq!(key_slot(&key), key_slot("{user%7D%7B1}"));
    }

    #[test]
    fn prefix_validation_names_the_field() {
        for bad in ["a{b", "a}b", "with space", "tab\t", &"x".repeat(300)] {
            let e = KeyPrefix::new(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidKey {
                        field: "prefix",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
        }
        assert_eq!(KeyPrefix::new("app:").unwrap().as_str(), "app:");
        assert_eq!(KeyPrefix::new("").unwrap().segment("rl").as_str(), "rl:");
    }

    #[test]
    fn glob_escaping_covers_every_metacharacter() {
        assert_eq!(escape_glob("plain"), "plain");
        assert_eq!(escape_glob("*"), "\\*");
        assert_eq!(escape_glob("?"), "\\?");
        assert_eq!(escape_glob("[a-z]"), "\\[a-z\\]");
        assert_eq!(escape_glob("\\"), "\\\\");
    }

    #[test]
    fn pattern_escapes_prefix_but_keeps_user_glob() {
        let p = KeyPrefix::new("app*:").unwrap().segment("t?");
        assert_eq!(p.pattern("x:*"), "app\\*:t\\?:x:*");
        assert_eq!(p.strip("app*:t?:x:1"), Some("x:1"));
        assert_eq!(p.strip("other"), None);
    }
}
