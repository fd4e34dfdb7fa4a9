//! A service's releases: immutable snapshots of its routes, the upstreams
//! only they use, and its settings, kept as resources of kind `release`
//! named `{service}@{release}` (the management plane's own kind, like
//! teams: an import does not replace them and an export does not hold
//! them). A service with `publishing: releases` is served from the release
//! its `release` names; its routes and upstreams in the store are its
//! working copy.
//!
//! [`served`] is the one place where that happens: the store's resources
//! become the config document that is compiled (at start, on the
//! watcher's reload, and for every admin write's check), with each such
//! service's working-copy routes and the upstreams only they use taken out
//! and the published release's put in their place (nothing at all before
//! the first publish). Decisions written down here:
//!
//! - An upstream used by routes of other services, or by routes of no
//!   service, is shared: it stays live and is not part of a release. When a
//!   release holds an upstream whose name is live again (shared since), the
//!   live one serves.
//! - A service's `name`, `team`, `subscription`, `publishing`, `release`
//!   and `publish_approval` are live ([`LIVE`]): who owns it and who may
//!   call it are not released. Its other fields (description, OpenAPI
//!   document, metadata, call log, `retire`) are served from the release.
//! - The release's routes take the place of the first working-copy route
//!   of the service (routes tie-break by order), or go last.
//! - A `release` naming no stored release serves nothing, as before the
//!   first publish.

use super::{document, Resource};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The kind of a release.
pub const KIND: &str = "release";

/// The kind of a publication: a request to publish a release, and its fate.
pub const PUBLICATION: &str = "publication";

/// The fields of a service that are never part of a release.
pub const LIVE: &[&str] = &[
    "name",
    "team",
    "subscription",
    "publishing",
    "release",
    "publish_approval",
];

/// The stored name of `service`'s release `release`.
pub fn stored_name(service: &str, release: &str) -> String {
    format!("{service}@{release}")
}

/// Whether a service's body asks to be served from releases.
pub fn by_release(service: &Value) -> bool {
    service.get("publishing").and_then(Value::as_str) == Some("releases")
}

fn service_of(route: &Value) -> Option<&str> {
    route.get("service").and_then(Value::as_str)
}

/// The upstreams that only `service`'s routes among `routes` use.
fn owned_upstreams(routes: Option<&Value>, service: &str) -> BTreeSet<String> {
    let (mut own, mut shared) = (BTreeSet::new(), BTreeSet::new());
    for route in routes.and_then(Value::as_array).into_iter().flatten() {
        if let Some(up) = route.get("upstream").and_then(Value::as_str) {
            if service_of(route) == Some(service) {
                own.insert(up.to_string());
            } else {
                shared.insert(up.to_string());
            }
        }
    }
    own.difference(&shared).cloned().collect()
}

/// `service`'s working copy as a release's content: its settings but the
/// live ones, its routes in order, and the upstreams only they use. None
/// when there is no such service.
pub fn content(all: &[Resource], service: &str) -> Option<Value> {
    let doc = document::from_resources(all);
    let body = doc["services"]
        .as_array()?
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(service))?;
    let mut settings = body.as_object().cloned().unwrap_or_default();
    settings.retain(|k, _| k == "name" || !LIVE.contains(&k.as_str()));
    let routes: Vec<Value> = doc["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| service_of(r) == Some(service))
        .cloned()
        .collect();
    let upstreams: Map<String, Value> = owned_upstreams(doc.get("routes"), service)
        .into_iter()
        .filter_map(|name| doc["upstreams"].get(&name).cloned().map(|b| (name, b)))
        .collect();
    Some(json!({"service": settings, "routes": routes, "upstreams": upstreams}))
}

/// The content of `service`'s stored release `release`.
fn stored<'a>(all: &'a [Resource], service: &str, release: &str) -> Option<&'a Value> {
    let name = stored_name(service, release);
    all.iter()
        .find(|r| r.kind == KIND && r.name == name)
        .map(|r| &r.body["content"])
}

/// Serves `content` (None: nothing) for `service` in `doc`.
fn serve(doc: &mut Map<String, Value>, service: &str, content: Option<&Value>) {
    let owned = owned_upstreams(doc.get("routes"), service);
    if let Some(Value::Object(ups)) = doc.get_mut("upstreams") {
        ups.retain(|name, _| !owned.contains(name));
    }
    let released: Vec<Value> = content
        .and_then(|c| c["routes"].as_array())
        .into_iter()
        .flatten()
        .map(|r| {
            let mut r = r.clone();
            r["service"] = json!(service);
            r
        })
        .collect();
    // Kept when emptied: a document that writes `routes` means it.
    let routes = doc.entry("routes").or_insert_with(|| json!([]));
    if let Some(routes) = routes.as_array_mut() {
        let first = routes.iter().position(|r| service_of(r) == Some(service));
        routes.retain(|r| service_of(r) != Some(service));
        let at = first.unwrap_or(routes.len()).min(routes.len());
        routes.splice(at..at, released);
    }
    let Some(content) = content else { return };
    if let Some(Value::Object(released)) = content.get("upstreams") {
        let ups = doc.entry("upstreams").or_insert_with(|| json!({}));
        if let Some(ups) = ups.as_object_mut() {
            for (name, body) in released {
                ups.entry(name.clone()).or_insert_with(|| body.clone());
            }
        }
    }
    let Some(Value::Array(services)) = doc.get_mut("services") else {
        return;
    };
    let Some(live) = services
        .iter_mut()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(service))
    else {
        return;
    };
    let mut body = content["service"].as_object().cloned().unwrap_or_default();
    body.retain(|k, _| !LIVE.contains(&k.as_str()));
    for field in LIVE {
        if let Some(v) = live.get(*field) {
            body.insert((*field).to_string(), v.clone());
        }
    }
    *live = Value::Object(body);
}

