//! Rollups, made as records arrive: each batch the writer takes is summed
//! per minute and dimension set in memory, then per hour and per day from
//! those sums, and each sum is added to its row (an upsert), so a query over
//! days reads a few thousand rows, never the raw records.
//!
//! Latency goes into fixed buckets ([`BOUNDS_MS`]); two rows' histograms
//! add, so percentiles over any set of rows are exact to a bucket and
//! interpolated within it ([`percentile`]).

use super::schema::{rollup_table, PROJECTIONS};
use crate::telemetry::call::CallRecord;
use std::collections::HashMap;

/// Upper bounds of the latency buckets, in milliseconds; the last bucket
/// holds everything slower.
pub(crate) const BOUNDS_MS: [u64; 15] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
];

/// Buckets in a histogram: one per bound and one for the rest.
pub(crate) const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The bucket of a latency in microseconds.
pub(crate) fn bucket_of(duration_us: u64) -> usize {
    BOUNDS_MS
        .iter()
        .position(|&b| duration_us <= b * 1000)
        .unwrap_or(BOUNDS_MS.len())
}

/// The `q` quantile (0 to 1) of a histogram, in milliseconds: the bucket
/// holding it, interpolated linearly within it (the last, unbounded bucket
/// answers its lower bound).
pub(crate) fn percentile(hist: &[i64], q: f64) -> Option<f64> {
    let total: i64 = hist.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0i64;
    for (i, &n) in hist.iter().enumerate() {
        if n <= 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let low = if i == 0 { 0 } else { BOUNDS_MS[i - 1] } as f64;
            let Some(&high) = BOUNDS_MS.get(i) else {
                return Some(low);
            };
            let within = (rank - seen as f64) / n as f64;
            return Some(low + (high as f64 - low) * within);
        }
        seen += n;
    }
    None
}

/// A rollup row's key: its bucket and dimensions (`""`: none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub bucket: i64,
    pub service: String,
    pub service_team: String,
    pub route: String,
    pub application: String,
    pub team: String,
    pub status_class: i64,
    pub provider: String,
    pub model: String,
}

/// A rollup row's sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sums {
    pub requests: i64,
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub duration_us: i64,
    pub input_tokens: i64,
    pub cached_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub hist: [i64; BUCKETS],
}

impl Sums {
    /// Adds another row's sums.
    pub(crate) fn merge(&mut self, o: &Sums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.duration_us += o.duration_us;
        self.input_tokens += o.input_tokens;
        self.cached_tokens += o.cached_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        for (a, b) in self.hist.iter_mut().zip(o.hist.iter()) {
            *a += b;
        }
    }

    fn add(&mut self, r: &CallRecord) {
        let us = u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX);
        self.requests += 1;
        self.errors += i64::from(is_error(r));
        self.bytes_in += int(r.bytes_in);
        self.bytes_out += int(r.bytes_out);
        self.duration_us += int(us);
        if let Some(ai) = &r.ai {
            self.input_tokens += int(ai.prompt_tokens);
            self.cached_tokens += int(ai.cached_tokens);
            self.output_tokens += int(ai.completion_tokens);
            self.cost_usd += ai.cost_usd;
        }
        if let Some(h) = self.hist.get_mut(bucket_of(us)) {
            *h += 1;
        }
    }
}

/// A call counted as an error: a 5xx, or a failure Portico named.
pub(crate) fn is_error(r: &CallRecord) -> bool {
    r.status >= 500 || r.error.is_some()
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

/// The rollups of one batch: per minute, hour and day, in every projection.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Each rollup table's rows.
    pub tables: Vec<(String, HashMap<Key, Sums>)>,
}

impl Key {
    /// The key with only `dims` kept (the rest `""`, or 0 for the class).
    fn project(&self, dims: &[&str]) -> Key {
        let keep = |name: &str, v: &String| if dims.contains(&name) { v.clone() } else { String::new() };
        Key {
            bucket: self.bucket,
            service: keep("service", &self.service),
            service_team: keep("service_team", &self.service_team),
            route: keep("route", &self.route),
            application: keep("application", &self.application),
            team: keep("team", &self.team),
            status_class: if dims.contains(&"status_class") {
                self.status_class
            } else {
                0
            },
            provider: keep("provider", &self.provider),
            model: keep("model", &self.model),
        }
    }
}

/// Bucket widths of the levels, in seconds.
pub(crate) const WIDTHS: [i64; 3] = [60, 3600, 86_400];

impl Batch {
    /// Sums `records` (every call, kept or sampled out) into the levels.
    pub(crate) fn of(records: &[std::sync::Arc<CallRecord>]) -> Batch {
        let mut minute: HashMap<Key, Sums> = HashMap::new();
        for r in records {
            let secs = r.unix_ms().div_euclid(1000);
            let ai = r.ai.as_deref();
            let key = Key {
                bucket: secs - secs.rem_euclid(WIDTHS[0]),
                service: text(r.service.as_deref()),
                service_team: text(r.service_team.as_deref()),
                route: r.route.to_string(),
                application: text(r.consumer.as_deref()),
                team: text(r.team.as_deref()),
                status_class: i64::from(r.status / 100),
                provider: text(ai.map(|a| a.provider.as_str())),
                model: text(ai.map(|a| a.model.as_str())),
            };
            minute.entry(key).or_default().add(r);
        }
        let mut out = Batch::default();
        for (level, &width) in WIDTHS.iter().enumerate() {
            let mut full: HashMap<Key, Sums> = HashMap::new();
            for (k, s) in &minute {
                let mut k = k.clone();
                k.bucket -= k.bucket.rem_euclid(width);
                full.entry(k).or_default().merge(s);
            }
            for (p, (_, dims)) in PROJECTIONS.iter().enumerate() {
                let mut map: HashMap<Key, Sums> = HashMap::new();
                for (k, s) in &full {
                    map.entry(k.project(dims)).or_default().merge(s);
                }
                out.tables.push((rollup_table(level, p), map));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_their_buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1000), 0);
        assert_eq!(bucket_of(1001), 1);
        assert_eq!(bucket_of(60_000_000), BOUNDS_MS.len() - 1);
        assert_eq!(bucket_of(u64::MAX), BOUNDS_MS.len());
    }

    #[test]
    fn percentiles_come_from_merged_histograms() {
        let mut a = [0i64; BUCKETS];
        a[bucket_of(3_000)] = 90; // 2-5 ms
        let mut b = [0i64; BUCKETS];
        b[bucket_of(700_000)] = 10; // 500-1000 ms
        let merged: Vec<i64> = a.iter().zip(b.iter()).map(|(x, y)| x + y).collect();
        let p50 = percentile(&merged, 0.5).unwrap_or_default();
        assert!((2.0..=5.0).contains(&p50), "{p50}");
        let p99 = percentile(&merged, 0.99).unwrap_or_default();
        assert!((500.0..=1000.0).contains(&p99), "{p99}");
        assert_eq!(percentile(&[0; BUCKETS], 0.5), None);
    }
}
