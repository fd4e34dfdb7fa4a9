//! Publishing a service's release, and rolling back (publishing an earlier
//! one): the service's `release` is set (and its `publishing` to
//! `releases`), compiled and swapped in before the answer, and a
//! publication records who did it, when and why. With `publish_approval`
//! on the service, a publish is a pending publication until someone who
//! may write the service accepts it (then it is applied as asked, even when
//! newer releases exist) or refuses it.
//!
//! A publication's `status`: `applied` (published at once, no approval
//! needed), `pending`, `accepted` (and published then) or `refused`.
//! `applied_by`, `applied_at` and `comment` are the asker's;
//! `decided_by`, `decided_at` and `decision_comment` the decider's.

use super::openapi::{
    BadRequest, Conflict, Forbidden, IfMatch, NotFound, PreconditionFailed, Unauthorized, Unavailable, Unprocessable,
};
use super::principal::{authenticate, now};
use super::releases::{caller_and_all, everything, parse, rfc3339, service, writable};
use super::token::new_secret;
use super::write::{commit, if_match, not_found, Make};
use super::{problem, store_problem, Shared};
use crate::store::release::{stored_name, KIND, PUBLICATION};
use crate::store::{Resource, StoreError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// What a publish, an acceptance or a refusal may carry (the body may
/// also be empty).
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Comment {
    /// Why, for the record.
    comment: Option<String>,
}

fn comment(body: &[u8]) -> Result<Option<String>, Response> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(None);
    }
    parse::<Comment>(body).map(|c| c.comment)
}

fn conflict(detail: &str) -> Response {
    problem(StatusCode::CONFLICT, "Conflict", detail)
}

fn answer(status: StatusCode, publication: &Value) -> Response {
    let label = publication["status"].clone();
    (status, Json(json!({"status": label, "publication": publication}))).into_response()
}

/// Serves `release` for `service` now: its `release` set and its
/// `publishing` made `releases`, written as `actor` (one write, compiled
/// and swapped in before it returns). `direct` refuses a service that now
/// needs approval.
async fn set_release(
    s: &Shared,
    p: &super::access::Principal,
    service_name: &str,
    release: &str,
    expected: Option<i64>,
    direct: bool,
) -> Result<(), Response> {
    let make = |current: Option<&Resource>, all: &[Resource]| -> Result<Option<Value>, Response> {
        let svc = service(p, all, service_name)?;
        writable(p, svc)?;
        let name = stored_name(service_name, release);
        if !all.iter().any(|r| r.kind == KIND && r.name == name) {
            return Err(not_found("release", &name));
        }
        let mut body = current.map_or_else(|| svc.body.clone(), |c| c.body.clone());
        if direct && body["publish_approval"].as_bool() == Some(true) {
            return Err(conflict(
                "the service now needs approval to publish: ask again for a pending publication",
            ));
        }
        body["release"] = json!(release);
        body["publishing"] = json!("releases");
        Ok(Some(body))
    };
    let make: &Make = &make;
    commit(s, &p.name, "service", service_name, expected, make)
        .await
        .map(|_| ())
}

/// Makes a publication's body from the one stored (None: a new one).
type Body<'a> = dyn Fn(Option<&Resource>, &[Resource]) -> Result<Value, Response> + Send + Sync + 'a;

/// Writes the publication `id` as `make` says (a new one, or a decision
/// on a pending one).
async fn record(s: &Shared, actor: &str, id: &str, make: &Body<'_>) -> Result<Value, Response> {
    let write = |current: Option<&Resource>, all: &[Resource]| make(current, all).map(Some);
    let write: &Make = &write;
    match commit(s, actor, PUBLICATION, id, None, write).await? {
        Some(r) => Ok(r.body),
        None => Err(not_found("publication", id)),
    }
}

