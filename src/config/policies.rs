//! The policy and consumer parts of the YAML schema. Each policy's own
//! settings struct lives beside its implementation in `crate::policy::*`, so a
//! policy is one file; this module only lists them.

use crate::policy::{
    acl::AclConfig, basic_auth::BasicAuthConfig, cache::CacheConfig, concurrency::ConcurrencyConfig, cors::CorsConfig,
    introspect::IntrospectionConfig, ip::IpRulesConfig, jwt::JwtConfig, key_auth::KeyAuthConfig,
    rate_limit::RateLimitConfig, size::SizeLimitConfig, transform::TransformConfig,
};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::SecretRef;

/// One step of a route's policy chain, written as a one-key map:
/// `- key_auth: {header: x-api-key}`.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyConfig {
    /// Allow or deny client addresses by CIDR.
    Ip(IpRulesConfig),
    /// Cross-origin rules; preflights are answered at the gateway.
    Cors(CorsConfig),
    /// API keys in a header or query parameter.
    KeyAuth(KeyAuthConfig),
    /// HTTP Basic with bcrypt or argon2 password hashes.
    BasicAuth(BasicAuthConfig),
    /// Bearer JWTs, keys inline or from a JWKS URL.
    Jwt(Box<JwtConfig>),
    /// OAuth2 token introspection (RFC 7662).
    Oauth2Introspection(Box<IntrospectionConfig>),
    /// Allow or deny consumer groups.
    Acl(AclConfig),
    /// Requests per second, minute or hour; local or cluster-wide on Redis.
    RateLimit(Box<RateLimitConfig>),
    /// Requests in flight at once.
    Concurrency(ConcurrencyConfig),
    /// Body and header size limits.
    SizeLimit(SizeLimitConfig),
    /// Header add/set/remove/rename and regex path rewrite.
    Transform(Box<TransformConfig>),
    /// Response cache for GET and HEAD.
    Cache(CacheConfig),
}

impl PolicyConfig {
    /// The YAML key, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyConfig::Ip(_) => "ip",
            PolicyConfig::Cors(_) => "cors",
            PolicyConfig::KeyAuth(_) => "key_auth",
            PolicyConfig::BasicAuth(_) => "basic_auth",
            PolicyConfig::Jwt(_) => "jwt",
            PolicyConfig::Oauth2Introspection(_) => "oauth2_introspection",
            PolicyConfig::Acl(_) => "acl",
            PolicyConfig::RateLimit(_) => "rate_limit",
            PolicyConfig::Concurrency(_) => "concurrency",
            PolicyConfig::SizeLimit(_) => "size_limit",
            PolicyConfig::Transform(_) => "transform",
            PolicyConfig::Cache(_) => "cache",
        }
    }
}

/// A client of the gateway: a person, team or program with credentials.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    /// Groups for `acl` policies.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free-form labels, passed to nothing but the admin views and logs.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub credentials: CredentialsConfig,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// API keys of this consumer.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// A Basic-auth login.
    pub basic: Option<BasicCredentialConfig>,
    /// Values of a JWT's or introspected token's consumer claim that mean this
    /// consumer; the consumer's name always matches too.
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// An API key: its SHA-256 (hex), or the key itself from an environment
/// variable or a file. Keys are never written in the config in the clear.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub sha256: Option<String>,
    pub env: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

impl ApiKeyConfig {
    pub fn secret_ref(&self) -> SecretRef {
        SecretRef {
            env: self.env.clone(),
            file: self.file.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredentialConfig {
    /// Default: the consumer's name.
    pub username: Option<String>,
    /// A bcrypt (`$2b$...`) or argon2 (`$argon2id$...`) hash.
    pub password_hash: String,
}
