//! `cache`: the response cache of a route. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::{ConfDuration, ConfSize};
use serde::Deserialize;
use std::time::Duration;

/// `cache:` in a route. Omitted fields take the values of `Default`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Lifetime when the response gives no `s-maxage`, `max-age` or `Expires`.
    pub ttl: ConfDuration,
    /// Caps every lifetime, whatever the upstream says.
    pub max_ttl: Option<ConfDuration>,
    /// Memory bound of this route's cache (sum of entry weights).
    pub max_size: ConfSize,
    /// Bodies larger than this are not stored.
    pub max_entry_size: ConfSize,
    /// Response statuses that may be stored.
    pub statuses: Vec<u16>,
    /// Whether the query string is part of the key.
    pub key_query: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: ConfDuration(Duration::from_secs(60)),
            max_ttl: None,
            max_size: ConfSize(64 * 1024 * 1024),
            max_entry_size: ConfSize(1024 * 1024),
            statuses: vec![200, 203, 204, 300, 301, 404, 410],
            key_query: true,
        }
    }
}
