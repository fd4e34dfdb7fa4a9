//! Importing a service's OpenAPI document: the document is saved on the
//! service (the portal renders it, the MCP tools come from it) and, when an
//! upstream is chosen, one route per path is written with the path's
//! methods, so the document and the routes start out the same (APIPark
//! keeps them apart, its issue #437).

use super::api::enc;
use super::forms::{Form, Outcome};
use super::services::show_page;
use super::session::poster;
use super::Shared;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

/// The methods an OpenAPI path item may hold.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The document's base path: the path of its first server's URL.
fn base_path(doc: &Value) -> String {
    let url = doc.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or("");
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    path.trim_end_matches('/').to_string()
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The document parsed (JSON or YAML) and checked to be OpenAPI with paths.
pub(super) fn parse(text: &str) -> Result<Value, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("the document is neither JSON nor YAML: {e}"))?;
    if doc.get("openapi").and_then(Value::as_str).is_none() {
        return Err("the document has no `openapi` version: give an OpenAPI 3 document".into());
    }
    if !doc.get("paths").is_some_and(Value::is_object) {
        return Err("the document has no `paths`".into());
    }
    Ok(doc)
}

/// One route per path of `doc`, for `service` on `upstream`: its name and
/// body. `keyed` adds an API key check (a service with subscriptions).
pub(super) fn routes_from(doc: &Value, service: &str, upstream: &str, keyed: bool) -> Vec<(String, Value)> {
    let base = base_path(doc);
    let mut out: Vec<(String, Value)> = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        let methods: Vec<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if methods.is_empty() {
            continue;
        }
        let named = METHODS.iter().find_map(|m| {
            item.get(*m)
                .and_then(|op| op.get("operationId"))
                .and_then(Value::as_str)
        });
        let mut name = format!("{service}-{}", slug(named.unwrap_or(path)));
        if out.iter().any(|(n, _)| *n == name) || name.ends_with('-') {
            name = format!("{service}-{}", out.len() + 1);
        }
        let mut route =
            json!({"service": service, "paths": [format!("{base}{path}")], "methods": methods, "upstream": upstream});
        if keyed {
            route["policies"] = json!([{"key_auth": {}}]);
        }
        out.push((name, route));
    }
    out
}

/// `POST /console/services/{name}/import`.
pub(super) async fn import(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, &format!("/console/services/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let doc = match parse(f.get("document")) {
        Ok(d) => d,
        Err(e) => return show_page(&c, &v, &name, Outcome::error(e)).await,
    };
    let api = format!("/admin/v1/services/{}", enc(&name));
    let a = c.api.patch(&v.token, &api, &json!({"openapi": doc})).await;
    if !a.ok() {
        return show_page(&c, &v, &name, Outcome::error(a.problem())).await;
    }
    let mut made = 0;
    if let Some(upstream) = f.opt("upstream") {
        let keyed = a
            .body
            .pointer("/subscription")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "none");
        for (route, body) in routes_from(&doc, &name, &upstream, keyed) {
            let r = c
                .api
                .put(&v.token, &format!("/admin/v1/routes/{}", enc(&route)), &body)
                .await;
            if !r.ok() {
                let e = format!("the document is saved; route {route}: {}", r.problem());
                return show_page(&c, &v, &name, Outcome::error(e)).await;
            }
            made += 1;
        }
    }
    let notice = format!("The document is saved; {made} routes written from it.");
    show_page(
        &c,
        &v,
        &name,
        Outcome {
            notice: Some(notice),
            error: None,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_becomes_one_route_per_path() {
        let doc = parse(
            "openapi: 3.0.0\nservers: [{url: 'https://api.example.com/v1/'}]\npaths:\n  /pets:\n    get: {operationId: listPets}\n    post: {}\n  /pets/{id}:\n    get: {}\n  /empty: {parameters: []}\n",
        )
        .unwrap();
        let routes = routes_from(&doc, "pets", "backend", true);
        assert_eq!(routes.len(), 2, "{routes:?}");
        assert_eq!(routes[0].0, "pets-listpets");
        assert_eq!(routes[0].1["paths"], json!(["/v1/pets"]));
        assert_eq!(routes[0].1["methods"], json!(["GET", "POST"]));
        assert_eq!(routes[0].1["policies"], json!([{"key_auth": {}}]));
        assert_eq!(routes[1].0, "pets-pets-id");
        assert_eq!(routes[1].1["paths"], json!(["/v1/pets/{id}"]));
        assert!(parse("{}").is_err());
        assert!(parse("openapi: 3.1.0").is_err());
        assert!(parse(": : :").is_err());
    }
}
