//! Login sessions for people (the console's sign-in): `POST /admin/v1/login`
//! with a user's name and password answers a token that carries that user's
//! roles for 12 hours, stored like any admin token (its digest only);
//! `POST /admin/v1/logout` revokes the token it is called with. A user's
//! password is set by writing `password` on the user (admin only); it is
//! stored as an argon2 hash and never shown.
//!
//! A wrong name and a wrong password get the same 401, after the same
//! argon2 work, so a login tells nobody which users exist.

use super::access::Principal;
use super::openapi::{Conflict, LoggedIn, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::principal::{authenticate, now, UserBody};
use super::token::split_token;
use super::write::{commit, invalid, Make};
use super::{problem, store, store_problem, Shared};
use crate::store::Resource;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long a login lasts.
const SESSION_SECS: u64 = 12 * 3600;

/// What `POST /admin/v1/login` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    pub user: String,
    pub password: String,
}

/// An argon2 hash of `password` (CPU work: call it off the serving threads).
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify(password: &str, hash: Option<&str>) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let check = |h: &str| {
        PasswordHash::new(h)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    };
    match hash {
        Some(h) => check(h),
        None => {
            // No such user, or one without a password: the same work, then no.
            let _ = hash_password(password).map(|h| check(&h));
            false
        }
    }
}

/// Replaces a user body's `password` (in the clear) with its hash, off the
/// serving threads; other bodies are left as they are.
pub(crate) async fn hash_user_password(kind: &str, body: &mut Value) -> Result<(), Response> {
    let Some(pw) = (kind == "user")
        .then(|| body.get("password").and_then(Value::as_str).map(str::to_string))
        .flatten()
    else {
        if kind == "user" && body.get("password").is_some() {
            return Err(invalid("password", "a password is a string"));
        }
        return Ok(());
    };
    if pw.len() < 12 {
        return Err(invalid("password", "use at least 12 characters"));
    }
    let hashed = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| invalid("password", e.to_string()))?
        .map_err(|e| invalid("password", e))?;
    if let Some(o) = body.as_object_mut() {
        o.remove("password");
        o.insert("password_hash".into(), Value::String(hashed));
    }
    Ok(())
}

fn wrong() -> Response {
    problem(StatusCode::UNAUTHORIZED, "Unauthorized", "wrong user or password")
}

/// Logs a user in: a token carrying the user's roles for 12 hours.
#[utoipa::path(
    post,
    path = "/admin/v1/login",
    tag = "tokens",
    security(()),
    request_body(content = Login, example = json!({"user": "ann", "password": "correct horse battery"})),
    responses(
        (status = 200, description = "Logged in; the token is shown once", body = LoggedIn),
        Unauthorized, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn login(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return invalid("body", "send {\"user\": ..., \"password\": ...}");
    };
    let st = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let hash = match st.get("user", &login.user).await {
        Ok(u) => u
            .and_then(|u| serde_json::from_value::<UserBody>(u.body).ok())
            .and_then(|u| u.password_hash),
        Err(e) => return store_problem(&e),
    };
    let password = login.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify(&password, hash.as_deref()))
        .await
        .unwrap_or(false);
    if !ok {
        return wrong();
    }
    let expires_at = now() + SESSION_SECS;
    let grant = super::tokens::Grant {
        role: None,
        team: None,
        user: Some(login.user.clone()),
        expires_at: Some(expires_at),
        description: "login session".into(),
    };
    match super::tokens::issue(&s, &login.user, grant).await {
        Ok((_, token, _)) => {
            Json(json!({"token": token, "user": login.user, "expires_at": expires_at})).into_response()
        }
        Err(r) => r,
    }
}

/// Revokes the token the call is made with (one made by the API).
#[utoipa::path(
    post,
    path = "/admin/v1/logout",
    tag = "tokens",
    responses(
        (status = 204, description = "Logged out: the token is revoked"),
        Unauthorized, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn logout(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let p: Principal = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .and_then(|t| split_token(t.trim()).map(|(id, _)| id.to_string()));
    let Some(id) = id else {
        return invalid(
            "authorization",
            "only a token made by the API (pt_...) can be logged out",
        );
    };
    let make =
        |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> { Ok(current.and(None)) };
    let make: &Make = &make;
    match commit(&s, &p.name, "admin_token", &id, None, make).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}
