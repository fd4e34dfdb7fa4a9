//! People and the record: teams and their members with roles, users
//! (system roles and passwords; the API keeps only an argon2 hash), the
//! signed-in person's settings and tokens, and the audit log.

use super::api::enc;
use super::forms::{Form, Outcome};
use super::render::{ok, page, Page};
use super::session::{poster, viewer, Viewer};
use super::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// The roles a team gives.
const TEAM_ROLES: &[&str] = &["team_admin", "service_admin", "consumer_admin", "developer"];

async fn teams_page(c: &Shared, v: &Viewer, out: Outcome) -> Response {
    let teams = c.api.get(&v.token, "/admin/v1/teams?limit=1000").await;
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({"title": "Teams", "nav": "teams", "me": v.json(), "teams": teams.items(), "roles": TEAM_ROLES,
                     "notice": out.notice, "error": out.error.or_else(|| (!teams.ok()).then(|| teams.problem()))});
    page(c, status, Page::Teams, ctx)
}

/// `GET /console/teams`.
pub(super) async fn teams(State(c): State<Shared>, h: HeaderMap) -> Response {
    match viewer(&c, &h, "/console/teams").await {
        Ok(v) => teams_page(&c, &v, Outcome::default()).await,
        Err(r) => r,
    }
}

/// `POST /console/teams`: a new team.
pub(super) async fn create_team(State(c): State<Shared>, h: HeaderMap, f: Form) -> Response {
    let v = match poster(&c, &h, &f, "/console/teams").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = f.get("name").trim().to_string();
    let a = c
        .api
        .put(
            &v.token,
            &format!("/admin/v1/teams/{}", enc(&name)),
            &json!({"description": f.get("description")}),
        )
        .await;
    let out = if a.ok() {
        Outcome {
            notice: Some(format!("Team {name} is created.")),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    teams_page(&c, &v, out).await
}

/// `POST /console/teams/{name}/members`: a member added (or their role
/// changed), or removed with `remove`.
pub(super) async fn add_member(State(c): State<Shared>, h: HeaderMap, Path(team): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, "/console/teams").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = format!("/admin/v1/teams/{}", enc(&team));
    let current = c.api.get(&v.token, &path).await;
    if !current.ok() {
        return teams_page(&c, &v, Outcome::error(current.problem())).await;
    }
    let user = f.get("user").trim().to_string();
    let mut members: Vec<Value> = current
        .body
        .pointer("/members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    members.retain(|m| m.get("user").and_then(Value::as_str) != Some(user.as_str()));
    if f.get("remove").is_empty() {
        members.push(json!({"user": user, "role": f.get("role")}));
    }
    let a = c.api.patch(&v.token, &path, &json!({"members": members})).await;
    let out = if a.ok() {
        Outcome {
            notice: Some(format!("{team}'s members are saved.")),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    teams_page(&c, &v, out).await
}

async fn users_page(c: &Shared, v: &Viewer, out: Outcome) -> Response {
    let users = c.api.get(&v.token, "/admin/v1/users?limit=1000").await;
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({"title": "Users", "nav": "users", "me": v.json(), "users": users.items(),
                     "notice": out.notice, "error": out.error.or_else(|| (!users.ok()).then(|| users.problem()))});
    page(c, status, Page::Users, ctx)
}

/// `GET /console/users`.
pub(super) async fn users(State(c): State<Shared>, h: HeaderMap) -> Response {
    match viewer(&c, &h, "/console/users").await {
        Ok(v) => users_page(&c, &v, Outcome::default()).await,
        Err(r) => r,
    }
}

/// `POST /console/users`: a user, with a password and a system role.
pub(super) async fn create_user(State(c): State<Shared>, h: HeaderMap, f: Form) -> Response {
    let v = match poster(&c, &h, &f, "/console/users").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = f.get("name").trim().to_string();
    let mut body = json!({"display_name": f.get("display_name"), "email": f.get("email")});
    if let Some(role) = f.opt("role") {
        body["role"] = json!(role);
    }
    if let Some(pw) = f.opt("password") {
        body["password"] = json!(pw);
    }
    let a = c
        .api
        .put(&v.token, &format!("/admin/v1/users/{}", enc(&name)), &body)
        .await;
    let out = if a.ok() {
        Outcome {
            notice: Some(format!("User {name} is saved.")),
            error: None,
        }
    } else {
        Outcome::error(a.problem())
    };
    users_page(&c, &v, out).await
}

/// `GET /console/settings`: who is signed in, and their tokens.
pub(super) async fn settings(State(c): State<Shared>, h: HeaderMap) -> Response {
    let v = match viewer(&c, &h, "/console/settings").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let tokens = c.api.get(&v.token, "/admin/v1/tokens?limit=1000").await;
    let ctx = json!({"title": "Settings", "nav": "settings", "me": v.json(), "tokens": tokens.items(),
                     "gateway": c.gateway, "tokens_error": (!tokens.ok()).then(|| tokens.problem())});
    ok(&c, Page::Settings, ctx)
}

/// `GET /console/audit`: the latest writes.
pub(super) async fn audit(State(c): State<Shared>, h: HeaderMap) -> Response {
    let v = match viewer(&c, &h, "/console/audit").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let log = c.api.get(&v.token, "/admin/v1/audit?limit=200").await;
    let ctx = json!({"title": "Audit log", "nav": "audit", "me": v.json(), "entries": log.items(),
                     "error": (!log.ok()).then(|| log.problem())});
    ok(&c, Page::Audit, ctx)
}
