//! A service's releases through the admin API ([`crate::store::release`]
//! has the model and how a release is served):
//!
//! - `POST /admin/v1/services/{service}/releases` keeps the working copy
//!   as a new, immutable release (checked by compiling the config with it
//!   served; it is not served);
//! - `GET .../releases` lists them, newest first, each saying whether it is
//!   the published one; `GET .../releases/{release}` is one, whole;
//! - `GET .../releases/{release}/diff?against=` compares it with another
//!   release, the published one (the default) or the working copy.
//!
//! Publishing is [`super::publications`]. Reading a release is reading its
//! service; making one is writing the service ([`super::access`]). Releases
//! and publications are never written through the generic resource routes
//! ([`made_elsewhere`]), and a service's `release` is set only by
//! publishing ([`keep_release`]).

use super::access::{Area, Op, Principal};
use super::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable};
use super::owner::may_read;
use super::principal::{authenticate, now};
use super::resources::public;
use super::write::{commit, forbidden, invalid, not_found, with_etag, Make};
use super::{problem, store, store_problem, Shared};
use crate::store::release::{self, stored_name, KIND, PUBLICATION};
use crate::store::Resource;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What `POST .../releases` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRelease {
    /// 1 to 64 letters, digits, `.`, `-` or `_`, unique within the service.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    name: String,
    /// What the release is, for people.
    #[serde(default)]
    note: String,
}

/// A name a release can have: it goes in a URL and after `@`.
fn name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

pub(super) fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| invalid("body", e.to_string()))
}

/// A write through the generic resource routes to a kind only this API
/// makes: the 409 that says where to go.
pub(super) fn made_elsewhere(kind: &str) -> Option<Response> {
    let detail = match kind {
        KIND => "a release is immutable: make one with POST /admin/v1/services/{service}/releases",
        PUBLICATION => {
            "a publication is a record: ask for one with POST \
             /admin/v1/services/{service}/releases/{release}/publish and decide it with \
             .../publications/{id}/accept or refuse"
        }
        _ => return None,
    };
    Some(problem(StatusCode::CONFLICT, "Conflict", detail))
}

/// A generic write of a service keeps the `release` it has: publishing
/// sets it. A body that leaves it out keeps it; one that names another is
/// refused (409).
pub(super) fn keep_release(before: Option<&Value>, mut after: Value) -> Result<Value, Response> {
    let current = before.and_then(|b| b.get("release")).filter(|v| !v.is_null());
    match (after.get("release").filter(|v| !v.is_null()), current) {
        (None, Some(kept)) => after["release"] = kept.clone(),
        (Some(asked), kept) if Some(asked) != kept => {
            return Err(problem(
                StatusCode::CONFLICT,
                "Conflict",
                "a service's `release` is set by publishing one: POST \
                 /admin/v1/services/{service}/releases/{release}/publish",
            ))
        }
        _ => {}
    }
    Ok(after)
}

/// Every stored resource.
pub(super) async fn everything(s: &Shared) -> Result<Vec<Resource>, Response> {
    let st = store(s).await.map_err(|r| *r)?;
    st.all().await.map_err(|e| store_problem(&e))
}

/// Who calls (from `headers`), and everything stored.
pub(super) async fn caller_and_all(s: &Shared, headers: &HeaderMap) -> Result<(Principal, Vec<Resource>), Response> {
    let p = authenticate(s, headers).await?;
    Ok((p, everything(s).await?))
}

/// The service `name`, if `p` may read it (otherwise it is not found).
pub(super) fn service<'a>(p: &Principal, all: &'a [Resource], name: &str) -> Result<&'a Resource, Response> {
    all.iter()
        .find(|r| r.kind == "service" && r.name == name)
        .filter(|r| may_read(p, r, all))
        .ok_or_else(|| not_found("service", name))
}

/// Checks that `p` may change the service (make and publish its releases).
pub(super) fn writable(p: &Principal, service: &Resource) -> Result<(), Response> {
    let team = service.body.get("team").and_then(Value::as_str);
    if p.may(Op::Write, Area::Service, team) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "{} may not release or publish service {:?}",
            p.name, service.name
        )))
    }
}

