//! Services: the list, a new REST service (its upstream, the service and a
//! first route, written through the API in that order) or AI service (the
//! service and a route serving the OpenAI-compatible API), a service's page
//! (its routes, settings, releases and publications, OpenAPI import) and
//! its settings form.

use super::api::enc;
use super::forms::{Form, Outcome};
use super::render::{page, redirect, Page};
use super::session::{poster, viewer, Viewer};
use super::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

/// The services page, with `out` from a form.
async fn list_page(c: &Shared, v: &Viewer, out: Outcome) -> Response {
    let services = c.api.get(&v.token, "/admin/v1/services?limit=1000").await;
    let teams = c.api.get(&v.token, "/admin/v1/teams?limit=1000").await.items();
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({"title": "Services", "nav": "services", "me": v.json(), "services": services.items(),
                     "teams": teams, "notice": out.notice, "error": out.error.or_else(|| (!services.ok()).then(|| services.problem()))});
    page(c, status, Page::Services, ctx)
}

/// `GET /console/services`.
pub(super) async fn list(State(c): State<Shared>, h: HeaderMap) -> Response {
    match viewer(&c, &h, "/console/services").await {
        Ok(v) => list_page(&c, &v, Outcome::default()).await,
        Err(r) => r,
    }
}

/// The first route of a new service: `prefix/*` to its upstream, with a
/// key check when callers need a subscription.
fn first_route(name: &str, prefix: &str, keyed: bool) -> Value {
    let prefix = prefix.trim_end_matches(['*', '/']);
    let path = if prefix.is_empty() {
        "/*".to_string()
    } else {
        format!("{prefix}/*")
    };
    let mut route = json!({"name": name, "service": name, "paths": [path], "upstream": name, "strip_prefix": true});
    if keyed {
        route["policies"] = json!([{"key_auth": {}}]);
    }
    route
}

/// A route's policy chain from a form: an API key check when asked, then
/// the steps written as YAML (a list of one-key maps, as in the config).
fn policies(key_auth: bool, yaml: &str) -> Result<Vec<Value>, String> {
    let mut list = Vec::new();
    if key_auth {
        list.push(json!({"key_auth": {}}));
    }
    if yaml.trim().is_empty() {
        return Ok(list);
    }
    let steps: Value = serde_yaml::from_str(yaml).map_err(|e| format!("policies: {e}"))?;
    let Value::Array(steps) = steps else {
        return Err("policies: write a list of steps, such as `- rate_limit: {requests: 100, per: minute}`".into());
    };
    for step in steps {
        if step.get("key_auth").is_some() && key_auth {
            continue;
        }
        list.push(step);
    }
    Ok(list)
}

/// The service's labels from a form: tags, category and visibility.
fn labels(f: &Form) -> Map<String, Value> {
    let mut m = Map::new();
    for key in ["category", "tags", "visibility"] {
        if let Some(v) = f.opt(key) {
            m.insert(key.into(), Value::String(v));
        }
    }
    m
}

/// `POST /console/services`: a new service with its upstream and a route.
pub(super) async fn create(State(c): State<Shared>, h: HeaderMap, f: Form) -> Response {
    let v = match poster(&c, &h, &f, "/console/services").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(name) = f.opt("name") else {
        return list_page(&c, &v, Outcome::error("Give the service a name.".into())).await;
    };
    let team = f.opt("team");
    let subscription = f.opt("subscription").unwrap_or_else(|| "none".into());
    let mut service =
        json!({"description": f.get("description"), "subscription": subscription, "metadata": labels(&f)});
    if let Some(t) = &team {
        service["team"] = json!(t);
    }
    if f.get("publishing") == "releases" {
        service["publishing"] = json!("releases");
    }
    let mut steps: Vec<(String, Value)> = Vec::new();
    if f.get("kind") == "ai" {
        steps.push((format!("/admin/v1/services/{}", enc(&name)), service));
        let models: Vec<String> = f
            .get("models")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        let route = ai_route(&name, f.get("path"), subscription != "none", models);
        steps.push((format!("/admin/v1/routes/{}", enc(&name)), route));
        return write_all(&c, &v, &name, steps).await;
    }
    if let Some(target) = f.opt("target") {
        let mut upstream = json!({"targets": [{"address": target}]});
        if let Some(t) = &team {
            upstream["team"] = json!(t);
        }
        steps.push((format!("/admin/v1/upstreams/{}", enc(&name)), upstream));
    }
    steps.push((format!("/admin/v1/services/{}", enc(&name)), service));
    if f.opt("target").is_some() {
        let route = first_route(&name, f.get("path"), subscription != "none");
        steps.push((format!("/admin/v1/routes/{}", enc(&name)), route));
    }
    write_all(&c, &v, &name, steps).await
}

/// Writes `steps` in order (PUT path, body); the service's page, or the
/// list with the first refusal.
async fn write_all(c: &Shared, v: &Viewer, name: &str, steps: Vec<(String, Value)>) -> Response {
    for (path, body) in steps {
        let a = c.api.put(&v.token, &path, &body).await;
        if !a.ok() {
            return list_page(c, v, Outcome::error(a.problem())).await;
        }
    }
    redirect(&format!("/console/services/{}", enc(name)))
}

