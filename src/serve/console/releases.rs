//! A service's releases in the console: save the working copy as a
//! release, see one release against another (routes, upstreams and the
//! service added, changed, removed), publish one (a rollback is publishing
//! an earlier one) and accept or refuse a publish waiting for approval.
//! All through the admin API's release endpoints.

use super::api::{enc, query};
use super::forms::{Form, Outcome};
use super::render::{ok, redirect, Page};
use super::services::show_page;
use super::session::{failure, poster, viewer};
use super::Shared;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn service_api(name: &str) -> String {
    format!("/admin/v1/services/{}", enc(name))
}

/// `POST /console/services/{name}/releases`: the working copy saved.
pub(super) async fn create(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let back = format!("/console/services/{}", enc(&name));
    let v = match poster(&c, &h, &f, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = json!({"name": f.get("release").trim(), "note": f.get("note")});
    let a = c
        .api
        .post(&v.token, &format!("{}/releases", service_api(&name)), &body)
        .await;
    if !a.ok() {
        return show_page(&c, &v, &name, Outcome::error(a.problem())).await;
    }
    redirect(&back)
}

/// `GET /console/services/{name}/releases/{release}`: the release and its
/// difference from another (`?against=`, by default the one published).
pub(super) async fn show(
    State(c): State<Shared>,
    h: HeaderMap,
    Path((name, release)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let here = format!("/console/services/{}/releases/{}", enc(&name), enc(&release));
    let v = match viewer(&c, &h, &here).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let base = format!("{}/releases/{}", service_api(&name), enc(&release));
    let one = c.api.get(&v.token, &base).await;
    if !one.ok() {
        return failure(&c, &one);
    }
    let against = q.get("against").map_or("", String::as_str);
    let diff = c
        .api
        .get(&v.token, &format!("{base}/diff{}", query(&[("against", against)])))
        .await;
    let releases = c
        .api
        .get(&v.token, &format!("{}/releases", service_api(&name)))
        .await
        .items();
    let ctx = json!({
        "title": format!("{name} {release}"), "nav": "services", "me": v.json(),
        "name": name, "release": one.body, "releases": releases, "against": against,
        "diff": diff.ok().then_some(&diff.body), "diff_error": (!diff.ok()).then(|| diff.problem()),
    });
    ok(&c, Page::Release, ctx)
}

/// `POST .../releases/{release}/publish`: served at once, or waiting for
/// a service admin when the service asks for approval.
pub(super) async fn publish(
    State(c): State<Shared>,
    h: HeaderMap,
    Path((name, release)): Path<(String, String)>,
    f: Form,
) -> Response {
    let back = format!("/console/services/{}", enc(&name));
    let v = match poster(&c, &h, &f, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = format!("{}/releases/{}/publish", service_api(&name), enc(&release));
    let a = c.api.post(&v.token, &path, &json!({"comment": f.get("comment")})).await;
    let out = if !a.ok() {
        Outcome::error(a.problem())
    } else if a.body.get("status").and_then(Value::as_str) == Some("pending") || a.status.as_u16() == 202 {
        Outcome {
            notice: Some(format!("Publishing {release} waits for a service admin's approval.")),
            error: None,
        }
    } else {
        Outcome {
            notice: Some(format!("{release} is published: the gateway serves it now.")),
            error: None,
        }
    };
    show_page(&c, &v, &name, out).await
}

/// `POST .../publications/{id}/accept|refuse`.
pub(super) async fn decide(
    State(c): State<Shared>,
    h: HeaderMap,
    Path((name, id, action)): Path<(String, String, String)>,
    f: Form,
) -> Response {
    let back = format!("/console/services/{}", enc(&name));
    let v = match poster(&c, &h, &f, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if action != "accept" && action != "refuse" {
        return show_page(&c, &v, &name, Outcome::error("accept or refuse".into())).await;
    }
    let path = format!("{}/publications/{}/{action}", service_api(&name), enc(&id));
    let a = c.api.post(&v.token, &path, &json!({"comment": f.get("comment")})).await;
    let out = if a.ok() {
        let done = if action == "accept" { "accepted" } else { "refused" };
        Outcome {
            notice: Some(format!("The publication is {done}.")),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    show_page(&c, &v, &name, out).await
}
