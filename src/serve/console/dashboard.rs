//! The dashboard: the call log's analytics for the whole gateway, one
//! service or one application, over the last hour, day, week or 30 days:
//! figures, requests and errors over time, latency percentiles, tokens
//! and cost, and the top services, applications and models.

use super::api::query;
use super::chart::{data_url, Line};
use super::render::{ok, Page};
use super::session::viewer;
use super::Shared;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The ranges offered, and their length in seconds.
const RANGES: &[(&str, i64)] = &[("1h", 3600), ("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];

/// A point's figure (the API flattens a point's figures into it).
fn figure(p: &Value, name: &str) -> Option<f64> {
    p.get(name).and_then(Value::as_f64)
}

/// The charts of a timeseries answer, as `data:` URLs.
fn charts(series: &Value) -> Vec<Value> {
    let points = series
        .get("points")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let labels: Vec<String> = points
        .iter()
        .map(|p| {
            let t = p.get("time").and_then(Value::as_str).unwrap_or("");
            t.get(5..16).unwrap_or(t).replace('T', " ")
        })
        .collect();
    let col = |name: &str| points.iter().map(|p| figure(p, name)).collect::<Vec<_>>();
    let traffic = data_url(
        "Requests and errors",
        &labels,
        &[
            Line {
                name: "requests",
                color: "#2456d6",
                values: col("requests"),
            },
            Line {
                name: "errors",
                color: "#b3261e",
                values: col("errors"),
            },
        ],
    );
    let latency = data_url(
        "Latency (ms)",
        &labels,
        &[
            Line {
                name: "p50",
                color: "#1e7b34",
                values: col("p50_ms"),
            },
            Line {
                name: "p95",
                color: "#d08700",
                values: col("p95_ms"),
            },
            Line {
                name: "p99",
                color: "#b3261e",
                values: col("p99_ms"),
            },
        ],
    );
    let tokens: Vec<Option<f64>> = points
        .iter()
        .map(|p| Some(figure(p, "input_tokens").unwrap_or(0.0) + figure(p, "output_tokens").unwrap_or(0.0)))
        .collect();
    let usage = data_url(
        "AI tokens",
        &labels,
        &[Line {
            name: "tokens",
            color: "#6b3fd1",
            values: tokens,
        }],
    );
    let cost = data_url(
        "AI cost (USD)",
        &labels,
        &[Line {
            name: "cost",
            color: "#0b7285",
            values: col("cost_usd"),
        }],
    );
    vec![
        json!({"id": "chart-traffic", "title": "Requests and errors", "src": traffic}),
        json!({"id": "chart-latency", "title": "Latency", "src": latency}),
        json!({"id": "chart-tokens", "title": "AI tokens", "src": usage}),
        json!({"id": "chart-cost", "title": "AI cost", "src": cost}),
    ]
}

/// `GET /console`.
pub(super) async fn page(State(c): State<Shared>, h: HeaderMap, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let v = match viewer(&c, &h, "/console").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let range = q.get("range").map_or("24h", String::as_str);
    let secs = RANGES.iter().find(|(r, _)| *r == range).map_or(86_400, |(_, s)| *s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let from = (now - secs).to_string();
    let to = (now + 60).to_string();
    let service = q.get("service").map_or("", String::as_str);
    let application = q.get("application").map_or("", String::as_str);
    let filter = [
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("service", service),
        ("application", application),
    ];
    let summary = c
        .api
        .get(&v.token, &format!("/admin/v1/analytics/summary{}", query(&filter)))
        .await;
    let series = c
        .api
        .get(&v.token, &format!("/admin/v1/analytics/timeseries{}", query(&filter)))
        .await;
    let mut tops = Vec::new();
    for (by, metric, title) in [
        ("service", "requests", "Top services"),
        ("application", "requests", "Top applications"),
        ("route", "errors", "Routes by errors"),
        ("model", "tokens", "Models by tokens"),
    ] {
        let mut f = filter.to_vec();
        f.extend([("by", by), ("metric", metric), ("limit", "10")]);
        let top = c
            .api
            .get(&v.token, &format!("/admin/v1/analytics/top{}", query(&f)))
            .await;
        tops.push(json!({"title": title, "by": by, "items": top.items()}));
    }
    let services = c.api.get(&v.token, "/admin/v1/services?limit=1000").await.items();
    let applications = c.api.get(&v.token, "/admin/v1/applications?limit=1000").await.items();
    let error = (!summary.ok()).then(|| summary.problem());
    let ctx = json!({
        "title": "Dashboard", "nav": "dashboard", "me": v.json(), "error": error,
        "range": range, "ranges": RANGES.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        "service": service, "application": application,
        "services": services, "applications": applications,
        "figures": summary.ok().then_some(&summary.body), "charts": if series.ok() { charts(&series.body) } else { vec![] },
        "tops": tops,
    });
    ok(&c, Page::Dashboard, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_makes_four_charts() {
        let series = json!({"points": [
            {"time": "2026-11-30T10:00:00Z", "requests": 5, "errors": 1, "p50_ms": 2.0, "input_tokens": 3, "output_tokens": 4, "cost_usd": 0.5},
            {"time": "2026-11-30T10:01:00Z", "requests": 7, "errors": 0}
        ]});
        let c = charts(&series);
        assert_eq!(c.len(), 4);
        assert!(c
            .iter()
            .all(|c| c["src"].as_str().is_some_and(|s| s.starts_with("data:image/svg+xml"))));
    }
}
