//! The `ai:` and `prompt_apis:` parts of the YAML schema, and a route's `ai:`.

use crate::config::{ConfDuration, ConfSize, PolicyConfig, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Aliases clients call, each mapped to targets; `provider/model` works too.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// A price table (the format of conf/models.yaml) replacing the built-in one.
    pub prices_file: Option<PathBuf>,
    /// Prices that override the table, keyed by `model` or `provider/model`.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceConfig>,
    /// Longest wait for a provider's answer (its first byte when streaming).
    #[serde(default = "default_timeout")]
    pub timeout: ConfDuration,
    /// How long a key that answered 429 or 401 is left out (a Retry-After from the provider wins for 429).
    #[serde(default = "default_cooldown")]
    pub key_cooldown: ConfDuration,
    /// Largest request body accepted on AI routes.
    #[serde(default = "default_max_body")]
    pub max_request_body: ConfSize,
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
    /// Models granted to consumers and groups; a caller no entry names may
    /// use every model its route offers.
    #[serde(default)]
    pub access: Vec<AccessConfig>,
    /// What a call of a model without a price does; default: refused where a
    /// USD budget applies, allowed (at $0, counted) elsewhere.
    pub unpriced: Option<Unpriced>,
    /// How long Portico keeps reading a provider's stream after its client
    /// left, to learn the usage it is charged for.
    #[serde(default = "default_drain")]
    pub drain_after_disconnect: ConfDuration,
}

/// `ai.unpriced`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unpriced {
    /// Every call of an unpriced model is refused (403 model_unpriced).
    Refuse,
    /// Unpriced calls run, cost $0, and are counted; USD budgets do not see them.
    Allow,
}

fn default_timeout() -> ConfDuration {
    ConfDuration(Duration::from_secs(120))
}
fn default_cooldown() -> ConfDuration {
    ConfDuration(Duration::from_secs(30))
}
fn default_drain() -> ConfDuration {
    ConfDuration(Duration::from_secs(30))
}
fn default_max_body() -> ConfSize {
    ConfSize(10 * 1024 * 1024)
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            providers: BTreeMap::new(),
            models: BTreeMap::new(),
            prices_file: None,
            prices: BTreeMap::new(),
            timeout: default_timeout(),
            key_cooldown: default_cooldown(),
            max_request_body: default_max_body(),
            budgets: Vec::new(),
            access: Vec::new(),
            unpriced: None,
            drain_after_disconnect: default_drain(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `openai`, `azure_openai`, `anthropic`, `gemini`, `openai_compatible`, or a
    /// vendor of the built-in catalog (`mistral`, `deepseek`, `groq`, ...).
    pub kind: String,
    /// Default: the vendor's public endpoint (required for `openai_compatible` and `azure_openai`).
    pub base_url: Option<String>,
    /// API keys, tried in turn; a key that answers 429 or 401 cools down. Local servers need none.
    #[serde(default)]
    pub keys: Vec<Secret>,
    /// Azure OpenAI's `api-version`.
    pub api_version: Option<String>,
    /// Extra headers sent with every call (e.g. `OpenAI-Organization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Targets in the order written; later ones are fallbacks.
    #[default]
    Ordered,
    /// The first target is drawn by weight; the others follow as fallbacks.
    Weighted,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default)]
    pub strategy: Strategy,
    pub targets: Vec<TargetConfig>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub provider: String,
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// USD per million tokens.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input: f64,
    pub output: f64,
    /// Cached input tokens; default: the input price.
    pub cached_input: Option<f64>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub consumer: String,
    /// Limits one model only: an alias (every model it routes to) or
    /// `provider/model`, matched by the model actually called; without it,
    /// all of the consumer's calls count.
    pub model: Option<String>,
    pub tokens_per_minute: Option<u64>,
    pub usd_per_day: Option<f64>,
    pub usd_per_month: Option<f64>,
}

/// One `ai.access` entry: models granted to a consumer or to a group.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    pub consumer: Option<String>,
    pub group: Option<String>,
    /// Aliases, `provider/model`, or `provider/*`.
    pub models: Vec<String>,
}

/// A route's `ai:`: the route answers the OpenAI-compatible API.
#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AiRouteConfig {
    /// Model aliases (or `provider/model`) this route may call; empty: all.
    #[serde(default)]
    pub models: Vec<String>,
    /// The AI response cache (exact match); off without it.
    pub cache: Option<AiCacheConfig>,
}

/// A route's `ai.cache`.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct AiCacheConfig {
    #[serde(default = "default_cache_ttl")]
    pub ttl: ConfDuration,
    /// Memory bound of the route's AI cache.
    #[serde(default = "default_cache_size")]
    pub max_size: ConfSize,
    /// Answers larger than this are not stored.
    #[serde(default = "default_cache_entry")]
    pub max_entry_size: ConfSize,
    /// `consumer` (default): each consumer has its own entries; `shared`: one
    /// consumer's answer serves another's identical request.
    #[serde(default)]
    pub scope: CacheScope,
    /// Cache answers of any temperature, not only `temperature: 0`.
    #[serde(default)]
    pub any_temperature: bool,
}

/// Whose answers an AI cache entry may serve.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CacheScope {
    #[default]
    Consumer,
    Shared,
}

fn default_cache_ttl() -> ConfDuration {
    ConfDuration(Duration::from_secs(300))
}
fn default_cache_size() -> ConfSize {
    ConfSize(64 * 1024 * 1024)
}
fn default_cache_entry() -> ConfSize {
    ConfSize(1024 * 1024)
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptApiConfig {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// A model alias or `provider/model`.
    pub model: String,
    /// An optional system prompt.
    pub system: Option<String>,
    /// The user prompt; `{{name}}` is replaced by the variable's value.
    pub template: String,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableConfig>,
    /// A JSON Schema the answer must follow; the API then answers JSON.
    pub output_schema: Option<serde_json::Value>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub description: Option<String>,
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub policies: Vec<PolicyConfig>,
}

fn default_method() -> String {
    "POST".into()
}

#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VariableConfig {
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
    pub description: Option<String>,
}
