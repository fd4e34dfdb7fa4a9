//! How every admin write happens ([`commit`]): one at a time in this
//! process; the change is made from what the store holds now (so a change
//! may read the current resource: PATCH, a new credential); a config kind's
//! result is compiled with the rest of the store before anything is written
//! (422 with the located problems when it does not compile); the write is
//! conditional on the resource's version (`If-Match`, 412) and on the
//! store's revision (another node or the CLI wrote meanwhile: the write is
//! made again from the new state); once written it is swapped in before the
//! write returns, so the next request is served by it. What is compiled is
//! what would be served ([`crate::store::release::served`]), and, when a
//! service is served from a release, the working copy too; a new release is
//! compiled as if it were served, and kept only if that compiles.

use super::{problem, store, store_problem, Problem, Shared};
use crate::store::{document, Resource, StoreError};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// `If-Match: "N"`: the version the writer read; `*`: any existing one.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Box<Response>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_matches('"').parse::<i64>().map(Some).map_err(|_| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "If-Match must be an ETag this API gave, like \"3\"",
        ))
    })
}

pub(crate) fn unprocessable(problems: Vec<Problem>) -> Response {
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({"path": p.path, "message": p.message}))
        .collect();
    let detail = problems
        .first()
        .map_or_else(String::new, |p| format!("{}: {}", p.path, p.message));
    let body = json!({"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                      "detail": detail, "errors": errors});
    let mut resp = (StatusCode::UNPROCESSABLE_ENTITY, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// The store's resources after `change` (a body, or None to delete).
fn candidate(all: &[Resource], kind: &str, name: &str, change: Option<&Value>) -> Vec<Resource> {
    let mut all: Vec<Resource> = all
        .iter()
        .filter(|r| !(r.kind == kind && r.name == name))
        .cloned()
        .collect();
    if let Some(body) = change {
        let position = all
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.position + 1)
            .max()
            .unwrap_or(0);
        all.push(Resource {
            kind: kind.into(),
            name: name.into(),
            body: body.clone(),
            version: 0,
            updated_at: 0,
            position,
        });
    }
    all
}

/// The working copy as a config (what an export shows), when a service is
/// served from a release instead: it must compile too, so that a mistake
/// in a working copy is refused where it is made and an export imports.
pub(crate) fn working_copy(all: &[Resource]) -> Option<Value> {
    all.iter()
        .any(|r| r.kind == "service" && crate::store::release::by_release(&r.body))
        .then(|| document::from_resources(all))
}

/// The document a new release of a service would serve, to check it.
fn trial(kind: &str, all: &[Resource], change: Option<&Value>) -> Option<Value> {
    let body = change.filter(|_| kind == crate::store::release::KIND)?;
    let service = body.get("service").and_then(Value::as_str)?;
    Some(crate::store::release::trial(all, service, &body["content"]))
}

/// Lowers the calling thread's CPU priority (nice 10): the management
/// plane's work yields to the traffic.
pub(crate) fn background_priority() {
    // SAFETY: setpriority only reads its three integer arguments; who = 0
    // is the calling thread on Linux.
    let done = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10) };
    if done != 0 {
        log::debug!("admin work runs at normal priority");
    }
}

/// A compile to run on the compiler thread.
type Job = Box<dyn FnOnce() + Send>;

/// The compiler thread: compiles run there, one at a time, at a lower CPU
/// priority (nice 10), so compiling a large store for an admin write yields
/// the CPU to the traffic the gateway serves (measured in
/// `bench/store_bench.py`). None when it could not be started.
fn compiler() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static COMPILER: once_cell::sync::OnceCell<Option<std::sync::mpsc::Sender<Job>>> = once_cell::sync::OnceCell::new();
    COMPILER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("portico-compile".into())
                .spawn(move || {
                    background_priority();
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Compiles the candidate on the compiler thread (compiling is CPU work):
/// what to swap in once it is written, or the 422 naming its problems.
pub(crate) async fn check(s: &Shared, doc: Value) -> Result<super::Candidate, Response> {
    let applier = s.applier.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(applier.check(doc));
    });
    let failed = || {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "compiling failed",
        )
    };
    let outcome = match compiler() {
        Some(c) if c.send(job).is_ok() => rx.await.map_err(|_| failed()),
        _ => Err(failed()),
    };
    match outcome {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(p)) => Err(unprocessable(p)),
        Err(r) => Err(r),
    }
}

