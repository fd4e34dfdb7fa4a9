//! The approval queue: subscriptions waiting for a decision on the
//! services the signed-in person decides for, approved or rejected with a
//! reason, and every subscription they may see (cancel ends one). Only
//! people who decide (admins, operators, team and service admins) reach
//! it; a developer sees their applications' subscriptions on each
//! application's page.

use super::api::enc;
use super::forms::{Form, Outcome};
use super::render::{page, Page};
use super::session::{poster, viewer, Viewer};
use super::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

fn refused(c: &Shared, v: &Viewer) -> Response {
    let ctx = json!({"title": "Not allowed", "me": v.json(),
        "message": "Only a service's team admins and service admins (and the gateway's admins) approve subscriptions."});
    page(c, StatusCode::FORBIDDEN, Page::Error, ctx)
}

async fn queue(c: &Shared, v: &Viewer, out: Outcome) -> Response {
    if !v.decides() {
        return refused(c, v);
    }
    let all = c.api.get(&v.token, "/admin/v1/subscriptions?limit=1000").await;
    let items = all.items();
    let status_of = |s: &Value| {
        s.pointer("/body/status")
            .and_then(Value::as_str)
            .unwrap_or("approved")
            .to_string()
    };
    let pending: Vec<&Value> = items.iter().filter(|s| status_of(s) == "pending").collect();
    let code = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({"title": "Approvals", "nav": "subscriptions", "me": v.json(), "pending": pending, "all": items,
                     "notice": out.notice, "error": out.error.or_else(|| (!all.ok()).then(|| all.problem()))});
    page(c, code, Page::Subscriptions, ctx)
}

/// `GET /console/subscriptions`.
pub(super) async fn list(State(c): State<Shared>, h: HeaderMap) -> Response {
    match viewer(&c, &h, "/console/subscriptions").await {
        Ok(v) => queue(&c, &v, Outcome::default()).await,
        Err(r) => r,
    }
}

/// `POST /console/subscriptions/{name}/approve|reject|cancel`.
pub(super) async fn decide(
    State(c): State<Shared>,
    h: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    f: Form,
) -> Response {
    let v = match poster(&c, &h, &f, "/console/subscriptions").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !v.decides() {
        return refused(&c, &v);
    }
    let mut body = json!({});
    if let Some(r) = f.opt("reason") {
        body["reason"] = json!(r);
    }
    let path = format!("/admin/v1/subscriptions/{}/{}", enc(&name), enc(&action));
    let a = c.api.post(&v.token, &path, &body).await;
    let out = if a.ok() {
        let status = a
            .body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or(&action)
            .to_string();
        Outcome {
            notice: Some(format!("{name} is {status}.")),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    queue(&c, &v, out).await
}