/// The release the service serves now, if any.
pub(super) fn published(service: &Value) -> Option<&str> {
    release::by_release(service)
        .then(|| service.get("release").and_then(Value::as_str))
        .flatten()
}

/// The stored release `release` of `service`.
fn find<'a>(all: &'a [Resource], service: &str, release: &str) -> Result<&'a Resource, Response> {
    let name = stored_name(service, release);
    all.iter()
        .find(|r| r.kind == KIND && r.name == name)
        .ok_or_else(|| not_found("release", &name))
}

/// A release as the API shows it: secrets redacted, and whether it is the
/// published one; without its content in a list.
fn shown(r: &Resource, service: &Value, whole: bool) -> Value {
    let mut body = public(r);
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if let Some(o) = body.as_object_mut() {
        if !whole {
            o.remove("content");
        }
        o.insert("published".into(), json!(published(service) == Some(name.as_str())));
    }
    body
}

/// Keeps the service's working copy as a new release.
#[utoipa::path(
    post,
    path = "/admin/v1/services/{service}/releases",
    operation_id = "create_release",
    tag = "releases",
    params(("service" = String, Path, example = "payments")),
    request_body(content = NewRelease, example = json!({"name": "v2", "note": "adds /refunds"})),
    responses(
        (status = 201, description = "Kept (not served: publish it)", body = Release,
         headers(("ETag" = String, description = "Its version"))),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(service_name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ask: NewRelease = match parse(&body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !name_ok(&ask.name) {
        return invalid("name", "use 1 to 64 letters, digits, `.`, `-` or `_`");
    }
    let stored = stored_name(&service_name, &ask.name);
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        let svc = service(&p, all, &service_name)?;
        writable(&p, svc)?;
        if current.is_some() {
            return Err(problem(
                StatusCode::CONFLICT,
                "Conflict",
                &format!("service {service_name:?} has a release {:?}", ask.name),
            ));
        }
        let content = release::content(all, &service_name).ok_or_else(|| not_found("service", &service_name))?;
        Ok(Some(json!({
            "service": service_name, "name": ask.name, "note": ask.note,
            "created_by": p.name, "created_at": rfc3339(now()), "content": content,
        })))
    };
    let make: &Make = &make;
    match commit(&s, &p.name, KIND, &stored, None, make).await {
        Ok(Some(r)) => with_etag(StatusCode::CREATED, &shown(&r, &Value::Null, true), r.version),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// The service's releases, newest first, without their content.
#[utoipa::path(
    get,
    path = "/admin/v1/services/{service}/releases",
    operation_id = "list_releases",
    tag = "releases",
    params(("service" = String, Path, example = "payments")),
    responses(
        (status = 200, description = "Newest first; `next` is always null", body = ReleasePage),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn list(State(s): State<Shared>, headers: HeaderMap, Path(service_name): Path<String>) -> Response {
    let (p, all) = match caller_and_all(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let svc = match service(&p, &all, &service_name) {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let mut releases: Vec<&Resource> = all
        .iter()
        .filter(|r| r.kind == KIND && r.body["service"].as_str() == Some(service_name.as_str()))
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse(r.position));
    let items: Vec<Value> = releases.iter().map(|r| shown(r, &svc.body, false)).collect();
    Json(json!({"items": items, "next": null})).into_response()
}

/// One release, whole.
#[utoipa::path(
    get,
    path = "/admin/v1/services/{service}/releases/{release}",
    operation_id = "get_release",
    tag = "releases",
    params(("service" = String, Path, example = "payments"), ("release" = String, Path, example = "v1")),
    responses(
        (status = 200, description = "The release", body = Release,
         headers(("ETag" = String, description = "Its version"))),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn get_one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((service_name, name)): Path<(String, String)>,
) -> Response {
    let (p, all) = match caller_and_all(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let found = service(&p, &all, &service_name).and_then(|svc| Ok((svc, find(&all, &service_name, &name)?)));
    match found {
        Ok((svc, r)) => with_etag(StatusCode::OK, &shown(r, &svc.body, true), r.version),
        Err(r) => r,
    }
}

/// What changes from another release (`against`: a release's name,
/// `working` for the working copy; default: the published release) to
/// this one.
#[utoipa::path(
    get,
    path = "/admin/v1/services/{service}/releases/{release}/diff",
    operation_id = "diff_release",
    tag = "releases",
    params(
        ("service" = String, Path, example = "payments"),
        ("release" = String, Path, example = "v1"),
        ("against" = Option<String>, Query,
         description = "A release of the service, or `working`; default: the published one (none: everything is added)")
    ),
    responses(
        (status = 200, description = "From `against` to this release", body = ReleaseDiff),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn diff(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((service_name, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let (p, all) = match caller_and_all(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let svc = match service(&p, &all, &service_name) {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let to = match find(&all, &service_name, &name) {
        Ok(r) => &r.body["content"],
        Err(r) => return r,
    };
    let against = q.get("against").map(String::as_str).or_else(|| published(&svc.body));
    let from = match against {
        None => Value::Null,
        Some("working") => release::content(&all, &service_name).unwrap_or(Value::Null),
        Some(other) => match find(&all, &service_name, other) {
            Ok(r) => r.body["content"].clone(),
            Err(r) => return r,
        },
    };
    let mut out = release::diff(&from, to);
    out["from"] = json!(against);
    out["to"] = json!(name);
    Json(out).into_response()
}

/// Deletes the releases and publications of a service just deleted (each
/// a write of its own, in the audit).
pub(super) async fn forget(s: &Shared, actor: &str, service_name: &str) -> Result<(), Response> {
    let all = everything(s).await?;
    let owned = all
        .iter()
        .filter(|r| matches!(r.kind.as_str(), KIND | PUBLICATION) && r.body["service"].as_str() == Some(service_name));
    for r in owned {
        let make =
            |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> { Ok(current.and(None)) };
        let make: &Make = &make;
        match commit(s, actor, &r.kind, &r.name, None, make).await {
            Ok(_) => {}
            Err(r) if r.status() == StatusCode::NOT_FOUND => {}
            Err(r) => return Err(r),
        }
    }
    Ok(())
}

/// The release routes' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, get_one, diff),
    components(schemas(NewRelease, Release, ReleaseItem, ReleasePage, ReleaseDiff, Changes, Changed, FieldsChanged)),
    tags((name = "releases", description = "A service's immutable releases, their diffs and their publication"))
)]
pub(super) struct Doc;

pub(super) use schemas::*;

/// The shapes of the answers, for the document only.
#[allow(dead_code)] // never built: they describe
mod schemas {
    use super::super::openapi::ResourceBody;
    use utoipa::ToSchema;

    /// A release, whole: the service's working copy when it was made.
    #[derive(ToSchema)]
    pub(crate) struct Release {
        service: String,
        name: String,
        note: String,
        created_by: String,
        /// RFC 3339.
        created_at: String,
        /// Whether the data plane serves it now.
        published: bool,
        /// `service` (its settings but the live ones), `routes` (in order),
        /// `upstreams` (those only its routes use, by name).
        content: ResourceBody,
    }

    /// A listed release: all but its content.
    #[derive(ToSchema)]
    pub(crate) struct ReleaseItem {
        service: String,
        name: String,
        note: String,
        created_by: String,
        /// RFC 3339.
        created_at: String,
        published: bool,
    }

    /// A service's releases, newest first.
    #[derive(ToSchema)]
    pub(crate) struct ReleasePage {
        items: Vec<ReleaseItem>,
        /// Always null: the list is whole.
        next: Option<String>,
    }

    /// A changed route or upstream, and its top-level fields that differ.
    #[derive(ToSchema)]
    pub(crate) struct Changed {
        name: String,
        fields: Vec<String>,
    }

    /// Routes or upstreams, by name.
    #[derive(ToSchema)]
    pub(crate) struct Changes {
        added: Vec<String>,
        changed: Vec<Changed>,
        removed: Vec<String>,
    }

    /// The service's settings that differ.
    #[derive(ToSchema)]
    pub(crate) struct FieldsChanged {
        fields: Vec<String>,
    }

    /// What changes from `from` to `to`.
    #[derive(ToSchema)]
    pub(crate) struct ReleaseDiff {
        /// The release compared against, `working`, or null (nothing published).
        from: Option<String>,
        to: String,
        routes: Changes,
        upstreams: Changes,
        service: FieldsChanged,
    }
}
