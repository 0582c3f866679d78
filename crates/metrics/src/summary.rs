//! [`Summary`]: the service's request totals, latency percentiles, error ratio, cache hit rate
//! and busiest tenants as JSON, computed from the recorder's own exposition (the same numbers
//! `/metrics` shows), not from a second bookkeeping.

use std::collections::BTreeMap;

use crate::names::{
    HTTP_SERVER_REQUEST_DURATION_SECONDS, TENANT_LABEL, cache::REQUESTS_TOTAL,
    cache::TENANT_LOOKUPS_TOTAL,
};

/// Latency figures in milliseconds: the average from the histogram's sum and count, the
/// percentiles interpolated within the buckets (as PromQL's `histogram_quantile`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Mean.
    pub avg_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// One tenant's figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TenantSummary {
    /// The tenant label (a tracked tenant, `other` or `none`).
    pub tenant: String,
    /// Requests.
    pub requests: u64,
    /// Requests answered with a 5xx (or failed).
    pub errors: u64,
    /// `errors / requests`.
    pub error_ratio: f64,
    /// Latency.
    pub latency: LatencySummary,
    /// Response cache hits / lookups for this tenant, when it made any.
    pub cache_hit_rate: Option<f64>,
}

/// The whole service: totals and the busiest tenants.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Requests recorded by the RED layer.
    pub requests: u64,
    /// Of which 5xx (or failed).
    pub errors: u64,
    /// `errors / requests`.
    pub error_ratio: f64,
    /// Latency over every request.
    pub latency: LatencySummary,
    /// Cache hits / lookups over every cache (`nilecare_cache_requests_total`).
    pub cache_hit_rate: Option<f64>,
    /// The busiest tenants by requests, at most the number asked for.
    pub tenants: Vec<TenantSummary>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Upper bound → cumulative count, summed over series.
    buckets: BTreeMap<Bound, f64>,
    sum: f64,
    count: f64,
    errors: f64,
}

/// A bucket bound ordered numerically (`+Inf` last).
#[derive(Debug, Clone, Copy)]
struct Bound(f64);
impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Histogram {
    fn quantile(&self, q: f64) -> f64 {
        let Some((_, total)) = self.buckets.iter().next_back() else {
            return 0.0;
        };
        if *total <= 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, count) in &self.buckets {
            if *count >= rank {
                if bound.0.is_infinite() {
                    return lower; // the highest finite bound, as histogram_quantile
                }
                let width = count - below;
                return if width <= 0.0 {
                    bound.0
                } else {
                    lower + (bound.0 - lower) * (rank - below) / width
                };
            }
            lower = bound.0;
            below = *count;
        }
        lower
    }

    fn latency(&self) -> LatencySummary {
        let ms = |s: f64| (s * 1000.0 * 1000.0).round() / 1000.0;
        LatencySummary {
            avg_ms: if self.count > 0.0 {
                ms(self.sum / self.count)
            } else {
                0.0
            },
            p50_ms: ms(self.quantile(0.5)),
            p95_ms: ms(self.quantile(0.95)),
            p99_ms: ms(self.quantile(0.99)),
        }
    }
}

/// The labels of one exposition line, in order.
type Labels<'a> = Vec<(&'a str, String)>;

/// One exposition line: name, labels, value.
fn parse_line(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut text = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, other)) => text.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => text.push(c),
            }
        }
        let end = end?;
        labels.push((key.trim_start_matches(','), text));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some((name, labels, value))
}

fn label<'a>(labels: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

fn is_error(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.starts_with('5') || s == "error")
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

