//! Admin writes: `PUT /admin/v1/resources/{kind}/{name}` (upsert) and
//! `DELETE`, each compiled before it is written and applied before it
//! returns.

use super::{etag, problem, refused, store, store_problem, Problem, Shared};
use crate::store::{document, Resource, StoreError};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Kinds a write may name ([`document`]'s).
const KINDS: &[&str] = &[
    "upstream",
    "route",
    "consumer",
    "prompt_api",
    "ai_provider",
    "ai_model",
    "ai_budget",
    "ai_access",
    "ai_settings",
];

/// `If-Match: "N"`: the version the writer read; `*`: any existing one.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Box<Response>> {
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

fn unprocessable(problems: Vec<Problem>) -> Response {
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

/// The store's sections as YAML after `change` (a body, or None to delete).
fn candidate(all: Vec<Resource>, kind: &str, name: &str, change: Option<&Value>) -> String {
    let mut all: Vec<Resource> = all
        .into_iter()
        .filter(|r| !(r.kind == kind && r.name == name))
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
    serde_yaml::to_string(&document::from_resources(&all)).unwrap_or_default()
}

/// What to do with a candidate config.
#[derive(Clone, Copy)]
enum Step {
    /// Compile it: nothing changes.
    Check,
    /// Compile it and swap it in (it is written).
    Apply,
}

/// Compiles (and for [`Step::Apply`] swaps in) the candidate, off the
/// serving thread: compiling is CPU work. None when it compiled; else the
/// 422 naming its problems (after a write, another write made the whole not
/// compile; the watcher reports it too).
async fn compile(s: &Shared, yaml: &str, step: Step) -> Option<Response> {
    let applier = s.applier.clone();
    let yaml = yaml.to_string();
    let done = tokio::task::spawn_blocking(move || match step {
        Step::Check => applier.check(&yaml),
        Step::Apply => applier.apply(&yaml),
    })
    .await;
    match done {
        Ok(Ok(())) => None,
        Ok(Err(p)) => Some(unprocessable(p)),
        Err(_) => Some(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "compiling failed",
        )),
    }
}

/// A write's start: the version it read (`If-Match`), the store, and what
/// the store holds now (the base of the candidate).
async fn prepare<'a>(
    s: &'a Shared,
    headers: &HeaderMap,
) -> Result<(Option<i64>, &'a crate::store::Store, Vec<Resource>), Box<Response>> {
    let expected = if_match(headers)?;
    let st = store(s).await?;
    let all = st.all().await.map_err(|e| Box::new(store_problem(&e)))?;
    Ok((expected, st, all))
}

pub(super) async fn put(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    if !KINDS.contains(&kind.as_str()) {
        return problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            &format!("no resource kind {kind:?}; use one of {}", KINDS.join(", ")),
        );
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "Bad Request", "the body must be JSON");
    };
    if matches!(kind.as_str(), "route" | "consumer" | "prompt_api") {
        if let Some(o) = value.as_object_mut() {
            // A listed resource carries its own name: the path's.
            o.insert("name".into(), Value::String(name.clone()));
        }
    }
    let (expected, st, all) = match prepare(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(p) = super::secrets::seal(&kind, &name, &mut value, &all) {
        return unprocessable(p);
    }
    let yaml = candidate(all, &kind, &name, Some(&value));
    if let Some(r) = compile(&s, &yaml, Step::Check).await {
        return r;
    }
    let written = match st.put(&kind, &name, &value, expected, "admin").await {
        Ok(r) => r,
        Err(e) => return store_problem(&e),
    };
    if let Some(r) = compile(&s, &yaml, Step::Apply).await {
        return r;
    }
    let mut resp = Json(super::secrets::shown(&kind, written.body)).into_response();
    resp.headers_mut().insert(header::ETAG, etag(written.version));
    resp
}

pub(super) async fn delete(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let (expected, st, all) = match prepare(&s, &headers).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !all.iter().any(|r| r.kind == kind && r.name == name) {
        return store_problem(&StoreError::NotFound { kind, name });
    }
    let yaml = candidate(all, &kind, &name, None);
    if let Some(r) = compile(&s, &yaml, Step::Check).await {
        return r;
    }
    if let Err(e) = st.delete(&kind, &name, expected, "admin").await {
        return store_problem(&e);
    }
    if let Some(r) = compile(&s, &yaml, Step::Apply).await {
        return r;
    }
    StatusCode::NO_CONTENT.into_response()
}
