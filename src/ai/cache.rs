//! The AI response cache: off by default, per route (`ai: {cache: {...}}`).
//!
//! Exact match only. The key is a SHA-256 of the normalised request: the
//! API and endpoint, whether it streams, the (provider, model) pairs the
//! model resolves to (so two names of one model share entries and a changed
//! alias does not serve stale ones), and every other field of the body with
//! its keys sorted, less those that do not change the answer (`user`,
//! `metadata`, `store`, `service_tier`, ...; `stream_options` counts, since
//! `include_usage` adds a chunk to a stream); with the
//! default `scope: consumer` the consumer is part of the key too. Semantic
//! caching (answering a *similar* question with a stored answer) is not
//! offered on purpose: two prompts that embed close together can need
//! different answers ("cancel my order" and "don't cancel my order"), and
//! a gateway cannot tell.
//!
//! A request is cached only when its answer is meant to repeat: an explicit
//! `temperature: 0` (absent means the provider's default of 1), unless the
//! route sets `any_temperature: true`; embeddings always; never a Responses
//! call that continues stored state (`previous_response_id`). A streamed
//! answer is stored as the events the client got and replayed as a stream.
//!
//! A hit is answered with `x-cache: HIT` and costs nothing: no provider
//! call, no tokens or cost charged, no budget touched (the access log's
//! `ai.cache` says `hit`); the caller's model access is checked as for any
//! call. Entries live for `ttl` and within `max_size` (TinyUFO, Pingora's
//! lock-free weight-bounded cache, as the HTTP response cache uses).

use super::inbound::Api;
use super::registry::Target;
use crate::config::ai::{AiCacheConfig, CacheScope};
use crate::telemetry::metrics::METRICS;
use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyufo::TinyUfo;

/// Body fields that do not change an answer.
const IGNORED: &[&str] = &[
    "user",
    "metadata",
    "store",
    "service_tier",
    "stream",
    "safety_identifier",
    "prompt_cache_key",
    "model",
];

/// Bookkeeping cost charged per entry.
const ENTRY_OVERHEAD: usize = 256;

/// A stored answer.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The full key: TinyUFO keeps only a 64-bit hash of it.
    key: [u8; 32],
    expires: Instant,
    /// The provider and model that answered.
    pub provider: String,
    pub model: String,
    pub body: Stored,
}

/// A whole answer (its content type and body), or a stream's events.
#[derive(Debug)]
pub(crate) enum Stored {
    Whole { content_type: HeaderValue, body: Bytes },
    Stream(Vec<Bytes>),
}

impl Stored {
    fn weight(&self) -> usize {
        match self {
            Stored::Whole { body, .. } => body.len(),
            Stored::Stream(events) => events.iter().map(|e| e.len() + 16).sum(),
        }
    }
}

/// One route's AI cache.
pub struct AiCache {
    store: TinyUfo<[u8; 32], Arc<Entry>>,
    /// Bytes per TinyUFO weight unit (weights are u16).
    unit: usize,
    limit_units: usize,
    /// Largest answer stored.
    pub max_entry_size: usize,
    ttl: Duration,
    scope: CacheScope,
    any_temperature: bool,
}

impl std::fmt::Debug for AiCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Sorted-key JSON with whole numbers written alike, so equal bodies give
/// equal bytes.
fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for k in keys {
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
                out.push(b',');
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for i in items {
                canonical(i, out);
                out.push(b',');
            }
            out.push(b']');
        }
        // 0 and 0.0 are one temperature.
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => {
                out.extend_from_slice((f as i64).to_string().as_bytes())
            }
            _ => out.extend_from_slice(n.to_string().as_bytes()),
        },
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// What a lookup is about.
pub(crate) struct Request<'a> {
    pub api: Api,
    /// `chat` or `embeddings`, for the key.
    pub endpoint: &'static str,
    pub stream: bool,
    pub consumer: &'a str,
    pub targets: &'a [Target],
    /// The client's body.
    pub body: &'a Value,
}

impl AiCache {
    pub(crate) fn new(cfg: &AiCacheConfig) -> AiCache {
        let max_size = usize::try_from(cfg.max_size.0).unwrap_or(usize::MAX);
        let max_entry_size = usize::try_from(cfg.max_entry_size.0).unwrap_or(usize::MAX);
        let unit = (max_entry_size + ENTRY_OVERHEAD).div_ceil(usize::from(u16::MAX)).max(1);
        AiCache {
            store: TinyUfo::new(max_size / unit, (max_size / (16 * 1024)).clamp(16, 1 << 16)),
            unit,
            limit_units: max_size / unit,
            max_entry_size,
            ttl: cfg.ttl.0,
            scope: cfg.scope,
            any_temperature: cfg.any_temperature,
        }
    }

