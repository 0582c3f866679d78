//! Tag routes: `"/api/v1/patients/{id}" → ["patient:{id}", "patients"]`. A cached GET of a
//! matching path carries the tags; a successful mutation of a matching path invalidates them.

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A route template (`/api/v1/patients/{id}`): literal segments and captured parameters.
#[derive(Clone, Debug)]
pub(crate) struct RoutePattern {
    segments: Vec<Segment>,
}

impl RoutePattern {
    /// Parses a template; `field` names the setting in the error.
    pub(crate) fn new(field: &'static str, pattern: &str) -> Result<Self> {
        if !pattern.starts_with('/') {
            return Err(Error::InvalidConfig {
                field,
                message: format!("pattern must start with `/`: {pattern:?}"),
            });
        }
        let segments = pattern
            .split('/')
            .skip(1)
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Ok(RoutePattern { segments })
    }

    fn captures_name(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Param(p) if p == name))
    }

    /// The captured (name, value) pairs when `path` matches.
    pub(crate) fn captures<'a>(&'a self, path: &'a str) -> Option<Vec<(&'a str, &'a str)>> {
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut captured = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Param(name) if !part.is_empty() => captured.push((name.as_str(), part)),
                _ => return None,
            }
        }
        Some(captured)
    }

    /// Whether `path` matches (checked on every request of the layer: no allocation).
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/').skip(1);
        self.segments
            .iter()
            .all(|segment| match (segment, parts.next()) {
                (Segment::Literal(l), Some(part)) => l == part,
                (Segment::Param(_), Some(part)) => !part.is_empty(),
                (_, None) => false,
            })
            && parts.next().is_none()
    }
}

/// One route pattern with its tag templates.
#[derive(Clone, Debug)]
pub(crate) struct TagRoute {
    pattern: RoutePattern,
    tags: Vec<String>,
}

impl TagRoute {
    pub(crate) fn new(pattern: &str, tags: &[&str]) -> Result<Self> {
        let bad = |message: String| Error::InvalidConfig {
            field: "tag_route",
            message,
        };
        let template = pattern;
        let pattern = RoutePattern::new("tag_route", template)?;
        for tag in tags {
            let mut rest = *tag;
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    return Err(bad(format!("unclosed `{{` in tag {tag:?}")));
                };
                let name = &rest[open + 1..open + close];
                if !pattern.captures_name(name) {
                    return Err(bad(format!(
                        "tag {tag:?} uses `{{{name}}}`, which {template:?} does not capture"
                    )));
                }
                rest = &rest[open + close + 1..];
            }
        }
        if tags.is_empty() {
            return Err(bad(format!("{template:?} has no tags")));
        }
        Ok(TagRoute {
            pattern,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        })
    }

    /// The tags for `path` when it matches.
    pub(crate) fn tags_for(&self, path: &str) -> Option<Vec<String>> {
        let captured = self.pattern.captures(path)?;
        Some(
            self.tags
                .iter()
                .map(|t| {
                    captured.iter().fold(t.clone(), |t, (name, value)| {
                        t.replace(&format!("{{{name}}}"), value)
                    })
                })
                .collect(),
        )
    }
}

/// The tags of every route matching `path`, deduplicated.
pub(crate) fn tags_for(routes: &[TagRoute], path: &str) -> Vec<String> {
    let mut tags: Vec<String> = routes
        .iter()
        .filter_map(|r| r.tags_for(path))
        .flatten()
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_and_fill_tags() {
        let r = TagRoute::new("/api/v1/patients/{id}", &["patient:{id}", "patients"]).unwrap();
        assert_eq!(
            r.tags_for("/api/v1/patients/7"),
            Some(vec!["patient:7".into(), "patients".into()])
        );
        assert_eq!(r.tags_for("/api/v1/patients"), None);
        assert_eq!(r.tags_for("/api/v1/patients/"), None);
        assert_eq!(r.tags_for("/api/v1/patients/7/notes"), None);
        assert!(TagRoute::new("/x/{id}", &["y:{other}"]).is_err());
        assert!(TagRoute::new("x", &["y"]).is_err());
        assert!(TagRoute::new("/x", &[]).is_err());
    }

    #[test]
    fn matches_agrees_with_captures() {
        let r = RoutePattern::new("exclude_route", "/admin/{page}").unwrap();
        for path in [
            "/admin/x",
            "/admin/",
            "/admin",
            "/admin/x/y",
            "/other/x",
            "/",
            "",
        ] {
            assert_eq!(r.matches(path), r.captures(path).is_some(), "{path:?}");
        }
        assert!(r.matches("/admin/overview") && !r.matches("/admin/"));
    }
}
