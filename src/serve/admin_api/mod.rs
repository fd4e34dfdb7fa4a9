//! The admin API, `/admin/v1/...` on the admin listener, in store mode (in
//! file mode, only the call log's part, with the admin token): an
//! `axum` router (the maintained routing and extraction layer over hyper,
//! which the admin API's many resources and their OpenAPI document need)
//! behind a thin adapter from Pingora's admin service ([`super::admin`]).
//!
//! - who calls, and what they may do: [`token`], [`principal`], [`access`]
//!   (the permission table), [`owner`] (which team owns a resource);
//! - resources by kind and name, and by plural (`/admin/v1/services/...`):
//!   [`resources`]; the management plane's actions (credentials,
//!   subscriptions): [`actions`]; admin tokens: [`tokens`]; the whole config
//!   and the audit log: [`mod@config`]; the plurals' routes: [`plurals`];
//! - a service's releases, their diffs ([`releases`]) and their publication,
//!   with approval and rollback ([`publications`]);
//! - the call log and its analytics: [`calls`];
//! - the OpenAPI 3.1 document of all of it, generated from the handlers'
//!   attributes and served without a token at `/admin/v1/openapi.json`:
//!   [`openapi`];
//! - every write goes through [`write::commit`]: checked by compiling before
//!   it is written (422 with the located problems), conditional on
//!   `If-Match` (412) and on the store's revision, and swapped in before it
//!   returns.
//!
//! Secrets given in the clear are sealed before a write is compiled, and
//! nothing read shows more of a secret than its fingerprint ([`secrets`]).
//! Errors are RFC 7807 `application/problem+json`.

// A refusal is the response to send; the admin API is not a hot path, so
// returning it by value (128 bytes) is clearer than boxing it everywhere.
#![allow(clippy::result_large_err)]

pub(crate) mod access;
mod actions;
mod calls;
mod config;
pub(crate) mod federated;
pub(crate) mod openapi;
mod owner;
mod plurals;
pub(crate) mod principal;
mod publications;
mod releases;
mod resources;
mod secrets;
mod sessions;
pub(crate) mod token;
mod tokens;
pub(crate) mod write;

use crate::store::{Store, StoreError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::json;
use std::sync::Arc;

/// One problem of a candidate config: where, and what.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub path: String,
    pub message: String,
}

/// A compiled candidate config, ready to swap in (what it holds is the
/// process's: the admin API sits below the snapshot it compiles to).
pub(crate) struct Candidate(pub Box<dyn std::any::Any + Send>);

/// What the admin API needs of the process: compiling a candidate config
/// (the store's sections as a config document) with the process's file,
/// and swapping the result in once it is written.
pub(crate) trait Applier: Send + Sync {
    /// Compiles the candidate, or says its problems; nothing changes.
    fn check(&self, store_doc: serde_json::Value) -> Result<Candidate, Vec<Problem>>;
    /// Swaps in a checked candidate, now written as store revision `revision`.
    fn apply(&self, candidate: Candidate, revision: i64);
}

/// What the admin API works with.
pub(crate) struct AdminState {
    /// The store; none in file mode, where only the call log is served.
    pub store_url: Option<String>,
    /// Opened on first use (the admin service is built before any runtime).
    pub store: tokio::sync::OnceCell<Store>,
    pub token: token::AdminToken,
    /// Compiles and applies writes.
    pub applier: Arc<dyn Applier>,
    /// Writes from this process, one at a time (a write is checked against
    /// the whole store).
    pub writes: tokio::sync::Mutex<()>,
    /// The call log's queries, when calls are recorded.
    pub calls: Option<crate::calllog::CallReader>,
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

/// The query parameter `name` as a `T`, or the 400 naming it (axum's own
/// rejection would be plain text).
pub(crate) fn param<T: std::str::FromStr>(
    q: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<Option<T>, Response> {
    let Some(v) = q.get(name) else { return Ok(None) };
    v.parse::<T>().map(Some).map_err(|_| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            &format!("{name}: {v:?} is not valid"),
        )
    })
}

pub(crate) fn store_problem(e: &StoreError) -> Response {
    match e {
        StoreError::NotFound { .. } => problem(StatusCode::NOT_FOUND, "Not Found", &e.to_string()),
        StoreError::Stale { .. } => problem(StatusCode::PRECONDITION_FAILED, "Precondition Failed", &e.to_string()),
        StoreError::Moved { .. } => problem(StatusCode::CONFLICT, "Conflict", &e.to_string()),
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
    let Some(url) = &state.store_url else {
        return Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "this gateway runs in file mode: its config is its file",
        )));
    };
    state
        .store
        .get_or_try_init(|| Store::open(url))
        .await
        .map_err(|e| Box::new(store_problem(&e)))
}

pub(crate) fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The call log's routes: the whole admin API in file mode, where there
/// is no store (the admin token in `state_dir` is the only token).
fn call_routes(r: Router<Shared>) -> Router<Shared> {
    r.route("/admin/v1/logs", get(calls::logs))
        .route("/admin/v1/logs/{request_id}", get(calls::log))
        .route("/admin/v1/analytics/summary", get(calls::summary))
        .route("/admin/v1/analytics/timeseries", get(calls::timeseries))
        .route("/admin/v1/analytics/top", get(calls::top))
        .route("/admin/v1/analytics/usage", get(calls::usage))
}

/// A service's releases and publications.
fn release_routes(r: Router<Shared>) -> Router<Shared> {
    r.route(
        "/admin/v1/services/{service}/releases",
        get(releases::list).post(releases::create),
    )
    .route(
        "/admin/v1/services/{service}/releases/{release}",
        get(releases::get_one),
    )
    .route(
        "/admin/v1/services/{service}/releases/{release}/diff",
        get(releases::diff),
    )
    .route(
        "/admin/v1/services/{service}/releases/{release}/publish",
        post(publications::publish),
    )
    .route("/admin/v1/services/{service}/publications", get(publications::list))
    .route(
        "/admin/v1/services/{service}/publications/{id}/accept",
        post(publications::accept),
    )
    .route(
        "/admin/v1/services/{service}/publications/{id}/refuse",
        post(publications::refuse),
    )
}

fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "Not Found", "no such admin resource")
}

/// The admin API's routes (all of them in store mode, the call log's in
/// file mode), and the state they share (the console signs people in
/// through it).
pub(crate) fn router(state: AdminState) -> (Router, Shared) {
    let state = Arc::new(state);
    if state.store_url.is_none() {
        let r = call_routes(Router::new())
            .fallback(|| async { not_found() })
            .with_state(state.clone());
        return (r, state);
    }
    let base = release_routes(resources::generic_routes(Router::new()));
    let r = call_routes(plurals::routes(base))
        .route("/admin/v1/openapi.json", get(openapi::openapi_json))
        .route(
            "/admin/v1/applications/{app}/credentials",
            post(actions::add_credential),
        )
        .route(
            "/admin/v1/applications/{app}/credentials/{id}",
            delete(actions::revoke_credential),
        )
        .route("/admin/v1/subscriptions", post(actions::subscribe))
        .route("/admin/v1/subscriptions/{name}/{action}", post(actions::decide))
        .route("/admin/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/admin/v1/tokens/{id}", delete(tokens::revoke))
        .route("/admin/v1/me", get(tokens::me))
        .route("/admin/v1/login", post(sessions::login))
        .route("/admin/v1/logout", post(sessions::logout))
        .route("/admin/v1/audit", get(config::audit))
        .route("/admin/v1/config", get(config::export).post(config::import))
        .fallback(|| async { not_found() })
        .with_state(state.clone());
    (r, state)
}
