//! The admin API, `/admin/v1/...` on the admin listener, in store mode: an
//! `axum` router (the maintained routing and extraction layer over hyper,
//! which the admin API's many resources and their OpenAPI document need)
//! behind a thin adapter from Pingora's admin service ([`super::admin`]).
//!
//! A write (`PUT` upserts by name, `DELETE`) is compiled with the rest of the
//! store before anything is written, and refused with 422 and the located
//! problems when it does not compile; `If-Match` (the version read) makes it
//! conditional, 412 when stale; once written it is swapped in before the
//! response, so the next request is served by it ([`mod@write`]).
//!
//! Resources are read as they are stored: `GET /admin/v1/resources/{kind}`
//! (cursor pagination: `after`, `limit` up to 1,000) and
//! `GET /admin/v1/resources/{kind}/{name}` with its version as `ETag`;
//! `GET /admin/v1/audit` lists the writes; `GET /admin/v1/config` exports the
//! whole config as YAML. Errors are RFC 7807 `application/problem+json`.
//! Secrets given in the clear are sealed before a write is compiled, and
//! nothing read shows more of a secret than its fingerprint ([`secrets`]).
//! Every call needs the admin token as `Authorization: Bearer`
//! ([`token`]).

mod secrets;
pub(crate) mod token;
mod write;

use crate::store::{document, Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// One problem of a candidate config: where, and what.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub path: String,
    pub message: String,
}

/// What the admin API needs of the process: compiling a candidate config
/// (the store's sections as YAML) with the process's file, and applying it.
pub(crate) trait Applier: Send + Sync {
    /// The candidate's problems, if any; nothing changes.
    fn check(&self, store_part: &str) -> Result<(), Vec<Problem>>;
    /// Compiles the candidate and swaps it in.
    fn apply(&self, store_part: &str) -> Result<(), Vec<Problem>>;
}

/// What the admin API works with.
pub(crate) struct AdminState {
    pub store_url: String,
    /// Opened on first use (the admin service is built before any runtime).
    pub store: tokio::sync::OnceCell<Store>,
    pub token: token::AdminToken,
    /// Compiles and applies writes.
    pub applier: Arc<dyn Applier>,
}

pub(crate) type Shared = Arc<AdminState>;

/// An RFC 7807 problem.
pub(crate) fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

pub(crate) fn store_problem(e: &StoreError) -> Response {
    match e {
        StoreError::NotFound { .. } => problem(StatusCode::NOT_FOUND, "Not Found", &e.to_string()),
        StoreError::Stale { .. } => problem(StatusCode::PRECONDITION_FAILED, "Precondition Failed", &e.to_string()),
        _ => {
            log::warn!("admin API: {e}");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Store Unavailable",
                "the store cannot be reached",
            )
        }
    }
}

pub(crate) async fn store(state: &AdminState) -> Result<&Store, Box<Response>> {
    state
        .store
        .get_or_try_init(|| Store::open(&state.store_url))
        .await
        .map_err(|e| Box::new(store_problem(&e)))
}

/// None when the request carries the admin token, else the 401 to send.
pub(crate) fn refused(state: &AdminState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match given {
        Some(t) if state.token.matches(t.trim()) => None,
        _ => {
            let mut resp = problem(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "send the admin token as `Authorization: Bearer <token>`",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portico-admin\""),
            );
            Some(resp)
        }
    }
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

pub(crate) fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(p): Query<Page>,
) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "limit must be from 1 to 1000");
    }
    let store = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match store.list(&kind, p.after.as_deref(), limit).await {
        Ok(items) => {
            let next = (items.len() as i64 == limit)
                .then(|| items.last().map(|r| r.name.clone()))
                .flatten();
            let items: Vec<_> = items
                .iter()
                .map(|r| json!({"kind": r.kind, "name": r.name, "version": r.version, "updated_at": r.updated_at, "body": secrets::shown(&r.kind, r.body.clone())}))
                .collect();
            Json(json!({"items": items, "next": next})).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

async fn one(State(s): State<Shared>, headers: HeaderMap, Path((kind, name)): Path<(String, String)>) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let store = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match store.get(&kind, &name).await {
        Ok(Some(r)) => {
            let mut resp = Json(secrets::shown(&kind, r.body)).into_response();
            resp.headers_mut().insert(header::ETAG, etag(r.version));
            resp
        }
        Ok(None) => store_problem(&StoreError::NotFound { kind, name }),
        Err(e) => store_problem(&e),
    }
}

#[derive(Deserialize)]
struct AuditPage {
    after: Option<i64>,
    limit: Option<i64>,
}

async fn audit(State(s): State<Shared>, headers: HeaderMap, Query(p): Query<AuditPage>) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let store = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match store
        .audit(p.after.unwrap_or(0), p.limit.unwrap_or(100).clamp(1, 1000))
        .await
    {
        Ok(rows) => {
            let items: Vec<_> = rows
                .iter()
                .map(|a| {
                    json!({"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "kind": a.kind,
                                "name": a.name, "before": a.before.clone().map(|b| secrets::shown(&a.kind, b)),
                                "after": a.after.clone().map(|b| secrets::shown(&a.kind, b))})
                })
                .collect();
            Json(json!({"items": items})).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

async fn config(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let store = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match (store.all().await, store.revision().await) {
        (Ok(all), Ok(rev)) => {
            let yaml =
                serde_yaml::to_string(&secrets::shown_document(document::from_resources(&all))).unwrap_or_default();
            let mut resp = yaml.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
            resp.headers_mut().insert(header::ETAG, etag(rev));
            resp
        }
        (Err(e), _) | (_, Err(e)) => store_problem(&e),
    }
}

/// The admin API's routes.
pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/v1/resources/{kind}", get(list))
        .route(
            "/admin/v1/resources/{kind}/{name}",
            get(one).put(write::put).delete(write::delete),
        )
        .route("/admin/v1/audit", get(audit))
        .route("/admin/v1/config", get(config))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "Not Found", "no such admin resource") })
        .with_state(Arc::new(state))
}
