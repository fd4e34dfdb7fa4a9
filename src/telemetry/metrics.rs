//! Prometheus metrics (the `prometheus` crate: the standard Rust client, with
//! text encoding built in). Families and labels follow the README's metrics table; label values
//! are always bounded: route and upstream names from the config, a fixed set
//! of methods, numeric statuses, never raw paths or client ids.

use once_cell::sync::{Lazy, OnceCell};
use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub(crate) struct Metrics {
    pub registry: Registry,
    /// Every family's name, without the `portico_` prefix (what the
    /// dashboard under `conf/grafana/` may query; its test reads it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub names: Vec<String>,
    pub requests_total: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub target_healthy: IntGaugeVec,
    pub rate_limited_total: IntCounterVec,
    pub config_reloads_total: IntCounterVec,
    pub access_log_dropped_total: IntCounter,
    /// Call records dropped because the call log's writer fell behind (or
    /// its database failed).
    pub call_log_dropped_total: IntCounter,
    /// Call records written to the call log's database.
    pub call_log_written_total: IntCounter,
    /// Clients too slow to send their request head or body, by phase.
    pub client_timeouts_total: IntCounterVec,
    /// Provider keys refused by their provider (401/403), by provider and key.
    pub ai_provider_auth_failures_total: IntCounterVec,
    /// AI calls of a model the price table has no price for, by provider and model.
    pub ai_unpriced_requests_total: IntCounterVec,
    /// 1 while store mode reads its store, 0 while it serves the last good config without it.
    pub store_up: IntGauge,
    /// 1 while store mode serves the last good config kept in `state_dir`
    /// (the store could not be read when it was compiled), else 0.
    pub config_from_last_good: IntGauge,
    /// Budget spend that could not be written to (or read back from) its database.
    pub spend_flush_errors_total: IntCounter,
    /// AI response cache lookups, by result (hit, miss).
    pub ai_cache_requests_total: IntCounterVec,
    /// AI calls whose usage was estimated (the provider reported none).
    pub ai_usage_estimated_total: IntCounterVec,
    pub ai_tokens_total: IntCounterVec,
    pub ai_cost_usd_total: CounterVec,
}

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Registers `c`, noting the names of its families.
fn register(
    registry: &Registry,
    names: &mut Vec<String>,
    c: Box<dyn prometheus::core::Collector>,
) -> Result<(), prometheus::Error> {
    names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
    registry.register(c)
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("portico".into()), None)?;
    let mut names = Vec::new();
    let requests_total = IntCounterVec::new(
        Opts::new("requests_total", "Requests answered, by route, method and status."),
        &["route", "method", "status"],
    )?;
    let request_duration = HistogramVec::new(
        HistogramOpts::new(
            "request_duration_seconds",
            "Time from request to last response byte, by route.",
        )
        .buckets(BUCKETS.to_vec()),
        &["route"],
    )?;
    let upstream_duration = HistogramVec::new(
        HistogramOpts::new("upstream_duration_seconds", "Time spent on the upstream, by upstream.")
            .buckets(BUCKETS.to_vec()),
        &["upstream"],
    )?;
    let target_healthy = IntGaugeVec::new(
        Opts::new(
            "upstream_target_healthy",
            "1 when the target is in rotation, 0 when not.",
        ),
        &["upstream", "target"],
    )?;
    let rate_limited_total = IntCounterVec::new(
        Opts::new("rate_limited_total", "Requests refused by a rate limit, by route."),
        &["route"],
    )?;
    let config_reloads_total = IntCounterVec::new(
        Opts::new("config_reloads_total", "Config reloads, by result (ok, error)."),
        &["result"],
    )?;
    let client_timeouts_total = IntCounterVec::new(
        Opts::new(
            "client_timeouts_total",
            "Requests answered 408 because the client was too slow, by phase (head, body).",
        ),
        &["phase"],
    )?;
    let ai_provider_auth_failures_total = IntCounterVec::new(
        Opts::new(
            "ai_provider_auth_failures_total",
            "Provider answers 401/403 to a configured key, by provider and key (`provider.keys[i]`).",
        ),
        &["provider", "key"],
    )?;
    let ai_unpriced_requests_total = IntCounterVec::new(
        Opts::new(
            "ai_unpriced_requests_total",
            "AI calls of a model without a price (cost counted as 0, or refused), by provider and model.",
        ),
        &["provider", "model"],
    )?;
    let store_up = IntGauge::new(
        "store_up",
        "Store mode: 1 while the store is read, 0 while the last good config is served without it.",
    )?;
    let config_from_last_good = IntGauge::new(
        "config_from_last_good",
        "Store mode: 1 while the config served is the last good one kept in state_dir (the store could not be read), else 0.",
    )?;
    let spend_flush_errors_total = IntCounter::new(
        "spend_flush_errors_total",
        "Times AI budget spend could not be written to or read from its database (spend is kept in memory meanwhile).",
    )?;
    let ai_cache_requests_total = IntCounterVec::new(
        Opts::new(
            "ai_cache_requests_total",
            "Cacheable AI requests on routes with ai.cache, by result (hit: answered from the cache, free; miss).",
        ),
        &["result"],
    )?;
    let ai_usage_estimated_total = IntCounterVec::new(
        Opts::new(
            "ai_usage_estimated_total",
            "AI calls charged an estimate because the provider reported no usage (e.g. the client left mid-stream), by provider.",
        ),
        &["provider"],
    )?;
    let access_log_dropped_total = IntCounter::new(
        "access_log_dropped_total",
        "Access log lines dropped because the writer fell behind.",
    )?;
    let call_log_dropped_total = IntCounter::new(
        "call_log_dropped_total",
        "Call records dropped because the call log's writer fell behind or its database failed.",
    )?;
    let call_log_written_total = IntCounter::new(
        "call_log_written_total",
        "Call records written to the call log's database (raw records kept, sampled ones not counted).",
    )?;
    let ai_tokens_total = IntCounterVec::new(
        Opts::new(
            "ai_tokens_total",
            "LLM tokens, by consumer, model and kind (prompt, completion, cached).",
        ),
        &["consumer", "model", "kind"],
    )?;
    let ai_cost_usd_total = CounterVec::new(
        Opts::new(
            "ai_cost_usd_total",
            "LLM cost in USD from the price table, by consumer and model.",
        ),
        &["consumer", "model"],
    )?;
    register(&registry, &mut names, Box::new(ai_tokens_total.clone()))?;
    register(&registry, &mut names, Box::new(ai_cost_usd_total.clone()))?;
    register(&registry, &mut names, Box::new(requests_total.clone()))?;
    register(&registry, &mut names, Box::new(request_duration.clone()))?;
    register(&registry, &mut names, Box::new(upstream_duration.clone()))?;
    register(&registry, &mut names, Box::new(target_healthy.clone()))?;
    register(&registry, &mut names, Box::new(rate_limited_total.clone()))?;
    register(&registry, &mut names, Box::new(config_reloads_total.clone()))?;
    register(&registry, &mut names, Box::new(access_log_dropped_total.clone()))?;
    register(&registry, &mut names, Box::new(call_log_dropped_total.clone()))?;
    register(&registry, &mut names, Box::new(call_log_written_total.clone()))?;
    register(&registry, &mut names, Box::new(client_timeouts_total.clone()))?;
    register(&registry, &mut names, Box::new(ai_provider_auth_failures_total.clone()))?;
    register(&registry, &mut names, Box::new(ai_unpriced_requests_total.clone()))?;
    register(&registry, &mut names, Box::new(ai_usage_estimated_total.clone()))?;
    register(&registry, &mut names, Box::new(ai_cache_requests_total.clone()))?;
    register(&registry, &mut names, Box::new(store_up.clone()))?;
    register(&registry, &mut names, Box::new(config_from_last_good.clone()))?;
    register(&registry, &mut names, Box::new(spend_flush_errors_total.clone()))?;
    #[cfg(target_os = "linux")]
    register(
        &registry,
        &mut names,
        Box::new(prometheus::process_collector::ProcessCollector::for_self()),
    )?;
    Ok(Metrics {
        registry,
        names,
        requests_total,
        request_duration,
        upstream_duration,
        target_healthy,
        rate_limited_total,
        ai_tokens_total,
        ai_cost_usd_total,
        config_reloads_total,
        access_log_dropped_total,
        call_log_dropped_total,
        call_log_written_total,
        client_timeouts_total,
        ai_unpriced_requests_total,
        ai_usage_estimated_total,
        ai_cache_requests_total,
        store_up,
        config_from_last_good,
        spend_flush_errors_total,
        ai_provider_auth_failures_total,
    })
}

