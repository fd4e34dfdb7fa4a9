//! Resources by kind and name: `GET` (a page, or one with its version as
//! `ETag`), `PUT` (upsert), `PATCH` (a JSON merge patch, RFC 7396) and
//! `DELETE`, at `/admin/v1/resources/{kind}[/{name}]` and at the same paths
//! under each kind's plural (`/admin/v1/services/{name}`, ...). A principal
//! sees only what its roles read, and writes only what they write
//! ([`super::owner`]).
//!
//! Lists are pages in name order: `limit` (1 to 1,000, default 100) and
//! `after` (the `next` of the previous page); any other query parameter is a
//! filter on a top-level field of the body (`?team=shop&status=pending`).

use super::access::Principal;
use super::openapi::{
    AnyBody, BadRequest, Conflict, Forbidden, IfMatch, MethodNotAllowed, NotFound, Page, PageParams,
    PreconditionFailed, ResourceBody, Unauthorized, Unavailable, Unprocessable,
};
use super::owner::{may_read, may_write};
use super::principal::{authenticate, TeamBody, UserBody};
use super::write::{commit, forbidden, if_match, invalid, not_found, with_etag, Make};
use super::{problem, store, store_problem, Shared};
use crate::store::{document, Resource};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) type Bytes = axum::body::Bytes;

/// The kinds the management plane keeps besides the config's (releases and
/// publications are read here, and made only by [`super::releases`]).
const PLANE_KINDS: &[&str] = &["team", "user", "release", "publication"];

fn known(kind: &str) -> bool {
    document::KINDS.contains(&kind) || PLANE_KINDS.contains(&kind) || kind == "admin_token"
}

fn no_kind(kind: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not Found",
        &format!(
            "no resource kind {kind:?}; use one of {}, {}",
            document::KINDS.join(", "),
            PLANE_KINDS.join(", ")
        ),
    )
}

/// A listed item: the resource and its metadata.
pub(crate) fn item(r: &Resource) -> Value {
    json!({"kind": r.kind, "name": r.name, "version": r.version, "updated_at": r.updated_at, "body": public(r)})
}

/// A body as the API shows it: secrets as their fingerprints, and neither an
/// admin token's digest nor a user's password hash.
pub(crate) fn public(r: &Resource) -> Value {
    let mut body = super::secrets::shown(&r.kind, r.body.clone());
    if let Some(o) = body.as_object_mut() {
        match r.kind.as_str() {
            "admin_token" => {
                o.remove("digest");
            }
            "user" => {
                o.remove("password_hash");
            }
            _ => {}
        }
    }
    body
}

fn matches(body: &Value, filters: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|(k, want)| match body.get(k) {
        Some(Value::String(s)) => s == want,
        Some(Value::Bool(b)) => b.to_string() == *want,
        Some(Value::Number(n)) => n.to_string() == *want,
        _ => false,
    })
}