/// The route of a new AI service: the OpenAI-compatible API under
/// `prefix`, limited to `models` when some are named.
fn ai_route(name: &str, prefix: &str, keyed: bool, models: Vec<String>) -> Value {
    let mut route = first_route(name, prefix, keyed);
    if let Some(o) = route.as_object_mut() {
        o.remove("upstream");
        o.remove("strip_prefix");
        o.insert("ai".into(), json!({"models": models}));
    }
    route
}

/// A service's page, with `out` from a form.
pub(super) async fn show_page(c: &Shared, v: &Viewer, name: &str, out: Outcome) -> Response {
    let service = c.api.get(&v.token, &format!("/admin/v1/services/{}", enc(name))).await;
    if !service.ok() {
        return super::session::failure(c, &service);
    }
    let routes = c
        .api
        .get(&v.token, &format!("/admin/v1/routes?limit=1000&service={}", enc(name)))
        .await
        .items();
    let upstreams = c.api.get(&v.token, "/admin/v1/upstreams?limit=1000").await.items();
    let releases = c
        .api
        .get(&v.token, &format!("/admin/v1/services/{}/releases", enc(name)))
        .await;
    let publications = c
        .api
        .get(&v.token, &format!("/admin/v1/services/{}/publications", enc(name)))
        .await;
    let status = if out.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = json!({
        "title": name, "nav": "services", "me": v.json(), "name": name,
        "service": service.body,
        "routes": routes, "upstreams": upstreams,
        "releases": releases.items(), "publications": publications.items(),
        "notice": out.notice, "error": out.error,
    });
    page(c, status, Page::Service, ctx)
}

/// `GET /console/services/{name}`.
pub(super) async fn show(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>) -> Response {
    match viewer(&c, &h, &format!("/console/services/{}", enc(&name))).await {
        Ok(v) => show_page(&c, &v, &name, Outcome::default()).await,
        Err(r) => r,
    }
}

/// `POST /console/services/{name}/edit`: description, subscription,
/// publishing, approval of publishes and labels; or a new route.
pub(super) async fn edit(State(c): State<Shared>, h: HeaderMap, Path(name): Path<String>, f: Form) -> Response {
    let back = format!("/console/services/{}", enc(&name));
    let v = match poster(&c, &h, &f, &back).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = if let Some(route) = f.opt("route") {
        let mut body =
            json!({"service": name, "paths": [f.get("path")], "strip_prefix": f.get("strip_prefix") == "on"});
        if let Some(u) = f.opt("upstream") {
            body["upstream"] = json!(u);
        }
        let methods = f.all("methods");
        if !methods.is_empty() {
            body["methods"] = json!(methods);
        }
        match policies(f.get("key_auth") == "on", f.get("policies")) {
            Ok(list) if !list.is_empty() => body["policies"] = Value::Array(list),
            Ok(_) => {}
            Err(e) => return show_page(&c, &v, &name, Outcome::error(e)).await,
        }
        c.api
            .put(&v.token, &format!("/admin/v1/routes/{}", enc(&route)), &body)
            .await
    } else {
        // A merge patch: null removes a field, so a default stays unwritten.
        let patch = json!({
            "description": f.get("description"),
            "subscription": f.opt("subscription").unwrap_or_else(|| "none".into()),
            "publish_approval": (f.get("publish_approval") == "on").then_some(true),
            "publishing": (f.get("publishing") == "releases").then_some("releases"),
            "metadata": {"category": f.opt("category"), "tags": f.opt("tags"), "visibility": f.opt("visibility")},
        });
        c.api
            .patch(&v.token, &back.replace("/console/", "/admin/v1/"), &patch)
            .await
    };
    if !a.ok() {
        return show_page(&c, &v, &name, Outcome::error(a.problem())).await;
    }
    redirect(&back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_service_gets_a_prefix_route_keyed_when_subscribed() {
        let r = first_route("orders", "/orders/", true);
        assert_eq!(r["paths"], json!(["/orders/*"]));
        assert_eq!(r["policies"], json!([{"key_auth": {}}]));
        let open = first_route("open", "", false);
        assert_eq!(open["paths"], json!(["/*"]));
        assert!(open.get("policies").is_none());
        let ai = ai_route("chat", "/ai/chat", true, vec!["gpt-4o".into()]);
        assert_eq!(ai["ai"], json!({"models": ["gpt-4o"]}));
        assert!(ai.get("upstream").is_none() && ai.get("strip_prefix").is_none());
        assert_eq!(ai["paths"], json!(["/ai/chat/*"]));
        let p = policies(true, "- rate_limit: {requests: 5, per: second}\n- key_auth: {}\n").unwrap();
        assert_eq!(
            p,
            vec![
                json!({"key_auth": {}}),
                json!({"rate_limit": {"requests": 5, "per": "second"}})
            ]
        );
        assert!(policies(false, "rate_limit: x")
            .unwrap_err()
            .contains("a list of steps"));
        assert!(policies(false, "- [").is_err());
        assert!(policies(false, "  ").unwrap().is_empty());
        let f = Form::of(&[("tags", "pay, eu"), ("category", ""), ("visibility", "team")]);
        let l = labels(&f);
        assert_eq!(l.get("tags"), Some(&json!("pay, eu")));
        assert!(!l.contains_key("category"));
    }
}
