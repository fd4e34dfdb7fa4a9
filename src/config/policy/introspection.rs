//! `oauth2_introspection`: opaque bearer tokens asked of the issuer (RFC 7662). The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::{ConfDuration, Secret};
use serde::Deserialize;
use std::time::Duration;

/// The `introspection` policy's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The RFC 7662 endpoint URL.
    pub endpoint: String,
    pub client_id: String,
    /// Sent with `client_id` as HTTP Basic credentials.
    pub client_secret: Secret,
    /// Whole-request timeout for one introspection call (default 3s).
    #[serde(default = "default_timeout")]
    pub timeout: ConfDuration,
    /// Upper bound for caching an active token; `exp` shortens it (default 5m).
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl: ConfDuration,
    /// How long an inactive token is remembered (default 10s).
    #[serde(default = "default_negative_cache_ttl")]
    pub negative_cache_ttl: ConfDuration,
    /// Maximum cached tokens (default 10000).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// The claim naming the consumer (default `sub`, then `username`, then `client_id`).
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// The header carrying the token (default `authorization`, as `Bearer <token>`).
    #[serde(default = "default_header")]
    pub header: String,
    /// Longer tokens are refused without calling the endpoint (default 8192).
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Remove the token from the request before proxying (default true).
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
    /// Let requests without a token through unidentified (default false).
    #[serde(default)]
    pub optional: bool,
    /// Refuse tokens whose consumer claim names no configured consumer (default false).
    #[serde(default)]
    pub require_consumer: bool,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> ConfDuration {
    ConfDuration(Duration::from_secs(3))
}

fn default_cache_ttl() -> ConfDuration {
    ConfDuration(Duration::from_secs(300))
}

fn default_negative_cache_ttl() -> ConfDuration {
    ConfDuration(Duration::from_secs(10))
}

fn default_cache_entries() -> usize {
    10_000
}

fn default_consumer_claim() -> String {
    "sub".into()
}

fn default_header() -> String {
    "authorization".into()
}

fn default_max_token_bytes() -> usize {
    8192
}
