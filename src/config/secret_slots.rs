//! Where secrets sit in a config, walked on its JSON form (the shape the
//! store keeps and the admin API takes): the one list of places that the
//! check refusing clear secrets in a file, sealing on the way into the store
//! and redacting on the way out all use, so they cannot disagree.
//!
//! | place | holds |
//! |---|---|
//! | `ai.providers.NAME.keys[]` | [`Slot::Secret`] |
//! | `...policies[].jwt.keys[].secret` (routes, prompt APIs, default policies) | [`Slot::Secret`] |
//! | `...policies[].oauth2_introspection.client_secret` | [`Slot::Secret`] |
//! | `consumers[].credentials.api_keys[]` | [`Slot::ApiKey`] |

use serde_json::Value;

/// What a place holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A [`super::Secret`]: the gateway needs it back in the clear.
    Secret,
    /// A consumer's API key: the gateway only compares it, so a digest will do.
    ApiKey,
}

/// Called with each place's path (`ai.providers.oai.keys[0]`), what it
/// holds, and its value.
pub(crate) type Visit<'a> = dyn FnMut(&str, Slot, &mut Value) + 'a;

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn each(prefix: &str, list: Option<&mut Value>, slot: Slot, f: &mut Visit) {
    if let Some(Value::Array(items)) = list {
        for (i, item) in items.iter_mut().enumerate() {
            f(&format!("{prefix}[{i}]"), slot, item);
        }
    }
}

/// The secrets of a whole document (a config file's shape).
pub(crate) fn document(doc: &mut Value, f: &mut Visit) {
    if let Some(Value::Object(providers)) = doc.pointer_mut("/ai/providers") {
        for (name, body) in providers.iter_mut() {
            provider(&format!("ai.providers.{name}"), body, f);
        }
    }
    for section in ["routes", "prompt_apis"] {
        if let Some(Value::Array(items)) = doc.get_mut(section) {
            for (i, item) in items.iter_mut().enumerate() {
                with_policies(&format!("{section}[{i}]"), item, f);
            }
        }
    }
    policies("default_policies", doc.get_mut("default_policies"), f);
    if let Some(Value::Array(items)) = doc.get_mut("consumers") {
        for (i, item) in items.iter_mut().enumerate() {
            consumer(&format!("consumers[{i}]"), item, f);
        }
    }
}

/// The keys of an AI provider (`ai.providers.NAME`).
pub(crate) fn provider(prefix: &str, body: &mut Value, f: &mut Visit) {
    each(&join(prefix, "keys"), body.get_mut("keys"), Slot::Secret, f);
}

/// The secrets in the `policies` of a route or a prompt API.
pub(crate) fn with_policies(prefix: &str, body: &mut Value, f: &mut Visit) {
    policies(&join(prefix, "policies"), body.get_mut("policies"), f);
}

fn policies(prefix: &str, list: Option<&mut Value>, f: &mut Visit) {
    let Some(Value::Array(steps)) = list else {
        return;
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let at = format!("{prefix}[{i}]");
        if let Some(jwt) = step.get_mut("jwt") {
            if let Some(Value::Array(keys)) = jwt.get_mut("keys") {
                for (j, key) in keys.iter_mut().enumerate() {
                    if let Some(secret) = key.get_mut("secret") {
                        f(&format!("{at}.jwt.keys[{j}].secret"), Slot::Secret, secret);
                    }
                }
            }
        }
        if let Some(secret) = step.pointer_mut("/oauth2_introspection/client_secret") {
            f(
                &format!("{at}.oauth2_introspection.client_secret"),
                Slot::Secret,
                secret,
            );
        }
    }
}

/// The API keys of a consumer.
pub(crate) fn consumer(prefix: &str, body: &mut Value, f: &mut Visit) {
    each(
        &join(prefix, "credentials.api_keys"),
        body.pointer_mut("/credentials/api_keys"),
        Slot::ApiKey,
        f,
    );
}

/// The paths of the secrets written in the clear (`value`) in `doc`.
pub(crate) fn clear(doc: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    document(doc, &mut |path, _, v| {
        if v.get("value").is_some() {
            found.push(path.to_string());
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_place_is_found() {
        let s = json!({"value": "x"});
        let mut doc = json!({
            "ai": {"providers": {"oai": {"kind": "openai", "keys": [s, {"env": "K"}]}}},
            "routes": [{"name": "r", "policies": [
                {"jwt": {"keys": [{"alg": "HS256", "secret": s}, {"alg": "RS256", "public_key": "..."}]}},
                {"oauth2_introspection": {"client_secret": s}}]}],
            "prompt_apis": [{"name": "p", "policies": [{"oauth2_introspection": {"client_secret": s}}]}],
            "default_policies": [{"jwt": {"keys": [{"secret": s}]}}],
            "consumers": [{"name": "c", "credentials": {"api_keys": [s, {"sha256": "00"}]}}],
        });
        let mut seen = Vec::new();
        document(&mut doc, &mut |path, slot, _| seen.push((path.to_string(), slot)));
        let secret = |p: &str| (p.to_string(), Slot::Secret);
        assert_eq!(
            seen,
            [
                secret("ai.providers.oai.keys[0]"),
                secret("ai.providers.oai.keys[1]"),
                secret("routes[0].policies[0].jwt.keys[0].secret"),
                secret("routes[0].policies[1].oauth2_introspection.client_secret"),
                secret("prompt_apis[0].policies[0].oauth2_introspection.client_secret"),
                secret("default_policies[0].jwt.keys[0].secret"),
                ("consumers[0].credentials.api_keys[0]".into(), Slot::ApiKey),
                ("consumers[0].credentials.api_keys[1]".into(), Slot::ApiKey),
            ]
        );
        assert_eq!(clear(&mut doc).len(), 6);
    }
}