/// The process-wide metrics. Registration fails only on duplicate or invalid
/// names, which this fixed set cannot have (a unit test builds it): no input
/// reaches this `expect`, the one outside tests.
#[allow(clippy::expect_used)]
pub(crate) static METRICS: Lazy<Metrics> = Lazy::new(|| build().expect("fixed metric families"));

const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// Index of a method label in [`METHODS`]: a fixed set, so clients cannot mint label values.
fn method_index(m: &http::Method) -> usize {
    match *m {
        http::Method::GET => 0,
        http::Method::POST => 1,
        http::Method::PUT => 2,
        http::Method::DELETE => 3,
        http::Method::PATCH => 4,
        http::Method::HEAD => 5,
        http::Method::OPTIONS => 6,
        http::Method::CONNECT => 7,
        http::Method::TRACE => 8,
        _ => 9,
    }
}

/// Statuses whose counters a route caches; others go through the labelled lookup.
const CACHED_STATUSES: [u16; 20] = [
    200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 413, 429, 431, 500, 502, 503, 504,
];

/// `portico_requests_total` series of one route. The prometheus crate finds a
/// series under a lock; this caches each (method, common status) series on
/// first use, so the request path then only does an atomic add.
pub struct RouteCounters {
    route: String,
    cells: Box<[OnceCell<IntCounter>]>,
}

