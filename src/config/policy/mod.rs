//! The policy part of the YAML schema: [`PolicyConfig`] names every step a
//! route's chain may hold, and each step's settings live in the file named
//! for its YAML key. Compiling them into steps is [`crate::policy`]'s work;
//! this layer only describes and validates what was written.

pub(crate) mod acl;
pub(crate) mod basic_auth;
pub(crate) mod cache;
pub(crate) mod concurrency;
pub(crate) mod cors;
pub(crate) mod introspection;
pub(crate) mod ip;
pub(crate) mod jwt;
pub(crate) mod key_auth;
pub(crate) mod rate_limit;
pub(crate) mod size_limit;
pub(crate) mod transform;

pub(crate) use acl::AclConfig;
pub(crate) use basic_auth::BasicAuthConfig;
pub(crate) use cache::CacheConfig;
pub(crate) use concurrency::ConcurrencyConfig;
pub(crate) use cors::CorsConfig;
pub(crate) use introspection::IntrospectionConfig;
pub(crate) use ip::IpRulesConfig;
pub(crate) use jwt::{JwtConfig, JwtKeyConfig};
pub(crate) use key_auth::{KeyAuthConfig, KeyScheme};
pub(crate) use rate_limit::{LimitKey, OnError, RateLimitConfig, RedisLimitConfig};
pub(crate) use size_limit::SizeLimitConfig;
pub(crate) use transform::{HeaderOpsConfig, TransformConfig};

use serde::Deserialize;

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
