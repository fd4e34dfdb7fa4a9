//! The compiled `ai:` config: providers with their keys and cool-down state,
//! model aliases with their targets, prices and budgets. Built at config load
//! and held by the Snapshot; a request only reads it.

use super::access::Access;
use super::budget::Budgets;
use super::catalog::{self, Auth, Wire};
use super::price::Prices;
use crate::config::ai::{AiConfig, PriceConfig, Strategy, Unpriced};
use crate::config::{ConsumerConfig, Issues};
use http::{HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How many per-model cool-down slots a key has; models that share a slot
/// (by hash) cool down together, which only ever errs on the cautious side.
const MODEL_SLOTS: usize = 16;

/// One API key of a provider. The secret never leaves this struct except
/// into the provider request's auth header.
///
/// Providers limit per key and per model, so a 429 cools the key for that
/// model only; a 401/403 (the key itself refused) takes the whole key out.
pub struct Key {
    secret: String,
    /// `provider.keys[i]`, for logs and metrics.
    pub label: String,
    /// Until when the key as a whole is out: its provider refused it.
    refused_until_ms: AtomicU64,
    /// Until when the key is out for the models of each slot: a 429.
    model_until_ms: [AtomicU64; MODEL_SLOTS],
}

/// The cool-down slot of `model`, computed once per target.
fn model_slot(model: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    model.hash(&mut h);
    (h.finish() as usize) % MODEL_SLOTS
}

impl Key {
    fn new(secret: String, label: String) -> Key {
        Key {
            secret,
            label,
            refused_until_ms: AtomicU64::new(0),
            model_until_ms: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// True while the provider refused this key (401/403).
    pub fn refused(&self, now_ms: u64) -> bool {
        self.refused_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// True while the key may not be used for the model of `target`.
    pub fn cooling(&self, now_ms: u64, target: &Target) -> bool {
        self.cooling_for(now_ms, target) > 0
    }

    /// Milliseconds until the key may be used again for the model of `target`.
    pub fn cooling_for(&self, now_ms: u64, target: &Target) -> u64 {
        let refused = self.refused_until_ms.load(Ordering::Relaxed);
        let limited = self.model_until_ms[target.slot].load(Ordering::Relaxed);
        refused.max(limited).saturating_sub(now_ms)
    }

    /// A 429 for the model of `target`: the key rests for `d` for that model.
    pub fn cool_model(&self, now_ms: u64, target: &Target, d: Duration) {
        let until = now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.model_until_ms[target.slot].fetch_max(until, Ordering::Relaxed);
    }

    /// A 401/403: the whole key rests for `d`.
    pub fn refuse(&self, now_ms: u64, d: Duration) {
        let until = now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.refused_until_ms.fetch_max(until, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    /// The config's `kind` (for prices).
    pub kind: String,
    pub wire: Wire,
    pub auth: Auth,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_version: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub keys: Vec<Key>,
    /// Rotates the first key tried, to spread calls over keys.
    next_key: AtomicUsize,
}

impl Provider {
    /// Keys to try for one call of `target`: rotated, cooling ones excluded.
    pub fn keys_to_try(&self, now_ms: u64, target: &Target) -> Vec<Option<&Key>> {
        if self.keys.is_empty() {
            return vec![None];
        }
        let start = self.next_key.fetch_add(1, Ordering::Relaxed);
        (0..self.keys.len())
            .map(|i| &self.keys[(start + i) % self.keys.len()])
            .filter(|k| !k.cooling(now_ms, target))
            .map(Some)
            .collect()
    }
}

/// One place a model alias can be served.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    pub weight: u32,
    /// The model's price; None when the price table does not name it.
    pub price: Option<PriceConfig>,
    /// The model's cool-down slot in each key.
    slot: usize,
}

impl Target {
    fn new(provider: Arc<Provider>, model: String, weight: u32, prices: &Prices) -> Target {
        let slot = model_slot(&model);
        let price = prices.price(&provider.name, &provider.kind, &model);
        Target {
            provider,
            model,
            weight,
            price,
            slot,
        }
    }
}

#[derive(Debug)]
pub struct ModelRoute {
    pub strategy: Strategy,
    pub targets: Vec<Target>,
}

#[derive(Debug)]
pub struct AiRegistry {
    pub providers: BTreeMap<String, Arc<Provider>>,
    pub models: BTreeMap<String, ModelRoute>,
    pub prices: Prices,
    pub budgets: Budgets,
    /// Models granted to consumers and groups.
    pub(crate) access: Access,
    /// `ai.unpriced`; None: refused where a USD budget applies.
    pub unpriced: Option<Unpriced>,
    /// How long a stream is read on after its client left.
    pub drain_after_disconnect: Duration,
    pub timeout: Duration,
    pub key_cooldown: Duration,
    pub max_body: usize,
    pub client: reqwest::Client,
    /// Removes provider keys from provider text before anyone sees it.
    pub(crate) scrubber: super::scrub::Scrubber,
    draw: AtomicU64,
}

impl AiRegistry {
    pub fn build(
        cfg: &AiConfig,
        consumers: &[ConsumerConfig],
        base_dir: &Path,
        issues: &mut Issues,
        previous: Option<&AiRegistry>,
    ) -> AiRegistry {
        let mut providers = BTreeMap::new();
        for (name, p) in &cfg.providers {
            let path = format!("ai.providers.{name}");
            let Some(kind) = catalog::lookup(&p.kind) else {
                issues.add(
                    format!("{path}.kind"),
                    format!(
                        "unknown provider kind {:?}; use one of {}",
                        p.kind,
                        catalog::names().join(", ")
                    ),
                );
                continue;
            };
            let base_url = match (&p.base_url, kind.base_url) {
                (Some(u), _) => u.trim_end_matches('/').to_string(),
                (None, Some(u)) => u.to_string(),
                (None, None) => {
                    issues.add(format!("{path}.base_url"), format!("required for kind {}", p.kind));
                    continue;
                }
            };
            if reqwest::Url::parse(&base_url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                issues.add(
                    format!("{path}.base_url"),
                    format!("{base_url:?} is not an http(s) URL"),
                );
                continue;
            }
            if kind.wire == Wire::AzureOpenAi && p.api_version.is_none() {
                issues.add(
                    format!("{path}.api_version"),
                    "required for azure_openai, e.g. 2024-10-21",
                );
            }
            let mut keys = Vec::new();
            for (i, k) in p.keys.iter().enumerate() {
                match k.read(base_dir) {
                    Ok(secret) => keys.push(Key::new(secret, format!("{name}.keys[{i}]"))),
                    Err(e) => issues.add(format!("{path}.keys[{i}]"), e),
                }
            }
            let mut headers = Vec::new();
            for (k, v) in &p.headers {
                match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                    (Ok(n), Ok(v)) => headers.push((n, v)),
                    _ => issues.add(format!("{path}.headers.{k}"), "invalid header"),
                }
            }
            providers.insert(
                name.clone(),
                Arc::new(Provider {
                    name: name.clone(),
                    kind: p.kind.clone(),
                    wire: kind.wire,
                    auth: kind.auth,
                    base_url,
                    api_version: p.api_version.clone(),
                    headers,
                    keys,
                    next_key: AtomicUsize::new(0),
                }),
            );
        }
        let prices = Prices::load(cfg, base_dir, issues);
        let mut models = BTreeMap::new();
        for (alias, m) in &cfg.models {
            let path = format!("ai.models.{alias}");
            if m.targets.is_empty() {
                issues.add(format!("{path}.targets"), "give at least one target");
            }
            let mut targets = Vec::new();
            for (i, t) in m.targets.iter().enumerate() {
                match providers.get(&t.provider) {
                    Some(p) if p.wire.model_in_url() && !catalog::url_safe_model(p.wire, &t.model) => issues.add(
                        format!("{path}.targets[{i}].model"),
                        format!(
                            "{:?} cannot go into a {} URL: use letters, digits, '.', '-' and '_'",
                            t.model, p.kind
                        ),
                    ),
                    Some(p) => targets.push(Target::new(Arc::clone(p), t.model.clone(), t.weight, &prices)),
                    None if cfg.providers.contains_key(&t.provider) => {}
                    None => issues.add(
                        format!("{path}.targets[{i}].provider"),
                        format!("no provider named {:?}", t.provider),
                    ),
                }
            }
            models.insert(
                alias.clone(),
                ModelRoute {
                    strategy: m.strategy,
                    targets,
                },
            );
        }
        let targets_of = |name: &str| -> Option<Vec<(String, String)>> {
            if let Some(route) = models.get(name) {
                let route: &ModelRoute = route;
                return Some(
                    route
                        .targets
                        .iter()
                        .map(|t| (t.provider.name.clone(), t.model.clone()))
                        .collect(),
                );
            }
            let (provider, model) = name.split_once('/')?;
            (providers.contains_key(provider) && !model.is_empty())
                .then(|| vec![(provider.to_string(), model.to_string())])
        };
        let budgets = Budgets::build(&cfg.budgets, previous.map(|p| &p.budgets), &targets_of, issues);
        let known = |name: &str| match name.strip_suffix("/*") {
            Some(provider) => providers.contains_key(provider),
            None => targets_of(name).is_some(),
        };
        let access = Access::build(&cfg.access, consumers, &known, issues);
        let client = previous.map(|p| p.client.clone()).unwrap_or_else(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(90))
                .no_proxy()
                .build()
                .unwrap_or_default()
        });
        if !providers.is_empty() {
            super::estimate::warm_up();
        }
        let scrubber = super::scrub::Scrubber::new(providers.values().flat_map(|p| p.keys.iter().map(|k| k.secret())));
        AiRegistry {
            scrubber,
            providers,
            models,
            prices,
            budgets,
            access,
            unpriced: cfg.unpriced,
            drain_after_disconnect: cfg.drain_after_disconnect.0,
            timeout: cfg.timeout.0,
            key_cooldown: cfg.key_cooldown.0,
            max_body: usize::try_from(cfg.max_request_body.0).unwrap_or(usize::MAX),
            client,
            draw: AtomicU64::new(0),
        }
    }

    /// The targets for a requested model, in the order to try them: an alias,
    /// or `provider/model`.
    pub fn resolve(&self, requested: &str) -> Option<Vec<Target>> {
        if let Some(route) = self.models.get(requested) {
            let mut targets = route.targets.clone();
            if route.strategy == Strategy::Weighted && targets.len() > 1 {
                let total: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
                if total > 0 {
                    // A cheap, well-spread draw: a counter through a 64-bit mix.
                    let n = self.draw.fetch_add(1, Ordering::Relaxed);
                    let mut pick = mix(n) % total;
                    let first = targets
                        .iter()
                        .position(|t| {
                            let w = u64::from(t.weight);
                            if pick < w {
                                true
                            } else {
                                pick -= w;
                                false
                            }
                        })
                        .unwrap_or(0);
                    targets.swap(0, first);
                }
            }
            return Some(targets);
        }
        let (provider, model) = requested.split_once('/')?;
        let p = self.providers.get(provider)?;
        Some(vec![Target::new(Arc::clone(p), model.to_string(), 1, &self.prices)])
    }

    /// What `/v1/models` lists: every alias.
    pub fn aliases(&self) -> Vec<&str> {
        self.models.keys().map(|s| s.as_str()).collect()
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
