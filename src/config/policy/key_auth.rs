//! `key_auth`: an API key in a header or a query parameter. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    /// Header carrying the key.
    #[serde(default = "default_header")]
    pub header: String,
    /// Query parameter carrying the key; off unless named.
    pub query: Option<String>,
    /// Remove the key from the request before proxying.
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
    /// Let requests without a key through unidentified (a later auth step or
    /// `acl` decides); a wrong key is still refused.
    #[serde(default)]
    pub optional: bool,
}

fn default_header() -> String {
    "x-api-key".into()
}

fn default_true() -> bool {
    true
}
