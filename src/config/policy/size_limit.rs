//! `size_limit`: the largest request body and head of a route. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::ConfSize;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizeLimitConfig {
    /// Largest request body.
    pub body: Option<ConfSize>,
    /// Largest request head (request line and headers).
    pub headers: Option<ConfSize>,
}
