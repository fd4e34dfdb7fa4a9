//! Applications (a team's consumers): the list, a new one, an
//! application's page with its credentials (a new key is shown once; only
//! its digest is kept), revoking one, its subscriptions and asking for a
//! new one.

use super::api::enc;
use super::forms::{Form, Outcome};
use super::render::{page, redirect, Page};
use super::session::{failure, poster, viewer, Viewer};
use super::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

async fn list_page(c: &Shared, v: &Viewer, out: Outcome) -> Response {
    let apps = c.api.get(&v.token, "/admin/v1/applications?limit=1000").await;
    let teams = c.api.get(&v.token, "/admin/v1/teams?limit=1000").await.items();
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({"title": "Applications", "nav": "applications", "me": v.json(), "applications": apps.items(),
                     "teams": teams, "notice": out.notice, "error": out.error.or_else(|| (!apps.ok()).then(|| apps.problem()))});
    page(c, status, Page::Applications, ctx)
}

/// `GET /console/applications`.
pub(super) async fn list(State(c): State<Shared>, h: HeaderMap) -> Response {
    match viewer(&c, &h, "/console/applications").await {
        Ok(v) => list_page(&c, &v, Outcome::default()).await,
        Err(r) => r,
    }
}

/// `POST /console/applications`.
pub(super) async fn create(State(c): State<Shared>, h: HeaderMap, f: Form) -> Response {
    let v = match poster(&c, &h, &f, "/console/applications").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(name) = f.opt("name") else {
        return list_page(&c, &v, Outcome::error("Give the application a name.".into())).await;
    };
    let body = json!({"team": f.opt("team"), "description": f.get("description")});
    let a = c
        .api
        .put(&v.token, &format!("/admin/v1/applications/{}", enc(&name)), &body)
        .await;
    if !a.ok() {
        return list_page(&c, &v, Outcome::error(a.problem())).await;
    }
    redirect(&format!("/console/applications/{}", enc(&name)))
}

/// An application's credentials as rows: id, type, expiry.
fn credentials(body: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let creds = body.get("credentials").cloned().unwrap_or(Value::Null);
    for (i, k) in creds
        .get("api_keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let id = k
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("api_keys[{i}]"), str::to_string);
        out.push(json!({"id": id, "type": "api key", "expires_at": k.get("expires_at"), "created_at": k.get("created_at"),
                        "fingerprint": k.get("sha256").and_then(Value::as_str).map(|d| format!("sha256:{}", d.get(..12).unwrap_or(d)))}));
    }
    if let Some(b) = creds.get("basic").filter(|b| !b.is_null()) {
        out.push(json!({"id": b.get("id").or(b.get("username")), "type": "basic", "expires_at": b.get("expires_at")}));
    }
    if let Some(t) = creds.get("jwt").filter(|t| !t.is_null()) {
        out.push(
            json!({"id": t.get("id").or(t.get("subject")), "type": "token subject", "expires_at": t.get("expires_at")}),
        );
    }
    out
}

/// An application's page; `made` is a credential just made (shown once).
pub(super) async fn show_page(c: &Shared, v: &Viewer, name: &str, out: Outcome, made: Option<Value>) -> Response {
    let app = c
        .api
        .get(&v.token, &format!("/admin/v1/applications/{}", enc(name)))
        .await;
    if !app.ok() {
        return failure(c, &app);
    }
    let subs = c
        .api
        .get(
            &v.token,
            &format!("/admin/v1/subscriptions?limit=1000&application={}", enc(name)),
        )
        .await
        .items();
    let services = c.api.get(&v.token, "/admin/v1/services?limit=1000").await.items();
    let body = app.body.clone();
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({
        "title": name, "nav": "applications", "me": v.json(), "name": name, "app": body,
        "credentials": credentials(&body), "subscriptions": subs, "services": services, "made": made,
        "notice": out.notice, "error": out.error,
    });
    page(c, status, Page::Application, ctx)
}

/// `GET /console/applications/{name}`.
pub(super) async fn show(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    match viewer(&c, &h, &format!("/console/applications/{}", enc(&name))).await {
        Ok(v) => show_page(&c, &v, &name, Outcome::default(), None).await,
        Err(r) => r,
    }
}

/// `POST /console/applications/{name}/credentials`: a new API key, shown
/// on this answer only.
pub(super) async fn add_key(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, &format!("/console/applications/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut body = json!({"type": "api_key"});
    if let Some(e) = f.opt("expires_at") {
        body["expires_at"] = json!(if e.len() == 10 { format!("{e}T00:00:00Z") } else { e });
    }
    let a = c
        .api
        .post(
            &v.token,
            &format!("/admin/v1/applications/{}/credentials", enc(&name)),
            &body,
        )
        .await;
    if !a.ok() {
        return show_page(&c, &v, &name, Outcome::error(a.problem()), None).await;
    }
    show_page(&c, &v, &name, Outcome::default(), Some(a.body)).await
}

/// `POST /console/applications/{name}/credentials/{id}/revoke`.
pub(super) async fn revoke_key(
    State(c): State<Shared>,
    h: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    f: Form,
) -> Response {
    let v = match poster(&c, &h, &f, &format!("/console/applications/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = format!("/admin/v1/applications/{}/credentials/{}", enc(&name), enc(&id));
    let a = c.api.delete(&v.token, &path).await;
    let out = if a.ok() {
        Outcome {
            notice: Some(format!(
                "Credential {id} is revoked: the next request with it is refused."
            )),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    show_page(&c, &v, &name, out, None).await
}

/// `POST /console/applications/{name}/subscribe`: ask for a service.
pub(super) async fn subscribe(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, &format!("/console/applications/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let out = ask(c.as_ref(), &v, &name, f.get("service"), f.get("reason")).await;
    show_page(&c, &v, &name, out, None).await
}

/// Asks for `application`'s subscription to `service`, with a reason.
pub(super) async fn ask(c: &super::Console, v: &Viewer, application: &str, service: &str, reason: &str) -> Outcome {
    let body = json!({"application": application, "service": service, "reason": reason});
    let a = c.api.post(&v.token, "/admin/v1/subscriptions", &body).await;
    if !a.ok() {
        return Outcome::error(a.problem());
    }
    let status = a.body.get("status").and_then(Value::as_str).unwrap_or("pending");
    let notice = if status == "approved" {
        format!("{application} is subscribed to {service}.")
    } else {
        format!("{application}'s subscription to {service} waits for the service team's approval.")
    };
    Outcome {
        notice: Some(notice),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_listed_by_id_with_fingerprints_only() {
        let body = json!({"credentials": {"api_keys": [{"id": "k1", "sha256": "abcdef0123456789abcd"}, {"key": {"env": "X"}}],
                                           "basic": {"username": "shop", "password": "$argon2..."}}});
        let rows = credentials(&body);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["id"], "k1");
        assert_eq!(rows[0]["fingerprint"], "sha256:abcdef012345");
        assert_eq!(rows[1]["id"], "api_keys[1]");
        assert_eq!(rows[2]["id"], "shop");
        assert!(!serde_json::to_string(&rows).unwrap().contains("argon2"));
    }
}
