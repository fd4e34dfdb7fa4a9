//! The call log: every filter of the API's `/admin/v1/logs`, pages by
//! cursor, and one call's detail (with its capture, when the route
//! captures).

use super::api::{enc, query};
use super::render::{ok, Page};
use super::session::{failure, viewer};
use super::Shared;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use std::collections::BTreeMap;

/// The API's filters, passed through as given.
const FILTERS: &[&str] = &[
    "service",
    "route",
    "application",
    "team",
    "status",
    "class",
    "error",
    "method",
    "path_prefix",
    "min_latency_ms",
    "provider",
    "model",
    "mcp_tool",
    "request_id",
    "cursor",
];

/// A `datetime-local` value (`2026-11-30T10:00`) as RFC 3339 in UTC; other
/// values as given.
fn instant(v: &str) -> String {
    if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') {
        format!("{v}:00Z")
    } else {
        v.to_string()
    }
}

/// `GET /console/logs`.
pub(super) async fn list(State(c): State<Shared>, h: HeaderMap, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let v = match viewer(&c, &h, "/console/logs").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let from = q.get("from").map(|f| instant(f)).unwrap_or_default();
    let to = q.get("to").map(|t| instant(t)).unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = vec![("from", from.as_str()), ("to", to.as_str()), ("limit", "100")];
    for name in FILTERS {
        if let Some(val) = q.get(*name) {
            pairs.push((name, val.as_str()));
        }
    }
    let page = c.api.get(&v.token, &format!("/admin/v1/logs{}", query(&pairs))).await;
    let next = page.body.get("next").and_then(|n| n.as_str()).map(|cursor| {
        let mut more: Vec<(&str, &str)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "cursor")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        more.push(("cursor", cursor));
        format!("/console/logs{}", query(&more))
    });
    let ctx = json!({"title": "Call log", "nav": "logs", "me": v.json(), "calls": page.items(), "q": q, "next": next,
                     "error": (!page.ok()).then(|| page.problem())});
    ok(&c, Page::Logs, ctx)
}

/// `GET /console/logs/{request_id}`.
pub(super) async fn show(State(c): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    let v = match viewer(&c, &h, &format!("/console/logs/{}", enc(&id))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let call = c.api.get(&v.token, &format!("/admin/v1/logs/{}", enc(&id))).await;
    if !call.ok() {
        return failure(&c, &call);
    }
    let ctx = json!({"title": format!("Call {id}"), "nav": "logs", "me": v.json(), "call": call.body});
    ok(&c, Page::Log, ctx)
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_times_become_utc() {
        assert_eq!(super::instant("2026-11-30T10:00"), "2026-11-30T10:00:00Z");
        assert_eq!(super::instant("1764496800"), "1764496800");
    }
}
