//! The management plane's actions, each one write through
//! [`super::write::commit`]:
//!
//! - `POST /admin/v1/applications/{app}/credentials`: a new API key (made
//!   here and shown once; only its SHA-256 is stored), Basic login (the
//!   password given or made, stored as an argon2 hash) or token subject,
//!   each with an optional `expires_at`; `DELETE .../credentials/{id}`
//!   revokes one, effective on the next request;
//! - `POST /admin/v1/subscriptions` asks for a subscription (approved at
//!   once for a service with `subscription: auto`, pending for `manual`);
//!   `POST /admin/v1/subscriptions/{name}/approve|reject|cancel` decides or
//!   ends one, with who, when and why recorded.

use super::access::{Area, Op, Principal};
use super::openapi::{
    Conflict, CredentialMade, CredentialType, DecisionAction, Forbidden, NotFound, Subscription, Unauthorized,
    Unavailable, Unprocessable,
};
use super::owner::subscription_teams;
use super::principal::{authenticate, now};
use super::token::new_secret;
use super::write::{commit, forbidden, invalid, not_found, Make};
use super::{problem, Shared};
use crate::store::Resource;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}

/// What `POST .../credentials` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    /// `api_key`, `basic` or `jwt`.
    #[serde(rename = "type")]
    #[schema(value_type = CredentialType)]
    kind: String,
    /// The credential's id (1 to 64 characters; default: made here).
    id: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Basic: the login (default: the application's name) and password
    /// (default: made here and shown once).
    username: Option<String>,
    password: Option<String>,
    /// jwt: the token subject that means this application.
    subject: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| invalid("body", e.to_string()))
}

/// Checks that `p` may write the application `current`.
fn app_writable(p: &Principal, app: &str, current: Option<&Resource>) -> Result<Value, Response> {
    let Some(r) = current else {
        return Err(not_found("consumer", app));
    };
    let team = r.body.get("team").and_then(Value::as_str);
    let area = if team.is_some() {
        Area::Application
    } else {
        Area::Config
    };
    if !p.may(Op::Write, area, team) {
        return Err(forbidden(format!("{} may not change application {app:?}", p.name)));
    }
    Ok(r.body.clone())
}