impl RouteCounters {
    pub fn new(route: &str) -> Self {
        let cells = (0..METHODS.len() * CACHED_STATUSES.len())
            .map(|_| OnceCell::new())
            .collect();
        RouteCounters {
            route: route.to_string(),
            cells,
        }
    }

    /// Counts one answered request (`status` 0: none was sent).
    pub fn inc(&self, method: &http::Method, status: u16) {
        let m = method_index(method);
        let series = || {
            let status = status.to_string();
            METRICS
                .requests_total
                .with_label_values(&[self.route.as_str(), METHODS[m], status.as_str()])
        };
        match CACHED_STATUSES.iter().position(|s| *s == status) {
            Some(si) => self.cells[m * CACHED_STATUSES.len() + si].get_or_init(series).inc(),
            None => series().inc(),
        }
    }
}

/// The per-route series, resolved when the route is compiled.
pub struct RouteMetrics {
    pub requests: RouteCounters,
    /// `portico_request_duration_seconds{route}`.
    pub duration: Histogram,
}

impl RouteMetrics {
    pub fn new(route: &str) -> Self {
        RouteMetrics {
            requests: RouteCounters::new(route),
            duration: METRICS.request_duration.with_label_values(&[route]),
        }
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteMetrics")
    }
}

/// Series for requests that matched no route (`route="(none)"`).
pub(crate) static UNROUTED: Lazy<RouteMetrics> = Lazy::new(|| RouteMetrics::new("(none)"));

/// The text exposition of every family.
pub(crate) fn render() -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf) {
        log::error!("metrics encoding failed: {e}");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_counters_count_cached_and_uncached_statuses() {
        let c = super::RouteCounters::new("unit-test-route");
        c.inc(&http::Method::GET, 200);
        c.inc(&http::Method::GET, 200);
        c.inc(&http::Method::from_bytes(b"BREW").unwrap(), 418);
        let get = |m: &str, s: &str| {
            super::METRICS
                .requests_total
                .with_label_values(&["unit-test-route", m, s])
                .get()
        };
        assert_eq!(get("GET", "200"), 2);
        assert_eq!(get("OTHER", "418"), 1);
    }

    #[test]
    fn families_build_and_render() {
        let m = super::build().unwrap();
        m.requests_total.with_label_values(&["r", "GET", "200"]).inc();
        let mut buf = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &m.registry.gather(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("portico_requests_total{method=\"GET\",route=\"r\",status=\"200\"} 1"));
    }

    /// Every query of the Grafana dashboard names a family Portico exports
    /// (histogram series by their family), and every panel has a query.
    #[test]
    fn the_grafana_dashboard_queries_only_exported_metrics() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../conf/grafana/portico.json")).unwrap();
        let m = super::build().unwrap();
        let exported = |name: &str| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            m.names.iter().any(|n| n == name || n == base)
        };
        let name = regex::Regex::new(r"portico_[a-z0-9_]+").unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 10, "a dashboard, not a stub");
        let mut seen = 0;
        for panel in panels {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{} has no query", panel["title"]);
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                let found: Vec<&str> = name.find_iter(expr).map(|x| x.as_str()).collect();
                assert!(!found.is_empty(), "{expr} names no Portico metric");
                for f in found {
                    let bare = f.trim_start_matches("portico_");
                    assert!(
                        exported(bare),
                        "{}: {f} is not a metric Portico exports",
                        panel["title"]
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen >= 20, "{seen} metric references");
        assert!(!exported("no_such_metric_total"), "the check can fail");
    }
}