    /// The key of a request whose answer may be cached; None when it may not.
    pub(crate) fn key(&self, r: &Request<'_>) -> Option<[u8; 32]> {
        let body = r.body.as_object()?;
        let deterministic = r.endpoint == "embeddings"
            || self.any_temperature
            || body.get("temperature").and_then(Value::as_f64) == Some(0.0);
        if !deterministic || body.get("previous_response_id").is_some_and(|v| !v.is_null()) {
            return None;
        }
        let mut h = Sha256::new();
        h.update(format!("{:?}\0{}\0{}\0", r.api, r.endpoint, r.stream));
        if self.scope == CacheScope::Consumer {
            h.update(r.consumer);
        }
        h.update([0]);
        let mut targets: Vec<(&str, &str)> = r
            .targets
            .iter()
            .map(|t| (t.provider.name.as_str(), t.model.as_str()))
            .collect();
        targets.sort_unstable();
        for (p, m) in targets {
            h.update(p);
            h.update([0]);
            h.update(m);
            h.update([0]);
        }
        let kept: serde_json::Map<String, Value> = body
            .iter()
            .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut bytes = Vec::new();
        canonical(&Value::Object(kept), &mut bytes);
        h.update(&bytes);
        Some(h.finalize().into())
    }

    /// The fresh entry for `key`, counted as a hit or a miss.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Arc<Entry>> {
        let hit = self
            .store
            .get(key)
            .filter(|e| e.key == *key && e.expires > Instant::now());
        let result = if hit.is_some() { "hit" } else { "miss" };
        METRICS.ai_cache_requests_total.with_label_values(&[result]).inc();
        hit
    }

    /// Stores an answer, unless it is larger than `max_entry_size`.
    pub(crate) fn put(&self, key: [u8; 32], provider: &str, model: &str, body: Stored) {
        let bytes = body.weight();
        if bytes > self.max_entry_size {
            return;
        }
        let units = (bytes + ENTRY_OVERHEAD).div_ceil(self.unit).max(1);
        let Some(units) = u16::try_from(units)
            .ok()
            .filter(|&u| usize::from(u) <= self.limit_units)
        else {
            return;
        };
        let entry = Entry {
            key,
            expires: Instant::now() + self.ttl,
            provider: provider.to_string(),
            model: model.to_string(),
            body,
        };
        let _evicted = self.store.put(key, Arc::new(entry), units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cache(any_temperature: bool, scope: CacheScope) -> AiCache {
        let mut cfg: AiCacheConfig = serde_yaml::from_str("{}").unwrap();
        cfg.any_temperature = any_temperature;
        cfg.scope = scope;
        AiCache::new(&cfg)
    }

    fn req<'a>(body: &'a Value, consumer: &'a str) -> Request<'a> {
        Request {
            api: Api::Chat,
            endpoint: "chat",
            stream: false,
            consumer,
            targets: &[],
            body,
        }
    }

    #[test]
    fn keys_are_exact_and_ignore_what_does_not_change_the_answer() {
        let c = cache(false, CacheScope::Consumer);
        let a = json!({"model": "x", "temperature": 0, "messages": [{"role": "user", "content": "hi"}], "user": "u1"});
        let b =
            json!({"user": "u2", "messages": [{"content": "hi", "role": "user"}], "temperature": 0.0, "model": "y"});
        assert_eq!(c.key(&req(&a, "c")), c.key(&req(&b, "c")));
        assert_ne!(c.key(&req(&a, "c")), c.key(&req(&a, "d")), "per consumer");
        let other = json!({"temperature": 0, "messages": [{"role": "user", "content": "hi!"}]});
        assert_ne!(c.key(&req(&a, "c")), c.key(&req(&other, "c")));
        assert!(
            c.key(&req(&json!({"messages": []}), "c")).is_none(),
            "default temperature"
        );
        assert!(c.key(&req(&json!({"temperature": 0.7}), "c")).is_none());
        assert!(cache(true, CacheScope::Shared)
            .key(&req(&json!({"temperature": 0.7}), "c"))
            .is_some());
        let shared = cache(false, CacheScope::Shared);
        assert_eq!(shared.key(&req(&a, "c")), shared.key(&req(&a, "d")));
        let usage = json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}],
                           "stream_options": {"include_usage": true}});
        assert_ne!(
            c.key(&req(&a, "c")),
            c.key(&req(&usage, "c")),
            "a stream with its usage chunk is another answer"
        );
        let stateful = json!({"temperature": 0, "previous_response_id": "resp_1"});
        assert!(c.key(&req(&stateful, "c")).is_none());
    }

    #[test]
    fn entries_expire_and_keep_their_full_key() {
        let c = cache(false, CacheScope::Shared);
        let body = json!({"temperature": 0});
        let key = c.key(&req(&body, "c")).unwrap();
        c.put(key, "p", "m", Stored::Stream(vec![Bytes::from_static(b"data: x\n\n")]));
        assert_eq!(c.get(&key).map(|e| e.provider.clone()).as_deref(), Some("p"));
        let mut other = key;
        other[31] ^= 1;
        assert!(c.get(&other).is_none());
        let big = Bytes::from(vec![0u8; c.max_entry_size + 1]);
        c.put(
            other,
            "p",
            "m",
            Stored::Whole {
                content_type: HeaderValue::from_static("a/b"),
                body: big,
            },
        );
        assert!(c.get(&other).is_none(), "too large to store");
    }
}
