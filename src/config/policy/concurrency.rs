//! `concurrency`: requests of one key in flight at once. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use super::LimitKey;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    pub max: u32,
    #[serde(default = "default_key")]
    pub key: LimitKey,
    /// Header name when `key: header`.
    pub header: Option<String>,
}

fn default_key() -> LimitKey {
    LimitKey::Route
}
