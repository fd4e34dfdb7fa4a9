//! `cors`: cross-origin rules. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use crate::config::ConfDuration;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), subdomain wildcards
    /// (`https://*.example.com`) or `*`.
    pub allow_origins: Vec<String>,
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed; empty: whatever the preflight asks for.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight.
    pub max_age: Option<ConfDuration>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}
