//! `Vary` (RFC 9111 section 4.1): the request headers a stored response was selected by.

use http::HeaderMap;
use http::header::VARY;

/// The request header names a response varies on (lowercase, sorted, without duplicates).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Vary(Vec<String>);

impl Vary {
    /// The names of a response's `Vary` lines; `None` for `Vary: *`, which matches no request.
    pub(crate) fn of(response: &HeaderMap) -> Option<Vary> {
        let mut names = Vec::new();
        for value in response.get_all(VARY) {
            for name in String::from_utf8_lossy(value.as_bytes()).split(',') {
                let name = name.trim().to_ascii_lowercase();
                if name == "*" {
                    return None;
                }
                if !name.is_empty() {
                    names.push(name);
                }
            }
        }
        names.sort();
        names.dedup();
        Some(Vary(names))
    }

    /// The request's values of these headers, to store with the response.
    pub(crate) fn values(&self, request: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        self.0
            .iter()
            .map(|name| (name.clone(), combined(request, name)))
            .collect()
    }
}

/// A header's lines joined by `, ` (the comparison of section 4.1 after combining lines).
fn combined(headers: &HeaderMap, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Whether `request` presents the same values as the request a response was stored for.
pub(crate) fn matches<'a>(
    mut stored: impl Iterator<Item = (&'a str, &'a [u8])>,
    request: &HeaderMap,
) -> bool {
    stored.all(|(name, value)| combined(request, name) == value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn rfc9111_4_1_vary_names_and_matching() {
        let mut response = HeaderMap::new();
        response.append(
            VARY,
            HeaderValue::from_static("Accept-Encoding, accept-language"),
        );
        response.append(VARY, HeaderValue::from_static("ACCEPT-ENCODING"));
        let vary = Vary::of(&response).unwrap();
        assert_eq!(vary.0, ["accept-encoding", "accept-language"]);
        let mut request = HeaderMap::new();
        request.insert("accept-encoding", HeaderValue::from_static("gzip"));
        let stored = vary.values(&request);
        let pairs = || stored.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        assert!(matches(pairs(), &request));
        let mut other = request.clone();
        other.insert("accept-encoding", HeaderValue::from_static("br"));
        assert!(!matches(pairs(), &other));
        other.remove("accept-encoding");
        assert!(!matches(pairs(), &other), "absent differs from present");
        response.insert(VARY, HeaderValue::from_static("*"));
        assert_eq!(Vary::of(&response), None);
    }
}
