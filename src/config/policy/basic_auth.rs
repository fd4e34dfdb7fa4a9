//! `basic_auth`: HTTP Basic against the consumers' password hashes. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// Realm in the `WWW-Authenticate` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Remove the Authorization header before proxying.
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
    /// Let requests without credentials through unidentified.
    #[serde(default)]
    pub optional: bool,
}

fn default_realm() -> String {
    "portico".into()
}

fn default_true() -> bool {
    true
}