/// The services of `doc` served from releases, with the release each names.
fn by_release_services(doc: &Value) -> Vec<(String, Option<String>)> {
    doc["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| by_release(s))
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?.to_string();
            Some((name, s.get("release").and_then(Value::as_str).map(str::to_string)))
        })
        .collect()
}

/// The config document the data plane serves from the store's resources
/// (see the module doc); an export shows the working copy instead
/// ([`document::from_resources`]).
pub fn served(all: &[Resource]) -> Value {
    let mut doc = document::from_resources(all);
    for (service, release) in by_release_services(&doc) {
        let content = release.and_then(|r| stored(all, &service, &r));
        if let Some(o) = doc.as_object_mut() {
            serve(o, &service, content);
        }
    }
    doc
}

/// [`served`], with `service` served from `content` whatever it publishes
/// now: what a new release is checked with before it is kept.
pub fn trial(all: &[Resource], service: &str, content: &Value) -> Value {
    let mut doc = served(all);
    if let Some(o) = doc.as_object_mut() {
        serve(o, service, Some(content));
    }
    doc
}

/// The names in `from` and `to` that were added, changed (with the
/// top-level fields that differ) and removed.
fn compare<'a>(
    from: impl Iterator<Item = (&'a str, &'a Value)>,
    to: impl Iterator<Item = (&'a str, &'a Value)>,
) -> Value {
    let from: Vec<(&str, &Value)> = from.collect();
    let to: Vec<(&str, &Value)> = to.collect();
    let find = |list: &[(&str, &'a Value)], name: &str| list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for (name, after) in &to {
        match find(&from, name) {
            None => added.push(json!(name)),
            Some(before) if before != *after => {
                changed.push(json!({"name": name, "fields": fields(before, after)}));
            }
            Some(_) => {}
        }
    }
    let removed: Vec<Value> = from
        .iter()
        .filter(|(n, _)| find(&to, n).is_none())
        .map(|(n, _)| json!(n))
        .collect();
    json!({"added": added, "changed": changed, "removed": removed})
}

/// The top-level fields whose values differ, in name order.
fn fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    keys.into_iter().filter(|k| b.get(*k) != a.get(*k)).cloned().collect()
}