/// A page of `kind` that `p` may read, filtered.
pub(crate) async fn list_kind(s: &Shared, p: &Principal, kind: &str, query: BTreeMap<String, String>) -> Response {
    if !known(kind) {
        return no_kind(kind);
    }
    let mut filters = query;
    let after = filters.remove("after");
    let limit = match filters.remove("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=1000).contains(&l) => l,
        Some(_) => return problem(StatusCode::BAD_REQUEST, "Bad Request", "limit must be from 1 to 1000"),
    };
    let st = match store(s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    // Ownership needs the services and consumers; read once.
    let all = match st.all().await {
        Ok(a) => a,
        Err(e) => return store_problem(&e),
    };
    let mut rows: Vec<&Resource> = all.iter().filter(|r| r.kind == kind).collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let page: Vec<&Resource> = rows
        .into_iter()
        .filter(|r| after.as_deref().is_none_or(|a| r.name.as_str() > a))
        .filter(|r| matches(&r.body, &filters) && may_read(p, r, &all))
        .take(limit + 1)
        .collect();
    let next = (page.len() > limit)
        .then(|| page.get(limit - 1).map(|r| r.name.clone()))
        .flatten();
    let items: Vec<Value> = page.iter().take(limit).map(|r| item(r)).collect();
    Json(json!({"items": items, "next": next})).into_response()
}

/// One resource, if `p` may read it.
pub(crate) async fn get_one(s: &Shared, p: &Principal, kind: &str, name: &str) -> Response {
    if !known(kind) {
        return no_kind(kind);
    }
    let st = match store(s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let all = match st.all().await {
        Ok(a) => a,
        Err(e) => return store_problem(&e),
    };
    match all.iter().find(|r| r.kind == kind && r.name == name) {
        // Not readable looks like absent: names of other teams' things stay theirs.
        Some(r) if may_read(p, r, &all) => with_etag(StatusCode::OK, &public(r), r.version),
        _ => not_found(kind, name),
    }
}

/// Checks a management-plane body (`team`, `user`); config kinds are checked by compiling.
fn check_plane(kind: &str, body: &Value) -> Result<(), Response> {
    let e = match kind {
        "team" => serde_json::from_value::<TeamBody>(body.clone())
            .err()
            .map(|e| e.to_string()),
        "user" => serde_json::from_value::<UserBody>(body.clone())
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    if let Some(e) = e {
        return Err(invalid(kind, e));
    }
    if kind == "team" {
        let members = serde_json::from_value::<TeamBody>(body.clone()).map(|t| t.members);
        if let Some((i, m)) = members
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, m)| !m.role.is_team_role())
        {
            return Err(invalid(
                &format!("members[{i}].role"),
                format!(
                    "{} is a system role; a team gives team_admin, service_admin, consumer_admin or developer",
                    m.role.name()
                ),
            ));
        }
    }
    Ok(())
}

/// Puts a listed resource's name (and a subscription's sides) into its body.
fn named(kind: &str, name: &str, mut body: Value) -> Result<Value, Response> {
    if !body.is_object() && kind != "default_policies" {
        return Err(invalid(kind, "the body must be a JSON object"));
    }
    if let Some(o) = body.as_object_mut() {
        if document::NAMED.iter().any(|(_, k)| *k == kind) {
            o.insert("name".into(), Value::String(name.to_string()));
        }
    }
    if kind == "subscription" {
        if let Some((app, service)) = name.split_once(':') {
            if let Some(o) = body.as_object_mut() {
                o.entry("application").or_insert_with(|| Value::String(app.into()));
                o.entry("service").or_insert_with(|| Value::String(service.into()));
            }
        }
        if document::subscription_name(&body).as_deref() != Some(name) {
            return Err(invalid(
                "application",
                "a subscription is named application:service, as its body says",
            ));
        }
    }
    check_plane(kind, &body)?;
    Ok(body)
}

/// RFC 7396: `patch` merged into `target`.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// How a write changes the body it finds.
enum Edit {
    Put(Value),
    Patch(Value),
    Delete,
}

async fn write(s: &Shared, headers: &HeaderMap, kind: &str, name: &str, edit: Edit) -> Response {
    let p = match authenticate(s, headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !known(kind) {
        return no_kind(kind);
    }
    if kind == "admin_token" {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "admin tokens are made with POST /admin/v1/tokens and removed with DELETE /admin/v1/tokens/{id}",
        );
    }
    if let Some(refusal) = super::releases::made_elsewhere(kind) {
        return refusal;
    }
    let expected = match if_match(headers) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let mut edit = edit;
    if let Edit::Put(body) | Edit::Patch(body) = &mut edit {
        if let Err(r) = super::sessions::hash_user_password(kind, body).await {
            return r;
        }
    }
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        let before = current.map(|r| &r.body);
        let after = match &edit {
            Edit::Put(v) => Some(named(kind, name, v.clone())?),
            Edit::Patch(v) => {
                let Some(mut body) = before.cloned() else {
                    return Err(not_found(kind, name));
                };
                merge(&mut body, v);
                Some(named(kind, name, body)?)
            }
            Edit::Delete if before.is_none() => return Err(not_found(kind, name)),
            Edit::Delete => None,
        };
        let after = match after {
            Some(a) if kind == "service" => Some(super::releases::keep_release(before, a)?),
            other => other,
        };
        if !may_write(&p, kind, name, before, after.as_ref(), all) {
            return Err(forbidden(format!("{} may not write {kind} {name:?}", p.name)));
        }
        Ok(after)
    };
    let make: &Make = &make;
    if matches!(edit, Edit::Delete) && matches!(kind, "consumer" | "service") {
        if let Err(r) = cascade(s, &p, kind, name).await {
            return r;
        }
    }
    match commit(s, &p.name, kind, name, expected, make).await {
        Ok(Some(r)) => with_etag(StatusCode::OK, &public(&r), r.version),
        Ok(None) if kind == "service" => match super::releases::forget(s, &p.name, name).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(r) => r,
        },
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Deleting an application or a service ends its subscriptions first (each
/// a write of its own, by the same principal, who must be able to delete
/// the application or service itself).
async fn cascade(s: &Shared, p: &Principal, kind: &str, name: &str) -> Result<(), Response> {
    let st = store(s).await.map_err(|r| *r)?;
    let all = st.all().await.map_err(|e| store_problem(&e))?;
    let Some(target) = all.iter().find(|r| r.kind == kind && r.name == name) else {
        return Ok(());
    };
    if !may_write(p, kind, name, Some(&target.body), None, &all) {
        return Err(forbidden(format!("{} may not delete {kind} {name:?}", p.name)));
    }
    let side = if kind == "consumer" { "application" } else { "service" };
    let subs = all
        .iter()
        .filter(|r| r.kind == "subscription" && r.body.get(side).and_then(Value::as_str) == Some(name));
    for sub in subs {
        let make =
            |current: Option<&Resource>, _: &[Resource]| -> Result<Option<Value>, Response> { Ok(current.and(None)) };
        let make: &Make = &make;
        match commit(s, &p.name, "subscription", &sub.name, None, make).await {
            Ok(_) => {}
            // Gone already: someone else ended it.
            Err(r) if r.status() == StatusCode::NOT_FOUND => {}
            Err(r) => return Err(r),
        }
    }
    Ok(())
}

fn json_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            &format!("the body must be JSON: {e}"),
        )
    })
}

