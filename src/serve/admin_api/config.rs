//! The whole config and the audit log:
//!
//! - `GET /admin/v1/config` exports the store's config as YAML (the format
//!   of `portico import`), with the store's revision as `ETag`;
//! - `POST /admin/v1/config` imports one (YAML or JSON): checked like any
//!   write, answered with what it changes (`added`, `changed`, `removed`);
//!   with `?dry_run=true` nothing is written. The management plane's own
//!   kinds (teams, users, admin tokens) are kept;
//! - `GET /admin/v1/audit` lists every write (who, when, what, before and
//!   after), oldest first, from `after` (an id), at most `limit`.

use super::access::{Area, Op, Principal};
use super::openapi::{
    AuditPage, BadRequest, Conflict, Forbidden, Imported, ResourceBody, Unauthorized, Unavailable, Unprocessable,
};
use super::principal::authenticate;
use super::write::{check, forbidden, invalid};
use super::{etag, param, problem, store, store_problem, Shared};
use crate::store::{document, NewResource, Resource};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;

type Params = Query<BTreeMap<String, String>>;

/// A page of the audit log: every write (who, when, what, before and after), oldest first.
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    tag = "config",
    params(
        ("after" = Option<i64>, Query, description = "The `next` of the previous page (an entry's id)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many at most (default 100)")
    ),
    responses(
        (status = 200, description = "A page, oldest first", body = AuditPage),
        BadRequest, Unauthorized, Forbidden, Unavailable
    )
)]
pub(super) async fn audit(State(s): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let who = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !who.may(Op::Read, Area::Audit, None) {
        return forbidden(format!("{} may not read the audit log", who.name));
    }
    let (after, limit) = match (param::<i64>(&q, "after"), param::<i64>(&q, "limit")) {
        (Ok(a), Ok(l)) => (a.unwrap_or(0), l.unwrap_or(100)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if !(1..=1000).contains(&limit) {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "limit must be from 1 to 1000");
    }
    let st = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match st.audit(after, limit).await {
        Ok(rows) => {
            let items: Vec<_> = rows
                .iter()
                .map(|a| {
                    let redact = |b: &Option<Value>| {
                        b.as_ref().map(|body| {
                            let r = Resource {
                                kind: a.kind.clone(),
                                name: a.name.clone(),
                                body: body.clone(),
                                version: 0,
                                updated_at: 0,
                                position: 0,
                            };
                            super::resources::public(&r)
                        })
                    };
                    json!({"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "kind": a.kind,
                           "name": a.name, "before": redact(&a.before), "after": redact(&a.after)})
                })
                .collect();
            let next = (items.len() as i64 == limit)
                .then(|| rows.last().map(|a| a.id))
                .flatten();
            Json(json!({"items": items, "next": next})).into_response()
        }
        Err(e) => store_problem(&e),
    }
}

/// Whether `p` may read (or replace) the whole config: a system role.
fn whole(p: &Principal, op: Op) -> bool {
    p.sees_all()
        && [
            Area::Config,
            Area::Service,
            Area::Application,
            Area::SubscriptionDecision,
        ]
        .iter()
        .all(|a| p.may(op, *a, None))
}

/// The store's config as YAML (the format of `portico import`), with the store's revision as `ETag`.
#[utoipa::path(
    get,
    path = "/admin/v1/config",
    tag = "config",
    responses(
        (status = 200, description = "The config, in the config file's shape", body = ResourceBody,
         content_type = "application/yaml",
         headers(("ETag" = String, description = "The store's revision"))),
        Unauthorized, Forbidden, Unavailable
    )
)]
pub(super) async fn export(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !whole(&p, Op::Read) {
        return forbidden(format!("{} may not read the whole config", p.name));
    }
    let st = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    match (st.all().await, st.revision().await) {
        (Ok(all), Ok(rev)) => {
            let doc = super::secrets::shown_document(document::from_resources(&all));
            let yaml = serde_yaml::to_string(&doc).unwrap_or_default();
            let mut resp = yaml.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
            resp.headers_mut().insert(header::ETAG, etag(rev));
            resp
        }
        (Err(e), _) | (_, Err(e)) => store_problem(&e),
    }
}

