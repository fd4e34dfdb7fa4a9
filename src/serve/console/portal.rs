//! The developer portal: the catalogue of services a signed-in developer
//! may see (public ones, and their teams' own; with categories and tags),
//! a service's page with its OpenAPI document rendered, code samples for
//! curl, Python and JavaScript, subscribing one of their applications
//! (with the reason the approver sees), and "try it": a request sent
//! through the gateway's client listener with a key the developer pastes,
//! answered on the page (and recorded in the call log like any call).

use super::api::enc;
use super::applications::ask;
use super::forms::{Form, Outcome};
use super::render::{ok, page, Page};
use super::session::{failure, poster, viewer, Viewer};
use super::Shared;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The longest answer "try it" shows.
const TRY_MAX_BODY: usize = 64 * 1024;
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// Whether `v` may see the service in the portal: public ones, and a
/// team-only one to its team and the gateway's own roles.
fn visible(v: &Viewer, service: &Value) -> bool {
    let team_only = service.pointer("/body/metadata/visibility").and_then(Value::as_str) == Some("team");
    let team = service.pointer("/body/team").and_then(Value::as_str);
    !team_only || v.role.is_some() || team.is_some_and(|t| v.teams.iter().any(|(mine, _)| mine == t))
}

/// A service's tags: `metadata.tags`, comma-separated.
fn tags(service: &Value) -> Vec<String> {
    service
        .pointer("/body/metadata/tags")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `GET /portal`: the catalogue, by category, with a search.
pub(super) async fn catalogue(
    State(c): State<Shared>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let v = match viewer(&c, &h, "/portal").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let services = c.api.get(&v.token, "/admin/v1/services?limit=1000").await;
    let search = q.get("q").map(|s| s.to_lowercase()).unwrap_or_default();
    let category = q.get("category").cloned().unwrap_or_default();
    let all: Vec<Value> = services.items().into_iter().filter(|s| visible(&v, s)).collect();
    let mut categories: Vec<String> = all
        .iter()
        .filter_map(|s| {
            s.pointer("/body/metadata/category")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    categories.sort();
    categories.dedup();
    let shown: Vec<Value> = all
        .iter()
        .filter(|s| {
            category.is_empty() || s.pointer("/body/metadata/category").and_then(Value::as_str) == Some(&category)
        })
        .filter(|s| search.is_empty() || s.to_string().to_lowercase().contains(&search))
        .map(|s| {
            let mut s = s.clone();
            s["tags"] = json!(tags(&s));
            s
        })
        .collect();
    let ctx = json!({"title": "Catalogue", "portal": true, "me": v.json(), "services": shown, "categories": categories,
                     "category": category, "q": q.get("q"), "error": (!services.ok()).then(|| services.problem())});
    ok(&c, Page::Portal, ctx)
}

/// The operations of an OpenAPI document, for the page.
fn operations(doc: &Value) -> Vec<Value> {
    let base = doc.pointer("/servers/0/url").and_then(Value::as_str).unwrap_or("");
    let base = match base.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => base,
    }
    .trim_end_matches('/');
    let mut out = Vec::new();
    for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let params: Vec<Value> = op
                .get("parameters")
                .or_else(|| item.get("parameters"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            out.push(json!({
                "method": m, "path": format!("{base}{path}"), "id": op.get("operationId"),
                "summary": op.get("summary"), "description": op.get("description"),
                "parameters": params, "body": op.pointer("/requestBody/content"),
                "responses": op.get("responses"),
            }));
        }
    }
    out
}

/// Code samples for calling `path` with `method` on `gateway`.
fn samples(gateway: &str, method: &str, path: &str) -> Value {
    let url = format!("{gateway}{path}");
    let m = method.to_ascii_uppercase();
    json!({
        "curl": format!("curl -X {m} '{url}' \\\n  -H \"x-api-key: $PORTICO_KEY\""),
        "python": format!("import os, requests\n\nr = requests.request(\"{m}\", \"{url}\",\n                     headers={{\"x-api-key\": os.environ[\"PORTICO_KEY\"]}})\nprint(r.status_code, r.text)"),
        "javascript": format!("const r = await fetch(\"{url}\", {{\n  method: \"{m}\",\n  headers: {{ \"x-api-key\": process.env.PORTICO_KEY }},\n}});\nconsole.log(r.status, await r.text());"),
    })
}

/// What the gateway serves of the service: for one published through
/// releases, the published release's routes and document (its working copy
/// is not served); otherwise its routes and document as written. Routes as
/// `{"body": route}`, like the API's pages.
async fn served(c: &Shared, v: &Viewer, name: &str, service: &Value) -> (Vec<Value>, Value) {
    let released = service.get("publishing").and_then(Value::as_str) == Some("releases");
    if released {
        let Some(release) = service.get("release").and_then(Value::as_str) else {
            return (Vec::new(), Value::Null);
        };
        let r = c
            .api
            .get(
                &v.token,
                &format!("/admin/v1/services/{}/releases/{}", enc(name), enc(release)),
            )
            .await;
        let routes = r
            .body
            .pointer("/content/routes")
            .and_then(Value::as_array)
            .map(|rs| rs.iter().map(|b| json!({"body": b})).collect())
            .unwrap_or_default();
        let doc = r
            .body
            .pointer("/content/service/openapi")
            .cloned()
            .unwrap_or(Value::Null);
        return (routes, doc);
    }
    let routes = c
        .api
        .get(&v.token, &format!("/admin/v1/routes?limit=1000&service={}", enc(name)))
        .await
        .items();
    (routes, service.get("openapi").cloned().unwrap_or(Value::Null))
}

async fn service_page(c: &Shared, v: &Viewer, name: &str, out: Outcome, tried: Option<Value>) -> Response {
    let service = c.api.get(&v.token, &format!("/admin/v1/services/{}", enc(name))).await;
    if !service.ok() || !visible(v, &json!({"body": service.body})) {
        return failure(c, &service);
    }
    let (routes, doc) = served(c, v, name, &service.body).await;
    let apps = c.api.get(&v.token, "/admin/v1/applications?limit=1000").await.items();
    let ops = operations(&doc);
    let first_path = ops
        .first()
        .and_then(|o| o.get("path").and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            routes
                .first()
                .and_then(|r| r.pointer("/body/paths/0").and_then(Value::as_str))
                .map(|p| p.trim_end_matches('*').to_string())
        })
        .unwrap_or_else(|| "/".into());
    let first_method = ops
        .first()
        .and_then(|o| o.get("method").and_then(Value::as_str))
        .unwrap_or("get");
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({
        "title": name, "portal": true, "me": v.json(), "name": name, "service": service.body,
        "operations": ops, "routes": routes, "applications": apps, "gateway": c.gateway,
        "samples": samples(&c.gateway, first_method, &first_path), "try_path": first_path,
        "tried": tried, "notice": out.notice, "error": out.error,
    });
    page(c, status, Page::PortalService, ctx)
}

/// `GET /portal/services/{name}`.
pub(super) async fn service(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    match viewer(&c, &h, &format!("/portal/services/{}", enc(&name))).await {
        Ok(v) => service_page(&c, &v, &name, Outcome::default(), None).await,
        Err(r) => r,
    }
}

/// `POST /portal/services/{name}/subscribe`: one of the developer's
/// applications asks for the service.
pub(super) async fn subscribe(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, &format!("/portal/services/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let out = ask(c.as_ref(), &v, f.get("application"), &name, f.get("reason")).await;
    service_page(&c, &v, &name, out, None).await
}

/// Sends the "try it" request through the gateway.
async fn send(gateway: &str, method: &str, path: &str, key: &str, body: &str) -> Result<Value, String> {
    if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
        return Err("the path starts with / and has no spaces".into());
    }
    let method =
        reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| "not a method".to_string())?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.request(method, format!("{gateway}{path}"));
    if !key.is_empty() {
        req = req.header("x-api-key", key);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("the gateway did not answer: {e}"))?;
    let status = resp.status().as_u16();
    let headers: Vec<String> = resp
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("(binary)")))
        .collect();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(TRY_MAX_BODY)]).to_string();
    Ok(json!({"status": status, "headers": headers, "body": shown, "truncated": bytes.len() > TRY_MAX_BODY}))
}