pub(super) async fn authed_list(s: Shared, h: HeaderMap, kind: &str, q: BTreeMap<String, String>) -> Response {
    match authenticate(&s, &h).await {
        Ok(p) => list_kind(&s, &p, kind, q).await,
        Err(r) => r,
    }
}

pub(super) async fn authed_one(s: Shared, h: HeaderMap, kind: &str, name: &str) -> Response {
    match authenticate(&s, &h).await {
        Ok(p) => get_one(&s, &p, kind, name).await,
        Err(r) => r,
    }
}

pub(super) async fn put_json(s: Shared, h: HeaderMap, kind: &str, name: &str, body: &[u8]) -> Response {
    match json_body(body) {
        Ok(v) => write(&s, &h, kind, name, Edit::Put(v)).await,
        Err(r) => r,
    }
}

pub(super) async fn patch_json(s: Shared, h: HeaderMap, kind: &str, name: &str, body: &[u8]) -> Response {
    match json_body(body) {
        Ok(v) if v.is_object() => write(&s, &h, kind, name, Edit::Patch(v)).await,
        Ok(_) => invalid(kind, "a merge patch is a JSON object"),
        Err(r) => r,
    }
}

/// Deletes `kind`/`name`.
pub(super) async fn delete_one(s: Shared, h: HeaderMap, kind: &str, name: &str) -> Response {
    write(&s, &h, kind, name, Edit::Delete).await
}

pub(super) type Filters = Query<BTreeMap<String, String>>;

/// A page of any kind.
#[utoipa::path(
    get,
    path = "/admin/v1/resources/{kind}",
    tag = "resources",
    params(
        ("kind" = String, Path, example = "route",
         description = "A config section's kind (route, upstream, consumer, service, ...), or team, user, admin_token"),
        PageParams
    ),
    responses(
        (status = 200, description = "A page, in name order", body = Page),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn list_any(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Filters,
) -> Response {
    authed_list(s, h, &kind, q).await
}

/// One resource of any kind, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/admin/v1/resources/{kind}/{name}",
    tag = "resources",
    params(("kind" = String, Path, example = "route"), ("name" = String, Path, example = "pay")),
    responses(
        (status = 200, description = "The resource", body = AnyBody,
         headers(("ETag" = String, description = "Its version, for If-Match"))),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn get_any(State(s): State<Shared>, h: HeaderMap, Path((k, n)): Path<(String, String)>) -> Response {
    authed_one(s, h, &k, &n).await
}

/// Creates or replaces a resource of any kind.
#[utoipa::path(
    put,
    path = "/admin/v1/resources/{kind}/{name}",
    tag = "resources",
    params(("kind" = String, Path, example = "route"), ("name" = String, Path, example = "pay"), IfMatch),
    request_body(content = AnyBody, description = "The resource's body"),
    responses(
        (status = 200, description = "Written and in effect", body = AnyBody,
         headers(("ETag" = String, description = "Its version"))),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unprocessable,
        Unavailable
    )
)]
pub(super) async fn put_any(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((k, n)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    put_json(s, h, &k, &n, &b).await
}

/// Changes a resource of any kind by a JSON merge patch (RFC 7396).
#[utoipa::path(
    patch,
    path = "/admin/v1/resources/{kind}/{name}",
    tag = "resources",
    params(("kind" = String, Path, example = "route"), ("name" = String, Path, example = "pay"), IfMatch),
    request_body(content = ResourceBody, description = "A JSON merge patch: null removes a field"),
    responses(
        (status = 200, description = "Written and in effect", body = AnyBody,
         headers(("ETag" = String, description = "Its version"))),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unprocessable,
        Unavailable
    )
)]
pub(super) async fn patch_any(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((k, n)): Path<(String, String)>,
    b: Bytes,
) -> Response {
    patch_json(s, h, &k, &n, &b).await
}

/// Deletes a resource of any kind (an application or a service with its subscriptions).
#[utoipa::path(
    delete,
    path = "/admin/v1/resources/{kind}/{name}",
    tag = "resources",
    params(("kind" = String, Path, example = "route"), ("name" = String, Path, example = "pay"), IfMatch),
    responses(
        (status = 204, description = "Deleted, and in effect"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unprocessable,
        Unavailable
    )
)]
pub(super) async fn delete_any(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((k, n)): Path<(String, String)>,
) -> Response {
    delete_one(s, h, &k, &n).await
}

/// The routes at `/admin/v1/resources/{kind}[/{name}]`.
pub(super) fn generic_routes(router: axum::Router<Shared>) -> axum::Router<Shared> {
    use axum::routing::get;
    router.route("/admin/v1/resources/{kind}", get(list_any)).route(
        "/admin/v1/resources/{kind}/{name}",
        get(get_any).put(put_any).patch(patch_any).delete(delete_any),
    )
}