impl Summary {
    /// The summary of a Prometheus text exposition, with at most `top` tenants.
    pub fn from_exposition(text: &str, top: usize) -> Summary {
        let bucket = format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_bucket");
        let sum = format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_sum");
        let count = format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_count");
        let mut all = Histogram::default();
        let mut tenants: BTreeMap<String, Histogram> = BTreeMap::new();
        let (mut hits, mut lookups) = (0.0, 0.0);
        let mut tenant_cache: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for line in text.lines() {
            let Some((name, labels, value)) = parse_line(line) else {
                continue;
            };
            let tenant = label(&labels, TENANT_LABEL).map(str::to_owned);
            let mut apply = |f: &mut dyn FnMut(&mut Histogram)| {
                f(&mut all);
                if let Some(t) = &tenant {
                    f(tenants.entry(t.clone()).or_default());
                }
            };
            if name == bucket {
                let Some(le) = label(&labels, "le").and_then(|l| match l {
                    "+Inf" => Some(f64::INFINITY),
                    l => l.parse().ok(),
                }) else {
                    continue;
                };
                apply(&mut |h| *h.buckets.entry(Bound(le)).or_default() += value);
            } else if name == sum {
                apply(&mut |h| h.sum += value);
            } else if name == count {
                let error = is_error(label(&labels, "status"));
                apply(&mut |h| {
                    h.count += value;
                    if error {
                        h.errors += value;
                    }
                });
            } else if name == REQUESTS_TOTAL {
                lookups += value;
                if label(&labels, "result") == Some("hit") {
                    hits += value;
                }
            } else if name == TENANT_LOOKUPS_TOTAL {
                if let Some(t) = tenant {
                    let entry = tenant_cache.entry(t).or_default();
                    entry.1 += value;
                    if label(&labels, "result") == Some("hit") {
                        entry.0 += value;
                    }
                }
            }
        }
        let mut tenants: Vec<TenantSummary> = tenants
            .into_iter()
            .map(|(tenant, h)| TenantSummary {
                cache_hit_rate: tenant_cache
                    .get(&tenant)
                    .filter(|(_, n)| *n > 0.0)
                    .map(|(h, n)| h / n),
                requests: h.count as u64,
                errors: h.errors as u64,
                error_ratio: ratio(h.errors, h.count),
                latency: h.latency(),
                tenant,
            })
            .collect();
        tenants.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.tenant.cmp(&b.tenant)));
        tenants.truncate(top);
        Summary {
            requests: all.count as u64,
            errors: all.errors as u64,
            error_ratio: ratio(all.errors, all.count),
            latency: all.latency(),
            cache_hit_rate: (lookups > 0.0).then(|| hits / lookups),
            tenants,
        }
    }
}

impl crate::recorder::Metrics {
    /// The [`Summary`] of everything recorded so far, with at most `top` tenants.
    pub fn summary(&self, top: usize) -> Summary {
        self.run_upkeep();
        Summary::from_exposition(&self.render(), top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_parse_with_escaped_labels() {
        let (name, labels, value) =
            parse_line(r#"x_bucket{a="1",b="q\"uo\\te",le="+Inf"} 42"#).unwrap();
        assert_eq!((name, value), ("x_bucket", 42.0));
        assert_eq!(labels[1], ("b", "q\"uo\\te".to_owned()));
        assert_eq!(labels[2], ("le", "+Inf".to_owned()));
        assert_eq!(parse_line("plain 1.5").unwrap().2, 1.5);
        assert!(parse_line("# HELP x y").is_none());
        assert!(parse_line("broken{a=\"1 2").is_none());
    }

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        let mut h = Histogram::default();
        for (le, n) in [
            (0.1, 50.0),
            (0.2, 90.0),
            (0.5, 100.0),
            (f64::INFINITY, 100.0),
        ] {
            h.buckets.insert(Bound(le), n);
        }
        // rank 50 of 100 falls at the top of the first bucket.
        assert!((h.quantile(0.5) - 0.1).abs() < 1e-9);
        // rank 70: 20 of the 40 in (0.1, 0.2] → 0.15.
        assert!((h.quantile(0.7) - 0.15).abs() < 1e-9);
        // rank 99: 9 of the 10 in (0.2, 0.5] → 0.47.
        assert!((h.quantile(0.99) - 0.47).abs() < 1e-9);
    }
}
