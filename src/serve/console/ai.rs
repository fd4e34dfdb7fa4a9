//! The AI gateway's settings as the API shows them: providers and their
//! keys (fingerprints only: the API never shows more of a secret), models
//! and aliases, access rules and budgets, and spend per application this
//! month from the call log.

use super::render::{ok, Page};
use super::session::viewer;
use super::Shared;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

/// `GET /console/ai`.
pub(super) async fn page(State(c): State<Shared>, h: HeaderMap) -> Response {
    let v = match viewer(&c, &h, "/console/ai").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let list = |kind: &str| format!("/admin/v1/resources/{kind}?limit=1000");
    let providers = c.api.get(&v.token, &list("ai_provider")).await.items();
    let models = c.api.get(&v.token, &list("ai_model")).await.items();
    let budgets = c.api.get(&v.token, &list("ai_budget")).await.items();
    let access = c.api.get(&v.token, &list("ai_access")).await.items();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let from = (now - 31 * 86_400).to_string();
    let usage = c
        .api
        .get(
            &v.token,
            &format!("/admin/v1/analytics/usage?group=application&period=month&from={from}"),
        )
        .await;
    let spend = usage.body.as_array().cloned().unwrap_or_else(|| usage.items());
    let ctx = json!({"title": "AI", "nav": "ai", "me": v.json(), "providers": providers, "models": models,
                     "budgets": budgets, "access": access, "spend": spend});
    ok(&c, Page::Ai, ctx)
}