/// What changes from the content `from` to the content `to` (Null: no
/// release): routes and upstreams added, changed and removed, and the
/// service's settings that changed.
pub fn diff(from: &Value, to: &Value) -> Value {
    let routes = |c: &'_ Value| -> Vec<(String, Value)> {
        c["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["name"].as_str().unwrap_or_default().to_string(), r.clone()))
            .collect()
    };
    let (rf, rt) = (routes(from), routes(to));
    let empty = Map::new();
    let ups = |c: &'_ Value| c["upstreams"].as_object().cloned().unwrap_or_else(|| empty.clone());
    let (uf, ut) = (ups(from), ups(to));
    json!({
        "routes": compare(rf.iter().map(|(n, v)| (n.as_str(), v)), rt.iter().map(|(n, v)| (n.as_str(), v))),
        "upstreams": compare(uf.iter().map(|(n, v)| (n.as_str(), v)), ut.iter().map(|(n, v)| (n.as_str(), v))),
        "service": {"fields": fields(&from["service"], &to["service"])},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(list: Vec<(&str, &str, Value)>) -> Vec<Resource> {
        list.into_iter()
            .enumerate()
            .map(|(i, (kind, name, body))| Resource {
                kind: kind.into(),
                name: name.into(),
                body,
                version: 1,
                updated_at: 0,
                position: i as i64,
            })
            .collect()
    }

    /// Service `pay` by release (its own upstream `own`, upstream `shared`
    /// also used by `other`'s route), and service `other`, direct.
    fn store(release: Option<&str>) -> Vec<Resource> {
        let mut pay = json!({"name": "pay", "team": "payments", "publishing": "releases",
                             "description": "working", "publish_approval": true});
        if let Some(r) = release {
            pay["release"] = json!(r);
        }
        stored(vec![
            ("upstream", "own", json!({"targets": [{"address": "10.0.0.1:80"}]})),
            ("upstream", "shared", json!({"targets": [{"address": "10.0.0.2:80"}]})),
            (
                "route",
                "first",
                json!({"name": "first", "upstream": "shared", "service": "other"}),
            ),
            (
                "route",
                "pay",
                json!({"name": "pay", "upstream": "own", "service": "pay", "paths": ["/v2"]}),
            ),
            (
                "route",
                "pay-shared",
                json!({"name": "pay-shared", "upstream": "shared", "service": "pay"}),
            ),
            ("route", "last", json!({"name": "last", "upstream": "shared"})),
            ("service", "pay", pay),
            ("service", "other", json!({"name": "other"})),
        ])
    }

    fn route_names(doc: &Value) -> Vec<&str> {
        doc["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_release_holds_the_routes_and_only_the_upstreams_no_one_else_uses() {
        let all = store(None);
        let c = content(&all, "pay").unwrap();
        assert_eq!(route_names(&c), ["pay", "pay-shared"]);
        assert_eq!(c["upstreams"].as_object().unwrap().keys().collect::<Vec<_>>(), ["own"]);
        assert_eq!(c["service"], json!({"name": "pay", "description": "working"}));
        assert!(content(&all, "nope").is_none());
    }

    #[test]
    fn nothing_is_served_before_the_first_publish() {
        let doc = served(&store(None));
        assert_eq!(route_names(&doc), ["first", "last"]);
        assert!(doc["upstreams"].get("own").is_none(), "{doc}");
        assert!(doc["upstreams"].get("shared").is_some(), "shared stays live");
        let services = doc["services"].as_array().unwrap();
        assert_eq!(services.len(), 2, "the service stays, for its subscriptions");
        // A release that is not stored serves nothing either.
        assert_eq!(route_names(&served(&store(Some("v9")))), ["first", "last"]);
    }

    #[test]
    fn the_published_release_is_served_in_place_of_the_working_copy() {
        let mut all = store(Some("v1"));
        let release = json!({"service": "pay", "name": "v1", "content": {
            "service": {"name": "pay", "description": "as released", "team": "ignored"},
            "routes": [{"name": "pay", "upstream": "own", "service": "pay", "paths": ["/v1"]},
                       {"name": "pay-old", "upstream": "shared", "service": "pay"}],
            "upstreams": {"own": {"targets": [{"address": "10.0.0.9:80"}]},
                          "shared": {"targets": [{"address": "10.9.9.9:80"}]}},
        }});
        all.extend(stored(vec![("release", "pay@v1", release)]));
        let doc = served(&all);
        assert_eq!(route_names(&doc), ["first", "pay", "pay-old", "last"]);
        assert_eq!(
            doc["routes"][1]["paths"],
            json!(["/v1"]),
            "the released route, not the working one"
        );
        assert_eq!(
            doc["upstreams"]["own"]["targets"][0]["address"], "10.0.0.9:80",
            "the release's own upstream"
        );
        assert_eq!(
            doc["upstreams"]["shared"]["targets"][0]["address"], "10.0.0.2:80",
            "a shared upstream stays live"
        );
        let pay = &doc["services"][0];
        assert_eq!(pay["description"], "as released");
        assert_eq!(pay["team"], "payments", "ownership is live");
        assert_eq!(pay["publish_approval"], true);
        // The export is the working copy.
        let working = document::from_resources(&all);
        assert_eq!(working["routes"][1]["paths"], json!(["/v2"]));
        // A trial serves the content asked for, whatever is published.
        let trial = trial(&all, "pay", &content(&all, "pay").unwrap());
        assert_eq!(trial["routes"][1]["paths"], json!(["/v2"]));
        assert_eq!(trial["upstreams"]["own"]["targets"][0]["address"], "10.0.0.1:80");
    }

    #[test]
    fn a_diff_names_what_was_added_changed_and_removed() {
        let v1 = json!({"service": {"name": "pay", "description": "a"},
            "routes": [{"name": "a", "paths": ["/a"]}, {"name": "b", "paths": ["/b"]}],
            "upstreams": {"u": {"targets": []}}});
        let v2 = json!({"service": {"name": "pay", "description": "b", "metadata": {"x": "1"}},
            "routes": [{"name": "a", "paths": ["/a2"], "rewrite": "/x"}, {"name": "c"}],
            "upstreams": {"u": {"targets": []}, "w": {"targets": []}}});
        let d = diff(&v1, &v2);
        assert_eq!(d["routes"]["added"], json!(["c"]));
        assert_eq!(d["routes"]["removed"], json!(["b"]));
        assert_eq!(
            d["routes"]["changed"],
            json!([{"name": "a", "fields": ["paths", "rewrite"]}])
        );
        assert_eq!(d["upstreams"], json!({"added": ["w"], "changed": [], "removed": []}));
        assert_eq!(d["service"]["fields"], json!(["description", "metadata"]));
        let from_nothing = diff(&Value::Null, &v1);
        assert_eq!(from_nothing["routes"]["added"], json!(["a", "b"]));
        assert_eq!(diff(&v1, &v1)["routes"]["changed"], json!([]));
    }
}
