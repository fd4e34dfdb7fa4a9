//! `jwt`: bearer JWTs checked locally, keys inline or from a JWKS URL. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::{ConfDuration, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The `jwt` policy's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Static verification keys.
    pub keys: Vec<JwtKeyConfig>,
    /// An http(s) URL of a JWKS document.
    pub jwks_url: Option<String>,
    /// Keys older than this are refreshed in the background (default 5m).
    pub jwks_refresh: ConfDuration,
    /// An unknown `kid` triggers at most one refetch per this interval (default 10s).
    pub jwks_min_refresh: ConfDuration,
    /// Accepted `iss` values; empty = not checked.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty = not checked, else the token's `aud` must contain one.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30s).
    pub leeway: ConfDuration,
    /// Reject tokens without `exp` (default true).
    pub require_exp: bool,
    /// The claim whose string value names the consumer (default `sub`).
    pub consumer_claim: String,
    /// The header carrying the token (default `authorization`, as `Bearer <token>`).
    pub header: String,
    /// An optional query parameter carrying the token.
    pub query: Option<String>,
    /// Longer tokens are rejected before any parsing (default 8192).
    pub max_token_bytes: usize,
    /// Remove the token from the request before proxying (default true).
    pub hide_credentials: bool,
    /// Let requests without a token through unidentified (default false).
    pub optional: bool,
    /// Refuse tokens whose consumer claim names no configured consumer (default false).
    pub require_consumer: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            keys: Vec::new(),
            jwks_url: None,
            jwks_refresh: ConfDuration(Duration::from_secs(300)),
            jwks_min_refresh: ConfDuration(Duration::from_secs(10)),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: ConfDuration(Duration::from_secs(30)),
            require_exp: true,
            consumer_claim: "sub".into(),
            header: "authorization".into(),
            query: None,
            max_token_bytes: 8192,
            hide_credentials: true,
            optional: false,
            require_consumer: false,
        }
    }
}

/// One static key: `secret` for HS*, otherwise exactly one of `public_key` / `public_key_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    pub kid: Option<String>,
    pub alg: String,
    pub secret: Option<Secret>,
    pub public_key: Option<String>,
    pub public_key_file: Option<PathBuf>,
}