/// The id of every credential the application has.
fn credential_ids(body: &Value) -> Vec<String> {
    let creds = &body["credentials"];
    let mut ids: Vec<String> = creds["api_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["id"].as_str().map(str::to_string))
        .collect();
    if creds.get("basic").is_some_and(|b| !b.is_null()) {
        ids.push("basic".into());
    }
    ids.extend(
        creds["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str().map(str::to_string)),
    );
    ids
}

/// Adds a credential to an application: an API key (made here and shown
/// once), a Basic login or a token subject.
#[utoipa::path(
    post,
    path = "/admin/v1/applications/{app}/credentials",
    tag = "applications",
    params(("app" = String, Path, description = "The application (a consumer)", example = "shop-app")),
    request_body(content = NewCredential, example = json!({"type": "api_key", "expires_at": "2099-01-01T00:00:00Z"})),
    responses(
        (status = 201, description = "Added, and in effect; a secret made here is shown once", body = CredentialMade),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn add_credential(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req: NewCredential = match parse(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(Err(e)) = req.expires_at.as_deref().map(crate::config::unix_time) {
        return invalid("expires_at", e);
    }
    let id = match &req.id {
        Some(id) if id.is_empty() || id.len() > 64 => return invalid("id", "1 to 64 characters"),
        Some(id) => id.clone(),
        None => match new_secret() {
            Ok(s) => s[..12].to_string(),
            Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", &e),
        },
    };
    // The secret shown once: made before the write, kept for the answer.
    let (secret, entry): (Option<String>, Value) = match req.kind.as_str() {
        "api_key" => {
            let key = match new_secret() {
                Ok(k) => format!("pk_{k}"),
                Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", &e),
            };
            let digest = super::token::digest_hex(&key);
            let entry = json!({"id": id, "sha256": digest, "expires_at": req.expires_at, "created_at": rfc3339(now())});
            (Some(key), entry)
        }
        "basic" => {
            let password = match req.password.clone().map_or_else(new_secret, Ok) {
                Ok(pw) => pw,
                Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", &e),
            };
            let hashed = match tokio::task::spawn_blocking({
                let pw = password.clone();
                move || super::sessions::hash_password(&pw).map_err(|e| invalid("password", e))
            })
            .await
            {
                Ok(Ok(h)) => h,
                Ok(Err(r)) => return r,
                Err(_) => {
                    return problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        "hashing failed",
                    )
                }
            };
            let entry = json!({"username": req.username.clone().unwrap_or_else(|| app.clone()),
                               "password_hash": hashed, "expires_at": req.expires_at});
            (req.password.is_none().then_some(password), entry)
        }
        "jwt" => match &req.subject {
            Some(sub) if !sub.is_empty() => (None, json!({"subject": sub, "id": id, "expires_at": req.expires_at})),
            _ => return invalid("subject", "a jwt credential names the token subject"),
        },
        other => return invalid("type", format!("{other:?}: use api_key, basic or jwt")),
    };
    let kind = req.kind.clone();
    let make = |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> {
        let mut body = app_writable(&p, &app, current)?;
        let id_taken = credential_ids(&body).contains(&id);
        let creds = &mut body["credentials"];
        if creds.is_null() {
            *creds = json!({});
        }
        let mut entry = entry.clone();
        if let Some(o) = entry.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
        match kind.as_str() {
            "basic" if creds.get("basic").is_some_and(|b| !b.is_null()) => {
                return Err(invalid(
                    "type",
                    "the application has a Basic login; revoke `basic` first",
                ))
            }
            "basic" => creds["basic"] = entry,
            _ if id_taken => return Err(invalid("id", format!("the application has a credential {id:?}"))),
            "api_key" => push(&mut creds["api_keys"], entry),
            _ => push(&mut creds["subjects"], entry),
        }
        Ok(Some(body))
    };
    let make: &Make = &make;
    match commit(&s, &p.name, "consumer", &app, None, make).await {
        Ok(_) => {
            let id = if req.kind == "basic" { "basic".to_string() } else { id };
            let mut out = json!({"application": app, "id": id, "type": req.kind, "expires_at": req.expires_at});
            if let Some(secret) = secret {
                let field = if req.kind == "api_key" { "key" } else { "password" };
                out[field] = Value::String(secret);
                out["note"] = Value::String("shown once: only its digest is stored".into());
            }
            (StatusCode::CREATED, Json(out)).into_response()
        }
        Err(r) => r,
    }
}

fn push(list: &mut Value, entry: Value) {
    match list.as_array_mut() {
        Some(a) => a.push(entry),
        None => *list = Value::Array(vec![entry]),
    }
}

/// Revokes one of an application's credentials (`basic` for its Basic login).
#[utoipa::path(
    delete,
    path = "/admin/v1/applications/{app}/credentials/{id}",
    tag = "applications",
    params(
        ("app" = String, Path, example = "shop-app"),
        ("id" = String, Path, description = "The credential's id, or `basic`")
    ),
    responses(
        (status = 204, description = "Revoked, effective on the next request"),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn revoke_credential(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((app, id)): Path<(String, String)>,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let make = |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> {
        let mut body = app_writable(&p, &app, current)?;
        if !credential_ids(&body).contains(&id) {
            return Err(not_found("credential", &id));
        }
        let creds = &mut body["credentials"];
        if id == "basic" {
            if let Some(o) = creds.as_object_mut() {
                o.remove("basic");
            }
        }
        for list in ["api_keys", "subjects"] {
            if let Some(a) = creds.get_mut(list).and_then(Value::as_array_mut) {
                a.retain(|c| c["id"].as_str() != Some(id.as_str()));
            }
        }
        Ok(Some(body))
    };
    let make: &Make = &make;
    match commit(&s, &p.name, "consumer", &app, None, make).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// What `POST /admin/v1/subscriptions` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Ask {
    application: String,
    service: String,
    reason: Option<String>,
}

/// Asks for an application's subscription to a service: approved at once
/// for `subscription: auto`, pending for `manual`.
#[utoipa::path(
    post,
    path = "/admin/v1/subscriptions",
    tag = "subscriptions",
    request_body(
        content = Ask,
        example = json!({"application": "shop-app", "service": "payments", "reason": "checkout"})
    ),
    responses(
        (status = 201, description = "Asked for (pending) or approved", body = Subscription,
         headers(("ETag" = String, description = "Its version"))),
        Unauthorized, Forbidden, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn subscribe(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ask: Ask = match parse(&body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let name = format!("{}:{}", ask.application, ask.service);
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        let find = |kind: &str, n: &str| all.iter().find(|r| r.kind == kind && r.name == n);
        let Some(app) = find("consumer", &ask.application) else {
            return Err(invalid(
                "application",
                format!("no application named {:?}", ask.application),
            ));
        };
        let Some(service) = find("service", &ask.service) else {
            return Err(invalid("service", format!("no service named {:?}", ask.service)));
        };
        let team = app.body.get("team").and_then(Value::as_str);
        if !p.may(Op::Write, Area::SubscriptionRequest, team) {
            return Err(forbidden(format!(
                "{} may not subscribe application {:?}",
                p.name, ask.application
            )));
        }
        if let Some(status) = current.and_then(|c| c.body["status"].as_str()) {
            if matches!(status, "approved" | "pending") {
                return Err(problem(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!("{name} is already {status}"),
                ));
            }
        }
        let auto = service.body["subscription"].as_str() != Some("manual");
        let at = rfc3339(now());
        let mut body = json!({"application": ask.application, "service": ask.service,
            "status": if auto { "approved" } else { "pending" },
            "requested_by": p.name, "requested_at": at, "reason": ask.reason});
        if auto {
            body["decided_by"] = json!("auto");
            body["decided_at"] = json!(at);
        }
        if let Some(o) = body.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
        Ok(Some(body))
    };
    let make: &Make = &make;
    match commit(&s, &p.name, "subscription", &name, None, make).await {
        Ok(Some(r)) => super::write::with_etag(StatusCode::CREATED, &r.body, r.version),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// What a decision may carry (the body may also be empty).
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Decision {
    reason: Option<String>,
}

/// Approves, rejects or cancels a subscription.
#[utoipa::path(
    post,
    path = "/admin/v1/subscriptions/{name}/{action}",
    tag = "subscriptions",
    params(
        ("name" = String, Path, description = "application:service", example = "shop-app:payments"),
        ("action" = DecisionAction, Path)
    ),
    request_body(content = Option<Decision>, description = "Why (optional; the body may be empty)"),
    responses(
        (status = 200, description = "Decided, and in effect", body = Subscription,
         headers(("ETag" = String, description = "Its version"))),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn decide(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let decision: Decision = if body.is_empty() {
        Decision::default()
    } else {
        match parse(&body) {
            Ok(d) => d,
            Err(r) => return r,
        }
    };
    let (to, from): (&str, &[&str]) = match action.as_str() {
        "approve" => ("approved", &["pending", "rejected"]),
        "reject" => ("rejected", &["pending", "approved"]),
        "cancel" => ("cancelled", &["pending", "approved"]),
        _ => return problem(StatusCode::NOT_FOUND, "Not Found", "use approve, reject or cancel"),
    };
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        let Some(current) = current else {
            return Err(not_found("subscription", &name));
        };
        let (app_team, service_team) = subscription_teams(&current.body, all);
        let decides = p.may(Op::Write, Area::SubscriptionDecision, service_team.as_deref());
        let asks = p.may(Op::Write, Area::SubscriptionRequest, app_team.as_deref());
        if !(decides || (to == "cancelled" && asks)) {
            return Err(forbidden(format!("{} may not {action} {name}", p.name)));
        }
        let status = current.body["status"].as_str().unwrap_or("approved").to_string();
        if !from.contains(&status.as_str()) {
            return Err(problem(
                StatusCode::CONFLICT,
                "Conflict",
                &format!("{name} is {status}; only a {} one can be {to}", from.join(" or ")),
            ));
        }
        let mut body = current.body.clone();
        body["status"] = json!(to);
        body["decided_by"] = json!(p.name);
        body["decided_at"] = json!(rfc3339(now()));
        match &decision.reason {
            Some(r) => body["decision_reason"] = json!(r),
            None => {
                if let Some(o) = body.as_object_mut() {
                    o.remove("decision_reason");
                }
            }
        }
        Ok(Some(body))
    };
    let make: &Make = &make;
    match commit(&s, &p.name, "subscription", &name, None, make).await {
        Ok(Some(r)) => super::write::with_etag(StatusCode::OK, &r.body, r.version),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}