/// Publishes a release (a rollback is publishing an earlier one); with
/// `publish_approval`, asks for it.
#[utoipa::path(
    post,
    path = "/admin/v1/services/{service}/releases/{release}/publish",
    operation_id = "publish_release",
    tag = "releases",
    params(
        ("service" = String, Path, example = "payments"),
        ("release" = String, Path, example = "v1"),
        IfMatch
    ),
    request_body(content = Option<Comment>, description = "Why (optional; the body may be empty)"),
    responses(
        (status = 200, description = "Applied: served from now on", body = Published),
        (status = 202, description = "Pending: the service needs a service admin to accept it", body = Published),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unprocessable, Unavailable
    )
)]
pub(super) async fn publish(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((service_name, release)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (note, expected) = match (comment(&body), if_match(&headers)) {
        (Ok(c), Ok(e)) => (c, e),
        (Err(r), _) => return r,
        (_, Err(r)) => return *r,
    };
    let all = match everything(&s).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let svc = match service(&p, &all, &service_name).and_then(|svc| writable(&p, svc).map(|()| svc)) {
        Ok(svc) => svc,
        Err(r) => return r,
    };
    let name = stored_name(&service_name, &release);
    if !all.iter().any(|r| r.kind == KIND && r.name == name) {
        return not_found("release", &name);
    }
    if let Some(e) = expected.filter(|e| *e != svc.version) {
        return store_problem(&StoreError::Stale {
            kind: "service".into(),
            name: service_name,
            expected: e,
            actual: svc.version,
        });
    }
    let id = match new_secret() {
        Ok(secret) => secret[..12].to_string(),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", &e),
    };
    let pending = svc.body["publish_approval"].as_bool() == Some(true);
    if !pending {
        if let Err(r) = set_release(&s, &p, &service_name, &release, expected, true).await {
            return r;
        }
    }
    let at = rfc3339(now());
    let made = record(&s, &p.name, &id, &|_, _| {
        Ok(json!({
            "id": id, "service": service_name, "release": release,
            "status": if pending { "pending" } else { "applied" },
            "applied_by": p.name, "applied_at": at, "comment": note,
            "decided_by": null, "decided_at": null, "decision_comment": null,
        }))
    })
    .await;
    match made {
        Ok(body) if pending => answer(StatusCode::ACCEPTED, &body),
        Ok(body) => answer(StatusCode::OK, &body),
        Err(r) => r,
    }
}

/// The service's publications, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/services/{service}/publications",
    operation_id = "list_publications",
    tag = "releases",
    params(("service" = String, Path, example = "payments")),
    responses(
        (status = 200, description = "Newest first; `next` is always null", body = PublicationPage),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn list(State(s): State<Shared>, headers: HeaderMap, Path(service_name): Path<String>) -> Response {
    let (p, all) = match caller_and_all(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = service(&p, &all, &service_name) {
        return r;
    }
    let mut items: Vec<&Resource> = all
        .iter()
        .filter(|r| r.kind == PUBLICATION && r.body["service"].as_str() == Some(service_name.as_str()))
        .collect();
    items.sort_by_key(|r| std::cmp::Reverse(r.position));
    let items: Vec<&Value> = items.iter().map(|r| &r.body).collect();
    Json(json!({"items": items, "next": null})).into_response()
}

/// Decides the pending publication `id` of `service_name`: its new body.
fn decided(
    p: &super::access::Principal,
    service_name: &str,
    id: &str,
    current: Option<&Resource>,
    all: &[Resource],
    to: &str,
    why: Option<&String>,
) -> Result<Value, Response> {
    let Some(current) = current.filter(|c| c.body["service"].as_str() == Some(service_name)) else {
        return Err(not_found("publication", id));
    };
    writable(p, service(p, all, service_name)?)?;
    let status = current.body["status"].as_str().unwrap_or_default();
    if status != "pending" {
        return Err(conflict(&format!(
            "publication {id} is {status}; only a pending one can be {to}"
        )));
    }
    let mut body = current.body.clone();
    body["status"] = json!(to);
    body["decided_by"] = json!(p.name);
    body["decided_at"] = json!(rfc3339(now()));
    body["decision_comment"] = json!(why);
    Ok(body)
}

/// Accepts a pending publication: its release is published now.
#[utoipa::path(
    post,
    path = "/admin/v1/services/{service}/publications/{id}/accept",
    operation_id = "accept_publication",
    tag = "releases",
    params(("service" = String, Path, example = "payments"), ("id" = String, Path, example = "0123456789ab")),
    request_body(content = Option<Comment>, description = "Why (optional; the body may be empty)"),
    responses(
        (status = 200, description = "Accepted, and served from now on", body = Published),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn accept(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((service_name, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let why = match comment(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Decided first, so two acceptances cannot both apply; put back to
    // pending when the release cannot be served.
    let accepted = record(&s, &p.name, &id, &|current, all| {
        decided(&p, &service_name, &id, current, all, "accepted", why.as_ref())
    })
    .await;
    let accepted = match accepted {
        Ok(body) => body,
        Err(r) => return r,
    };
    let release = accepted["release"].as_str().unwrap_or_default().to_string();
    if let Err(refused) = set_release(&s, &p, &service_name, &release, None, false).await {
        let undo = record(&s, &p.name, &id, &|current, _| {
            let mut body = current.map_or(Value::Null, |c| c.body.clone());
            for field in ["decided_by", "decided_at", "decision_comment"] {
                body[field] = Value::Null;
            }
            body["status"] = json!("pending");
            Ok(body)
        })
        .await;
        if let Err(e) = undo {
            log::warn!("publication {id}: accepted but not applied, and not put back to pending: {e:?}");
        }
        return refused;
    }
    answer(StatusCode::OK, &accepted)
}

/// Refuses a pending publication: nothing is published.
#[utoipa::path(
    post,
    path = "/admin/v1/services/{service}/publications/{id}/refuse",
    operation_id = "refuse_publication",
    tag = "releases",
    params(("service" = String, Path, example = "payments"), ("id" = String, Path, example = "0123456789ab")),
    request_body(content = Option<Comment>, description = "Why (optional; the body may be empty)"),
    responses(
        (status = 200, description = "Refused", body = Published),
        Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable
    )
)]
pub(super) async fn refuse(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((service_name, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let p = match authenticate(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let why = match comment(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let refused = record(&s, &p.name, &id, &|current, all| {
        decided(&p, &service_name, &id, current, all, "refused", why.as_ref())
    })
    .await;
    match refused {
        Ok(body) => answer(StatusCode::OK, &body),
        Err(r) => r,
    }
}

/// The publication routes' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(publish, list, accept, refuse),
    components(schemas(Comment, Publication, Published, PublicationPage))
)]
pub(super) struct Doc;

pub(super) use schemas::*;

/// The shapes of the answers, for the document only.
#[allow(dead_code)] // never built: they describe
mod schemas {
    use utoipa::ToSchema;

    /// A request to publish a release, and its fate.
    #[derive(ToSchema)]
    pub(crate) struct Publication {
        /// Its id (in the accept and refuse paths).
        id: String,
        service: String,
        release: String,
        /// `applied` (at once), `pending`, `accepted` (and applied) or `refused`.
        status: String,
        /// Who asked to publish, when (RFC 3339) and why.
        applied_by: String,
        applied_at: String,
        comment: Option<String>,
        /// Who accepted or refused it, when and why.
        decided_by: Option<String>,
        decided_at: Option<String>,
        decision_comment: Option<String>,
    }

    /// A publication and its status.
    #[derive(ToSchema)]
    pub(crate) struct Published {
        /// The publication's status.
        status: String,
        publication: Publication,
    }

    /// A service's publications, newest first.
    #[derive(ToSchema)]
    pub(crate) struct PublicationPage {
        items: Vec<Publication>,
        /// Always null: the list is whole.
        next: Option<String>,
    }
}
