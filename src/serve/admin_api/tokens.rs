//! Admin tokens through the API: `POST /admin/v1/tokens` makes one (a role,
//! with a team for a team role, or a user whose roles it carries; an
//! optional lifetime) and shows it once; `GET` lists them without their
//! digests; `DELETE /admin/v1/tokens/{id}` revokes one. `GET /admin/v1/me`
//! says who the caller is.

use super::access::{Area, Op, Role};
use super::openapi::{
    BadRequest, Conflict, Forbidden, Me, NotFound, Page, PageParams, TokenMade, Unauthorized, Unavailable,
    Unprocessable,
};
use super::principal::{authenticate, now, StoredToken};
use super::token::{digest_hex, new_secret};
use super::write::{commit, forbidden, invalid, not_found, Make};
use super::{problem, Shared};
use crate::store::Resource;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What `POST /admin/v1/tokens` takes: a system role; a team role and its
/// team; or a user, whose roles the token carries.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    role: Option<Role>,
    team: Option<String>,
    user: Option<String>,
    /// How long it lasts (`30d`, `12h`); default: until revoked.
    expires_in: Option<String>,
    #[serde(default)]
    description: String,
}

/// Makes an admin token, shown once.
#[utoipa::path(
    post,
    path = "/admin/v1/tokens",
    tag = "tokens",
    request_body(content = NewToken, example = json!({"role": "developer", "team": "shop", "expires_in": "30d"})),
    responses(
        (status = 201, description = "Made; the token is shown once", body = TokenMade),
        Unauthorized, Forbidden, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn create(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !p.may(Op::Write, Area::AdminToken, None) {
        return forbidden(format!("{} may not make admin tokens", p.name));
    }
    let req: NewToken = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid("body", e.to_string()),
    };
    match (&req.role, &req.team, &req.user) {
        (Some(r), Some(_), None) if r.is_team_role() => {}
        (Some(r), None, None) if !r.is_team_role() => {}
        (None, None, Some(_)) => {}
        (Some(r), None, None) => return invalid("team", format!("{} is a team role: name the team", r.name())),
        _ => return invalid("role", "give a system role, a team role with its team, or a user"),
    }
    let expires_at = match req.expires_in.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(now() + d.as_secs()),
        Some(Err(e)) => return invalid("expires_in", format!("{e}; write it like 30d or 12h")),
    };
    let grant = Grant {
        role: req.role,
        team: req.team,
        user: req.user,
        expires_at,
        description: req.description,
    };
    match issue(&s, &p.name, grant).await {
        Ok((id, token, stored)) => {
            let mut out = serde_json::to_value(&stored).unwrap_or_else(|_| json!({}));
            if let Some(o) = out.as_object_mut() {
                o.remove("digest");
                o.insert("id".into(), json!(id));
                o.insert("token".into(), json!(token));
                o.insert("note".into(), json!("shown once: only its digest is stored"));
            }
            (StatusCode::CREATED, Json(out)).into_response()
        }
        Err(r) => r,
    }
}

/// What a new token may do, and until when.
pub(super) struct Grant {
    pub role: Option<Role>,
    pub team: Option<String>,
    pub user: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub description: String,
}

/// Makes and stores a token for `grant` as `actor`: (its id, the token
/// shown once, what is stored). A user it names must exist.
pub(super) async fn issue(s: &Shared, actor: &str, grant: Grant) -> Result<(String, String, StoredToken), Response> {
    let (id, secret) = match (new_secret(), new_secret()) {
        (Ok(a), Ok(b)) => (a[..16].to_string(), b),
        _ => {
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "no randomness",
            ))
        }
    };
    let stored = StoredToken {
        digest: digest_hex(&secret),
        role: grant.role,
        team: grant.team,
        user: grant.user,
        expires_at: grant.expires_at,
        description: grant.description,
        created_by: actor.to_string(),
        created_at: now(),
    };
    let body = serde_json::to_value(&stored).unwrap_or(Value::Null);
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        if current.is_some() {
            return Err(problem(StatusCode::CONFLICT, "Conflict", "token id taken; retry"));
        }
        if let Some(user) = &stored.user {
            if !all.iter().any(|r| r.kind == "user" && &r.name == user) {
                return Err(invalid("user", format!("no user named {user:?}")));
            }
        }
        Ok(Some(body.clone()))
    };
    let make: &Make = &make;
    commit(s, actor, "admin_token", &id, Some(0), make).await?;
    let token = format!("pt_{id}.{secret}");
    Ok((id, token, stored))
}

/// A page of the admin tokens, without their digests.
#[utoipa::path(
    get,
    path = "/admin/v1/tokens",
    tag = "tokens",
    params(PageParams),
    responses((status = 200, description = "A page, in id order", body = Page), BadRequest, Unauthorized, Unavailable)
)]
pub(super) async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    match authenticate(&s, &headers).await {
        Ok(p) => super::resources::list_kind(&s, &p, "admin_token", q).await,
        Err(r) => r,
    }
}

/// Revokes an admin token.
#[utoipa::path(
    delete,
    path = "/admin/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id (the part after `pt_`, before the dot)")),
    responses(
        (status = 204, description = "Revoked"),
        Unauthorized, Forbidden, NotFound, Conflict, Unavailable
    )
)]
pub(super) async fn revoke(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let make = |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> {
        if current.is_none() {
            return Err(not_found("admin_token", &id));
        }
        if !p.may(Op::Write, Area::AdminToken, None) {
            return Err(forbidden(format!("{} may not revoke admin tokens", p.name)));
        }
        Ok(None)
    };
    let make: &Make = &make;
    match commit(&s, &p.name, "admin_token", &id, None, make).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Who the caller is: its name, system role and team roles.
#[utoipa::path(
    get,
    path = "/admin/v1/me",
    tag = "tokens",
    responses((status = 200, description = "The caller", body = Me), Unauthorized, Unavailable)
)]
pub(super) async fn me(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match authenticate(&s, &headers).await {
        Ok(p) => {
            let teams: Vec<Value> = p
                .teams
                .iter()
                .map(|(t, r)| json!({"team": t, "role": r.name()}))
                .collect();
            Json(json!({"name": p.name, "role": p.system.map(Role::name), "teams": teams})).into_response()
        }
        Err(r) => r,
    }
}
