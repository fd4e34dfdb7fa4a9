//! Secrets on their way into the store and out of it.
//!
//! **In.** The admin API and `portico import` accept a secret in the clear,
//! `{value: "sk-..."}`, wherever the config takes one
//! ([`crate::config::secret_slots`]). Before anything is compiled or written
//! it is sealed ([`seal_resource`], [`seal_document`]): a provider key, a
//! JWT HMAC secret or an introspection client secret becomes
//! `{sealed: "v1:...", fingerprint: "sha256:..."}` under the process's
//! secrets key; a consumer API key, which the gateway only compares,
//! becomes its `sha256`. So the database, its WAL, the audit log and the
//! last good config in `state_dir` hold ciphertext or digests only.
//!
//! **Out.** The admin API never shows a sealed secret's ciphertext, nor a
//! clear one: resources, lists, the audit log and the exported config show
//! `{sealed: "<redacted>", fingerprint: "sha256:..."}` ([`redact_resource`],
//! [`redact_document`]). `portico export`, which needs access to the store
//! itself, keeps the ciphertext, so a backup imports again into a store
//! served with the same key.
//!
//! **Unchanged secrets.** A client that reads a resource and writes it back
//! sends the redacted form. A redacted secret whose fingerprint is one of
//! the resource's stored secrets keeps that stored ciphertext (in any place
//! of the resource, so keys may be reordered); one whose fingerprint
//! matches none is refused (422, with its path), since there is nothing to
//! keep. An import cannot keep a redacted secret: it names no resource.

use crate::config::sealed::{self, SecretsKey, REDACTED};
use crate::config::secret_slots::{self, Slot, Visit};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A secret that cannot be stored: its path (within the body) and why.
pub type SecretProblem = (String, String);

/// Visits the secrets of a resource of `kind` (paths within its body).
fn visit(kind: &str, body: &mut Value, f: &mut Visit) {
    match kind {
        "ai_provider" => secret_slots::provider("", body, f),
        "route" | "prompt_api" => secret_slots::with_policies("", body, f),
        "consumer" => secret_slots::consumer("", body, f),
        // A release's content is a small document: its routes' policies.
        "release" => {
            if let Some(content) = body.get_mut("content") {
                secret_slots::document(content, f);
            }
        }
        _ => {}
    }
}

