//! `transform`: header edits and a regex path rewrite. The settings as written in YAML; the step itself is
//! compiled from them in [`crate::policy`].

use serde::Deserialize;
use std::collections::BTreeMap;

/// One side's edits. `path` applies to the request side only.
#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HeaderOpsConfig {
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Request side: a regex rewrite of the path sent upstream.
    pub path: Option<PathRewriteConfig>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PathRewriteConfig {
    /// Matched against the path sent upstream (without the query).
    pub regex: String,
    /// The new path; `$1`, `${name}` refer to captures.
    pub replace: String,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    #[serde(default)]
    pub request: HeaderOpsConfig,
    #[serde(default)]
    pub response: HeaderOpsConfig,
}