/// Makes a write's new body from the current resource (None: it does not
/// exist) and everything stored; Ok(None) deletes; Err is the answer
/// (refused, not found, invalid).
pub(crate) type Make<'a> = dyn Fn(Option<&Resource>, &[Resource]) -> Result<Option<Value>, Response> + Send + Sync + 'a;

/// How many times a write is made again when another writer moved the store.
const ATTEMPTS: usize = 3;

/// Makes and writes one change to `kind`/`name` as `actor` (see the module
/// doc); the resource written, or None when deleted.
pub(crate) async fn commit(
    s: &Shared,
    actor: &str,
    kind: &str,
    name: &str,
    expected: Option<i64>,
    make: &Make<'_>,
) -> Result<Option<Resource>, Response> {
    let _one_at_a_time = s.writes.lock().await;
    let st = store(s).await.map_err(|r| *r)?;
    let compiled = document::KINDS.contains(&kind);
    for _ in 0..ATTEMPTS {
        let rev = st.revision().await.map_err(|e| store_problem(&e))?;
        let all = st.all().await.map_err(|e| store_problem(&e))?;
        let current = all.iter().find(|r| r.kind == kind && r.name == name);
        let mut change = make(current, &all)?;
        if let Some(body) = change.as_mut() {
            // Secrets in the clear are sealed before anything else sees them.
            super::secrets::seal(kind, name, body, &all).map_err(unprocessable)?;
        }
        let checked = if compiled {
            let next = candidate(&all, kind, name, change.as_ref());
            if let Some(doc) = working_copy(&next) {
                check(s, doc).await?;
            }
            // What is served: a service published through releases from
            // its release ([`crate::store::release::served`]).
            Some(check(s, crate::store::release::served(&next)).await?)
        } else {
            // A new release is compiled as if it were served, and kept only
            // if it compiles; it is not served.
            if let Some(doc) = trial(kind, &all, change.as_ref()) {
                check(s, doc).await?;
            }
            None
        };
        let written = match &change {
            Some(body) => st.put_at(kind, name, body, expected, actor, Some(rev)).await.map(Some),
            None => st
                .delete_at(kind, name, expected, actor, Some(rev))
                .await
                .map(|()| None),
        };
        let written = match written {
            Err(StoreError::Moved { .. }) => continue,
            other => other.map_err(|e| store_problem(&e))?,
        };
        if let Some(c) = checked {
            // Written conditionally on `rev`: the store is at `rev + 1` now.
            s.applier.apply(c, rev + 1);
        }
        return Ok(written);
    }
    Err(problem(
        StatusCode::CONFLICT,
        "Conflict",
        "the store kept changing while this write was being checked; retry it",
    ))
}

/// A 422 about one field.
pub(crate) fn invalid(path: &str, message: impl Into<String>) -> Response {
    unprocessable(vec![Problem {
        path: path.into(),
        message: message.into(),
    }])
}

/// The 403 for a principal without the permission.
pub(crate) fn forbidden(detail: impl std::fmt::Display) -> Response {
    problem(StatusCode::FORBIDDEN, "Forbidden", &detail.to_string())
}

/// The 404 for a resource that does not exist.
pub(crate) fn not_found(kind: &str, name: &str) -> Response {
    store_problem(&StoreError::NotFound {
        kind: kind.into(),
        name: name.into(),
    })
}

/// A body with its version as `ETag`.
pub(crate) fn with_etag(status: StatusCode, body: &Value, version: i64) -> Response {
    let mut resp = (status, axum::Json(body.clone())).into_response();
    resp.headers_mut().insert(header::ETAG, super::etag(version));
    resp
}
