//! `key_auth`: an API key in a header or a query parameter. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    /// Header carrying the key; default `x-api-key`, or `authorization` with
    /// `scheme: bearer`.
    pub header: Option<String>,
    /// `bearer`: the header's value is `Bearer KEY` (the scheme in any case,
    /// RFC 6750), as the OpenAI SDK sends `api_key`.
    pub scheme: Option<KeyScheme>,
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

/// How a header carries the key.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyScheme {
    /// `Authorization: Bearer KEY`.
    Bearer,
}

fn default_true() -> bool {
    true
}
