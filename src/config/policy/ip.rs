//! `ip`: allow and deny lists of client networks. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpRulesConfig {
    /// When given, only these networks may call the route.
    #[serde(default)]
    pub allow: Vec<String>,
    /// These networks are refused, checked first.
    #[serde(default)]
    pub deny: Vec<String>,
}
