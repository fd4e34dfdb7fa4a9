//! A declarative config (the YAML file's shape) as store resources, and
//! back. `import` and `export` go through here, and so does every compile
//! in store mode, so the store and GitOps files never differ in shape.
//!
//! | section | kind | name |
//! |---|---|---|
//! | `upstreams.NAME` | `upstream` | the map key |
//! | `routes[]` | `route` | its `name` |
//! | `consumers[]` | `consumer` | its `name` |
//! | `prompt_apis[]` | `prompt_api` | its `name` |
//! | `services[]` | `service` | its `name` |
//! | `subscriptions[]` | `subscription` | `application:service` |
//! | `default_policies` | `default_policies` | `default` (the whole list) |
//! | `ai.providers.NAME` | `ai_provider` | the map key |
//! | `ai.models.NAME` | `ai_model` | the map key |
//! | `ai.budgets[]`, `ai.access[]` | `ai_budget`, `ai_access` | their position, `0001`... |
//! | every other key of `ai` | `ai_settings` | `ai` |
//!
//! `server` stays in the process's file: it is what a process needs to
//! start. Lists keep their order (routes tie-break by it).

use super::{NewResource, Resource};
use serde_json::{Map, Value};

/// Sections a document may hold besides `server`: in store mode, the
/// sections the store owns.
pub const SECTIONS: &[&str] = &[
    "upstreams",
    "routes",
    "consumers",
    "ai",
    "prompt_apis",
    "services",
    "subscriptions",
    "default_policies",
];

/// The kinds a document's resources have: what an import replaces and a
/// compile reads. The store's other kinds (teams, users, admin tokens) are
/// the management plane's own.
pub const KINDS: &[&str] = &[
    "upstream",
    "route",
    "consumer",
    "prompt_api",
    "service",
    "subscription",
    "default_policies",
    "ai_provider",
    "ai_model",
    "ai_budget",
    "ai_access",
    "ai_settings",
];

/// The list sections whose items carry their own `name`, and their kinds.
pub const NAMED: &[(&str, &str)] = &[
    ("routes", "route"),
    ("consumers", "consumer"),
    ("prompt_apis", "prompt_api"),
    ("services", "service"),
];

/// A subscription's name: `application:service`.
pub fn subscription_name(body: &Value) -> Option<String> {
    let app = body.get("application")?.as_str()?;
    let service = body.get("service")?.as_str()?;
    Some(format!("{app}:{service}"))
}

fn subscriptions(v: &Value, out: &mut Vec<NewResource>) -> Result<(), String> {
    let list = v.as_array().ok_or("subscriptions: must be a list")?;
    for (i, item) in list.iter().enumerate() {
        let name =
            subscription_name(item).ok_or_else(|| format!("subscriptions[{i}]: give `application` and `service`"))?;
        if out.iter().any(|(k, n, _)| k == "subscription" && *n == name) {
            return Err(format!("subscriptions[{i}]: {name} is listed twice"));
        }
        out.push(("subscription".into(), name, item.clone()));
    }
    Ok(())
}

fn named_list(section: &str, kind: &str, v: &Value, out: &mut Vec<NewResource>) -> Result<(), String> {
    let list = v.as_array().ok_or_else(|| format!("{section}: must be a list"))?;
    for (i, item) in list.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{section}[{i}]: a stored {kind} needs a `name`"))?;
        if out.iter().any(|(k, n, _)| k == kind && n == name) {
            return Err(format!("{section}[{i}]: a second {kind} named {name:?}"));
        }
        out.push((kind.into(), name.into(), item.clone()));
    }
    Ok(())
}

fn map(section: &str, kind: &str, v: &Value, out: &mut Vec<NewResource>) -> Result<(), String> {
    let m = v.as_object().ok_or_else(|| format!("{section}: must be a map"))?;
    for (name, body) in m {
        out.push((kind.into(), name.clone(), body.clone()));
    }
    Ok(())
}

fn positional(kind: &str, v: &Value, out: &mut Vec<NewResource>) {
    for (i, item) in v.as_array().into_iter().flatten().enumerate() {
        out.push((kind.into(), format!("{:04}", i + 1), item.clone()));
    }
}

/// The resources of a document (as JSON), in order; `server` is left out
/// (the second value says whether there was one).
pub fn to_resources(doc: &Value) -> Result<(Vec<NewResource>, bool), String> {
    let top = doc.as_object().ok_or("the config must be a map of sections")?;
    let mut out = Vec::new();
    for (key, v) in top {
        if let Some((section, kind)) = NAMED.iter().find(|(s, _)| s == key) {
            named_list(section, kind, v, &mut out)?;
            continue;
        }
        match key.as_str() {
            "server" => {}
            "upstreams" => map("upstreams", "upstream", v, &mut out)?,
            "subscriptions" => subscriptions(v, &mut out)?,
            "default_policies" => out.push(("default_policies".into(), "default".into(), v.clone())),
            "ai" => {
                let ai = v.as_object().ok_or("ai: must be a map")?;
                let mut settings = Map::new();
                for (k, v) in ai {
                    match k.as_str() {
                        "providers" => map("ai.providers", "ai_provider", v, &mut out)?,
                        "models" => map("ai.models", "ai_model", v, &mut out)?,
                        "budgets" => positional("ai_budget", v, &mut out),
                        "access" => positional("ai_access", v, &mut out),
                        _ => {
                            settings.insert(k.clone(), v.clone());
                        }
                    }
                }
                out.push(("ai_settings".into(), "ai".into(), Value::Object(settings)));
            }
            other => {
                return Err(format!(
                    "{other}: not a section of the config ({})",
                    SECTIONS.join(", ")
                ))
            }
        }
    }
    Ok((out, top.contains_key("server")))
}