/// What an import changes: (kind, name) added, changed and removed.
fn diff(now: &[Resource], next: &[NewResource]) -> Value {
    let key = |k: &str, n: &str| json!({"kind": k, "name": n});
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for (k, n, body) in next {
        match now.iter().find(|r| r.kind == *k && r.name == *n) {
            None => added.push(key(k, n)),
            Some(r) if r.body != *body => changed.push(key(k, n)),
            Some(_) => {}
        }
    }
    let removed: Vec<Value> = now
        .iter()
        .filter(|r| document::KINDS.contains(&r.kind.as_str()))
        .filter(|r| !next.iter().any(|(k, n, _)| *k == r.kind && *n == r.name))
        .map(|r| key(&r.kind, &r.name))
        .collect();
    json!({"added": added, "changed": changed, "removed": removed})
}

/// The resources an import makes, with the releases in `now` (an import
/// does not replace them).
fn candidate(resources: &[NewResource], now: &[Resource]) -> Vec<Resource> {
    let mut as_stored: Vec<Resource> = resources
        .iter()
        .enumerate()
        .map(|(i, (kind, name, body))| Resource {
            kind: kind.clone(),
            name: name.clone(),
            body: body.clone(),
            version: 0,
            updated_at: 0,
            position: i64::try_from(i).unwrap_or(i64::MAX),
        })
        .collect();
    as_stored.extend(now.iter().filter(|r| r.kind == crate::store::release::KIND).cloned());
    as_stored
}

/// Replaces the whole config (the management plane's own kinds are kept):
/// checked like any write, answered with what it changes.
#[utoipa::path(
    post,
    path = "/admin/v1/config",
    tag = "config",
    params(("dry_run" = Option<bool>, Query, description = "Check and answer with the changes; write nothing")),
    request_body(
        description = "A config file's sections (YAML or JSON), without `server`",
        content((ResourceBody = "application/json"), (ResourceBody = "application/yaml"))
    ),
    responses(
        (status = 200, description = "Imported (or, with dry_run, checked)", body = Imported),
        BadRequest, Unauthorized, Forbidden, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn import(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Params,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !whole(&p, Op::Write) {
        return forbidden(format!("{} may not replace the whole config", p.name));
    }
    let dry_run = match param::<bool>(&q, "dry_run") {
        Ok(d) => d.unwrap_or(false),
        Err(r) => return r,
    };
    let doc: Value = match serde_yaml::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return invalid("body", format!("not YAML or JSON: {e}")),
    };
    let mut resources = match document::to_resources(&doc) {
        Ok((_, true)) => return invalid("server", "`server` stays in the process's file"),
        Ok((r, false)) => r,
        Err(e) => return invalid("body", e),
    };
    let _one_at_a_time = s.writes.lock().await;
    let st = match store(&s).await {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let now = match st.all().await {
        Ok(a) => a,
        Err(e) => return store_problem(&e),
    };
    for (kind, name, body) in &mut resources {
        if let Err(p) = super::secrets::seal(kind, name, body, &now) {
            return super::write::unprocessable(p);
        }
    }
    // Compiled as served, and as written when that differs (see write::commit).
    let next = candidate(&resources, &now);
    if let Some(doc) = super::write::working_copy(&next) {
        if let Err(r) = check(&s, doc).await {
            return r;
        }
    }
    let checked = match check(&s, crate::store::release::served(&next)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let changes = diff(&now, &resources);
    if dry_run {
        return Json(json!({"dry_run": true, "changes": changes})).into_response();
    }
    let rev = match st.replace_all(&resources, &p.name).await {
        Ok(rev) => rev,
        Err(e) => return store_problem(&e),
    };
    s.applier.apply(checked, rev);
    Json(json!({"dry_run": false, "revision": rev, "changes": changes})).into_response()
}
