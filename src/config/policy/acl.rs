//! `acl`: which consumer groups may call a route. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Groups allowed; empty: any identified consumer not denied.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Groups refused, checked first.
    #[serde(default)]
    pub deny: Vec<String>,
}