/// Sets `key` to `v` unless `v` is an empty map or list.
fn put_nonempty(map: &mut Map<String, Value>, key: &str, v: Value) {
    let empty = v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty);
    if !empty {
        map.insert(key.into(), v);
    }
}

/// The document the resources make (resources in order of kind and
/// position, as [`super::Store::all`] gives them).
pub fn from_resources(resources: &[Resource]) -> Value {
    let mut upstreams = Map::new();
    let (mut routes, mut consumers, mut prompt_apis) = (Vec::new(), Vec::new(), Vec::new());
    let (mut services, mut subs, mut defaults) = (Vec::new(), Vec::new(), None);
    let mut ai: Option<Map<String, Value>> = None;
    let mut providers = Map::new();
    let mut models = Map::new();
    let (mut budgets, mut access) = (Vec::new(), Vec::new());
    let mut sorted: Vec<&Resource> = resources.iter().collect();
    sorted.sort_by(|a, b| {
        (a.kind.as_str(), a.position, a.name.as_str()).cmp(&(b.kind.as_str(), b.position, b.name.as_str()))
    });
    for r in sorted {
        let body = r.body.clone();
        match r.kind.as_str() {
            "upstream" => {
                upstreams.insert(r.name.clone(), body);
            }
            "route" => routes.push(body),
            "consumer" => consumers.push(body),
            "prompt_api" => prompt_apis.push(body),
            "service" => services.push(body),
            "subscription" => subs.push(body),
            "default_policies" => defaults = Some(body),
            "ai_provider" => {
                providers.insert(r.name.clone(), body);
            }
            "ai_model" => {
                models.insert(r.name.clone(), body);
            }
            "ai_budget" => budgets.push(body),
            "ai_access" => access.push(body),
            "ai_settings" => ai = body.as_object().cloned().or(ai),
            _ => {}
        }
    }
    let mut doc = Map::new();
    put_nonempty(&mut doc, "upstreams", Value::Object(upstreams));
    put_nonempty(&mut doc, "routes", Value::Array(routes));
    put_nonempty(&mut doc, "consumers", Value::Array(consumers));
    let any_ai =
        ai.is_some() || !providers.is_empty() || !models.is_empty() || !budgets.is_empty() || !access.is_empty();
    if any_ai {
        let mut ai = ai.unwrap_or_default();
        put_nonempty(&mut ai, "providers", Value::Object(providers));
        put_nonempty(&mut ai, "models", Value::Object(models));
        put_nonempty(&mut ai, "budgets", Value::Array(budgets));
        put_nonempty(&mut ai, "access", Value::Array(access));
        doc.insert("ai".into(), Value::Object(ai));
    }
    put_nonempty(&mut doc, "prompt_apis", Value::Array(prompt_apis));
    put_nonempty(&mut doc, "services", Value::Array(services));
    put_nonempty(&mut doc, "subscriptions", Value::Array(subs));
    if let Some(d) = defaults {
        doc.insert("default_policies".into(), d);
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(list: Vec<NewResource>) -> Vec<Resource> {
        list.into_iter()
            .enumerate()
            .map(|(i, (kind, name, body))| Resource {
                kind,
                name,
                body,
                version: 1,
                updated_at: 0,
                position: i as i64,
            })
            .collect()
    }

    #[test]
    fn a_document_round_trips_in_order() {
        let doc = json!({
            "server": {"listeners": [{"address": "127.0.0.1:8080"}]},
            "upstreams": {"b": {"targets": []}, "a": {"targets": []}},
            "routes": [{"name": "z", "upstream": "a", "service": "s"}, {"name": "y", "upstream": "b"}],
            "services": [{"name": "s", "subscription": "manual"}],
            "subscriptions": [{"application": "c", "service": "s", "status": "pending"}],
            "default_policies": [{"key_auth": {}}],
            "ai": {"timeout": "30s", "providers": {"p": {"kind": "openai"}},
                   "budgets": [{"consumer": "c", "usd_per_day": 1.0}, {"consumer": "d", "usd_per_day": 2.0}]},
        });
        let (list, had_server) = to_resources(&doc).unwrap();
        assert!(had_server);
        let back = from_resources(&stored(list));
        let mut expected = doc.clone();
        expected.as_object_mut().unwrap().remove("server");
        assert_eq!(back, expected);
        assert_eq!(back["routes"][0]["name"], "z", "routes keep their order");
    }

    #[test]
    fn what_cannot_be_stored_is_refused() {
        assert!(to_resources(&json!({"routes": [{"upstream": "a"}]}))
            .unwrap_err()
            .contains("routes[0]"));
        assert!(to_resources(&json!({"routes": [{"name": "a"}, {"name": "a"}]}))
            .unwrap_err()
            .contains("second"));
        assert!(to_resources(&json!({"listeners": []}))
            .unwrap_err()
            .contains("listeners"));
        assert!(to_resources(&json!([1])).is_err());
    }
}