/// Seals the clear secrets of `body`, a resource of `kind`, under `key`
/// (without one, a clear secret is a problem); a redacted secret keeps the
/// one of `stored` (the resource as stored now) with its fingerprint.
/// Every problem is returned, located within the body.
pub fn seal_resource(
    kind: &str,
    body: &mut Value,
    stored: Option<&Value>,
    key: Option<&SecretsKey>,
) -> Result<(), Vec<SecretProblem>> {
    let mut kept = HashMap::new();
    if let Some(stored) = stored {
        let mut stored = stored.clone();
        visit(kind, &mut stored, &mut |_, slot, v| {
            let fp = v.get("fingerprint").and_then(Value::as_str).map(str::to_string);
            let real = v.get("sealed").and_then(Value::as_str).is_some_and(|s| s != REDACTED);
            if let (Slot::Secret, Some(fp), true) = (slot, fp, real) {
                kept.insert(fp, v.clone());
            }
        });
    }
    let mut problems = Vec::new();
    visit(kind, body, &mut |path, slot, v| {
        if let Err(e) = seal_one(slot, v, Some(&kept), key) {
            problems.push((path.to_string(), e));
        }
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Seals the clear secrets of a whole document (an import); paths are the
/// document's.
pub fn seal_document(doc: &mut Value, key: &SecretsKey) -> Result<(), Vec<SecretProblem>> {
    let mut problems = Vec::new();
    secret_slots::document(doc, &mut |path, slot, v| {
        if let Err(e) = seal_one(slot, v, None, Some(key)) {
            problems.push((path.to_string(), e));
        }
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Whether `doc` holds any secret in the clear or sealed: what needs the
/// secrets key to import.
pub fn needs_key(doc: &Value) -> bool {
    let mut doc = doc.clone();
    let mut found = false;
    secret_slots::document(&mut doc, &mut |_, _, v| {
        found |= v.get("value").is_some() || v.get("sealed").is_some();
    });
    found
}

/// One place: a clear secret sealed (or digested), a redacted one replaced
/// by the kept one it names (`kept`: None when nothing can be kept), a
/// sealed one without its fingerprint given one.
fn seal_one(
    slot: Slot,
    v: &mut Value,
    kept: Option<&HashMap<String, Value>>,
    key: Option<&SecretsKey>,
) -> Result<(), String> {
    let Some(o) = v.as_object_mut() else {
        return Ok(()); // not a secret's shape: the compiler says so
    };
    if let Some(clear) = o.remove("value") {
        let clear = clear.as_str().ok_or("`value` must be a string")?;
        if clear.is_empty() {
            return Err("the secret is empty".into());
        }
        match slot {
            Slot::Secret => {
                let key = key.ok_or(
                    "no secrets key to seal it with: set PORTICO_SECRETS_KEY or server.secrets_key_file \
                     (store mode writes state_dir/secrets-key at its first start; see the log)",
                )?;
                o.insert("sealed".into(), Value::String(sealed::seal(key, clear)?));
                o.insert("fingerprint".into(), Value::String(sealed::fingerprint(clear)));
            }
            Slot::ApiKey => {
                o.insert("sha256".into(), Value::String(hex::encode(Sha256::digest(clear))));
            }
        }
        return Ok(());
    }
    let Some(blob) = o.get("sealed").and_then(Value::as_str).map(str::to_string) else {
        return Ok(());
    };
    let fp = o.get("fingerprint").and_then(Value::as_str).map(str::to_string);
    if blob == REDACTED {
        let fp = fp.ok_or("a redacted secret needs the `fingerprint` it was shown with")?;
        let Some(kept) = kept else {
            return Err(format!(
                "a redacted secret ({fp}) cannot be imported: export with `portico export`, \
                 which keeps sealed secrets, or give the secret as `value`, `env` or `file`"
            ));
        };
        *v = kept.get(&fp).cloned().ok_or_else(|| {
            format!("no stored secret of this resource has the fingerprint {fp}: give the secret as `value`")
        })?;
    } else if fp.is_none() {
        // Sealed elsewhere (by hand, an older export): name it, if it opens
        // here; if it does not, compiling says so in its place.
        if let Some(Ok(clear)) = key.map(|k| sealed::open(k, &blob)) {
            o.insert("fingerprint".into(), Value::String(sealed::fingerprint(&clear)));
        }
    }
    Ok(())
}

/// The redacted form of one place.
fn redact_one(_: &str, _: Slot, v: &mut Value) {
    let Some(o) = v.as_object_mut() else {
        return;
    };
    let fp = match (o.get("sealed"), o.get("value")) {
        (Some(_), _) => o.get("fingerprint").cloned(),
        (None, Some(clear)) => clear.as_str().map(|c| Value::String(sealed::fingerprint(c))),
        (None, None) => return,
    };
    let mut shown = Map::new();
    shown.insert("sealed".into(), Value::String(REDACTED.into()));
    if let Some(fp) = fp {
        shown.insert("fingerprint".into(), fp);
    }
    *o = shown;
}

/// `body` (a resource of `kind`) as the admin API shows it: sealed (and
/// any clear) secrets as their fingerprint only.
pub fn redact_resource(kind: &str, body: &mut Value) {
    visit(kind, body, &mut redact_one);
}

/// A whole document as the admin API shows it ([`redact_resource`]).
pub fn redact_document(doc: &mut Value) {
    secret_slots::document(doc, &mut redact_one);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SecretsKey {
        SecretsKey::from_bytes([3; 32])
    }

    #[test]
    fn clear_secrets_are_sealed_and_shown_redacted() {
        let mut body = json!({"kind": "openai", "keys": [{"value": "sk-test-SECRET123"}, {"env": "K"}]});
        seal_resource("ai_provider", &mut body, None, Some(&key())).unwrap();
        let text = body.to_string();
        assert!(!text.contains("SECRET123"), "{text}");
        let sealed_key = &body["keys"][0];
        assert_eq!(sealed_key["fingerprint"], sealed::fingerprint("sk-test-SECRET123"));
        let blob = sealed_key["sealed"].as_str().unwrap();
        assert_eq!(sealed::open(&key(), blob).unwrap(), "sk-test-SECRET123");
        assert_eq!(body["keys"][1], json!({"env": "K"}));
        let mut shown = body.clone();
        redact_resource("ai_provider", &mut shown);
        assert_eq!(
            shown["keys"][0],
            json!({"sealed": REDACTED, "fingerprint": sealed::fingerprint("sk-test-SECRET123")})
        );
        assert!(!shown.to_string().contains("v1:"));
    }

    #[test]
    fn a_redacted_secret_written_back_keeps_the_stored_one() {
        let mut stored = json!({"keys": [{"value": "sk-a"}, {"value": "sk-b"}]});
        seal_resource("ai_provider", &mut stored, None, Some(&key())).unwrap();
        let mut shown = stored.clone();
        redact_resource("ai_provider", &mut shown);
        // Written back reordered, with a new key beside them.
        let mut back = json!({"keys": [shown["keys"][1], shown["keys"][0], {"value": "sk-c"}]});
        seal_resource("ai_provider", &mut back, Some(&stored), Some(&key())).unwrap();
        assert_eq!(back["keys"][0], stored["keys"][1]);
        assert_eq!(back["keys"][1], stored["keys"][0]);
        assert_eq!(back["keys"][2]["fingerprint"], sealed::fingerprint("sk-c"));
        // A fingerprint the resource does not hold: refused, with its place.
        let mut wrong = json!({"keys": [{"sealed": REDACTED, "fingerprint": sealed::fingerprint("sk-z")}]});
        let e = seal_resource("ai_provider", &mut wrong, Some(&stored), Some(&key())).unwrap_err();
        assert_eq!(e[0].0, "keys[0]");
        assert!(e[0].1.contains("fingerprint"), "{e:?}");
        // An import has nothing to keep.
        let mut doc = json!({"ai": {"providers": {"p": shown}}});
        let e = seal_document(&mut doc, &key()).unwrap_err();
        assert_eq!(e[0].0, "ai.providers.p.keys[0]");
        assert!(e[0].1.contains("portico export"), "{e:?}");
    }

    #[test]
    fn consumer_keys_are_kept_as_digests_and_policy_secrets_sealed() {
        let mut doc = json!({
            "consumers": [{"name": "c", "credentials": {"api_keys": [{"value": "test"}]}}],
            "routes": [{"name": "r", "policies": [{"oauth2_introspection": {"client_secret": {"value": "cs"}}}]}],
        });
        assert!(needs_key(&doc));
        seal_document(&mut doc, &key()).unwrap();
        assert_eq!(
            doc["consumers"][0]["credentials"]["api_keys"][0],
            json!({"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
        );
        let secret = &doc["routes"][0]["policies"][0]["oauth2_introspection"]["client_secret"];
        assert_eq!(secret["fingerprint"], sealed::fingerprint("cs"));
        let mut shown = doc.clone();
        redact_document(&mut shown);
        assert!(!shown.to_string().contains("v1:"));
        assert!(!needs_key(&json!({"routes": [{"name": "r"}]})));
    }

    #[test]
    fn a_sealed_secret_without_fingerprint_is_named_when_it_opens() {
        let blob = sealed::seal(&key(), "sk-x").unwrap();
        let mut body = json!({"keys": [{"sealed": blob}, {"sealed": "v1:AAAA"}]});
        seal_resource("ai_provider", &mut body, None, Some(&key())).unwrap();
        assert_eq!(body["keys"][0]["fingerprint"], sealed::fingerprint("sk-x"));
        assert!(body["keys"][1].get("fingerprint").is_none());
        let e = seal_resource("ai_provider", &mut json!({"keys": [{"value": 1}]}), None, Some(&key())).unwrap_err();
        assert!(e[0].1.contains("string"));
        let e = seal_resource("ai_provider", &mut json!({"keys": [{"value": "k"}]}), None, None).unwrap_err();
        assert!(e[0].1.contains("no secrets key"), "{e:?}");
    }
}
