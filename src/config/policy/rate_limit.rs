//! `rate_limit`: requests per window, counted locally or on Redis. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::ConfDuration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
        })
    }
}

/// What a limit counts by.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    /// The identified consumer; the client address when there is none.
    #[default]
    Consumer,
    /// The client address (after `trusted_proxies`).
    Ip,
    /// A request header's value; the client address when it is missing.
    Header,
    /// The whole route, all callers together.
    Route,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests: u64,
    pub per: Per,
    /// When set, the limit is a token bucket of `burst + 1` requests refilled
    /// at the rate (nginx's `limit_req burst= nodelay`); unset, a sliding window.
    #[serde(default)]
    pub burst: u64,
    #[serde(default)]
    pub key: LimitKey,
    /// Header name when `key: header`.
    pub header: Option<String>,
    /// Count in Redis, shared by every Portico that uses the same server.
    pub redis: Option<RedisLimitConfig>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisLimitConfig {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    #[serde(default)]
    pub on_error: OnError,
    /// Longest wait for Redis before `on_error` applies.
    #[serde(default = "default_timeout")]
    pub timeout: ConfDuration,
    /// Prefix of the keys Portico writes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_timeout() -> ConfDuration {
    ConfDuration(Duration::from_millis(100))
}

fn default_prefix() -> String {
    "portico:rl".into()
}