/// `POST /portal/services/{name}/try`.
pub(super) async fn try_it(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let v = match poster(&c, &h, &f, &format!("/portal/services/{}", enc(&name))).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Only the service's own routes: "try it" comes from the admin host,
    // so it must not reach routes the developer could not call themselves.
    let service = c.api.get(&v.token, &format!("/admin/v1/services/{}", enc(&name))).await;
    if !service.ok() || !visible(&v, &json!({"body": service.body})) {
        return failure(&c, &service);
    }
    let (routes, _) = served(&c, &v, &name, &service.body).await;
    let path = f.get("path").split('?').next().unwrap_or("");
    let ours = routes.iter().any(|r| {
        r.pointer("/body/paths").and_then(Value::as_array).is_some_and(|ps| {
            ps.iter()
                .filter_map(Value::as_str)
                .any(|p| crate::router::PathPattern::parse(p).is_ok_and(|pattern| pattern.matches(path)))
        })
    });
    if !ours {
        let e = format!("{path:?} is not a path of {name}'s routes: try it sends only to this service");
        return service_page(&c, &v, &name, Outcome::error(e), None).await;
    }
    match send(
        &c.gateway,
        f.get("method"),
        f.get("path"),
        f.get("key").trim(),
        f.get("body"),
    )
    .await
    {
        Ok(tried) => service_page(&c, &v, &name, Outcome::default(), Some(tried)).await,
        Err(e) => service_page(&c, &v, &name, Outcome::error(e), None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_lists_its_operations_under_its_base_path() {
        let doc = json!({"servers": [{"url": "https://x.example/v2"}], "paths": {
            "/pets": {"get": {"summary": "List", "operationId": "list"}, "post": {"requestBody": {"content": {"application/json": {}}}}},
            "/pets/{id}": {"parameters": [{"name": "id", "in": "path"}], "delete": {}}}});
        let ops = operations(&doc);
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0]["path"], "/v2/pets");
        assert_eq!(ops[0]["method"], "get");
        assert_eq!(ops[2]["parameters"][0]["name"], "id");
        assert!(operations(&Value::Null).is_empty());
    }

    #[test]
    fn samples_name_the_gateway_and_the_key_variable() {
        let s = samples("http://127.0.0.1:8080", "get", "/pets");
        assert!(s["curl"]
            .as_str()
            .unwrap()
            .contains("curl -X GET 'http://127.0.0.1:8080/pets'"));
        assert!(s["python"].as_str().unwrap().contains("PORTICO_KEY"));
        assert!(s["javascript"]
            .as_str()
            .unwrap()
            .contains("fetch(\"http://127.0.0.1:8080/pets\""));
    }

    #[test]
    fn team_only_services_show_to_their_team() {
        let v = Viewer {
            token: String::new(),
            name: "dev".into(),
            role: None,
            teams: vec![("shop".into(), "developer".into())],
            csrf: String::new(),
        };
        let svc = |team: &str, vis: &str| json!({"body": {"team": team, "metadata": {"visibility": vis}}});
        assert!(visible(&v, &svc("other", "public")));
        assert!(visible(&v, &svc("shop", "team")));
        assert!(!visible(&v, &svc("other", "team")));
    }
}
