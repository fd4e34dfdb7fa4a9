//! A route's `mcp:`: the route serves its service's OpenAPI operations as a
//! Model Context Protocol server (tools compiled by [`crate::mcp`]). The
//! settings as written in YAML; the route's `service` gives the document and
//! its `upstream` receives the operations.

use super::units::{ConfDuration, ConfSize};
use serde::Deserialize;

/// `mcp:` on a route.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpRouteConfig {
    /// The operations offered as tools, by operationId or tool name; unset:
    /// every operation of the document.
    pub tools: Option<Vec<String>>,
    /// Goes before every operation's path upstream; default: the path of
    /// the document's first `servers` URL. `/` puts none.
    pub base_path: Option<String>,
    /// How long one tool call may take, from sending the operation to the
    /// whole answer read.
    #[serde(default = "default_timeout")]
    pub timeout: ConfDuration,
    /// Largest upstream answer a tool call returns; a larger one is a tool
    /// error.
    #[serde(default = "default_max_size")]
    pub max_response: ConfSize,
    /// Largest JSON-RPC message (or batch) a client may send.
    #[serde(default = "default_max_size")]
    pub max_request: ConfSize,
}

impl Default for McpRouteConfig {
    fn default() -> Self {
        McpRouteConfig {
            tools: None,
            base_path: None,
            timeout: default_timeout(),
            max_response: default_max_size(),
            max_request: default_max_size(),
        }
    }
}

fn default_timeout() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(30))
}

fn default_max_size() -> ConfSize {
    ConfSize(1024 * 1024)
}

/// The route checks of an `mcp` route that need no compiling: it names a
/// service with an OpenAPI document and an upstream, and sets nothing that
/// only a proxied route uses.
pub(super) fn validate(p: &str, r: &super::RouteConfig, cfg: &super::Config, issues: &mut super::Issues) {
    let Some(m) = &r.mcp else { return };
    if r.upstream.is_none() {
        issues.add(
            format!("{p}.mcp"),
            "an `mcp` route needs `upstream`: where its tools send the operations",
        );
    }
    match &r.service {
        None => issues.add(
            format!("{p}.mcp"),
            "an `mcp` route needs `service`: its tools are the operations of the service's `openapi` document",
        ),
        Some(name) => {
            let doc = cfg
                .services
                .iter()
                .find(|s| &s.name == name)
                .map(|s| s.openapi.is_some());
            if doc == Some(false) {
                issues.add(
                    format!("{p}.service"),
                    format!("service {name:?} has no `openapi` document to make the route's tools from"),
                );
            }
        }
    }
    for (field, set) in [("strip_prefix", r.strip_prefix), ("rewrite", r.rewrite.is_some())] {
        if set {
            issues.add(
                format!("{p}.{field}"),
                "applies to proxied routes; an `mcp` route builds each operation's path from the document",
            );
        }
    }
    if m.base_path.as_deref().is_some_and(|b| !b.starts_with('/')) {
        issues.add(format!("{p}.mcp.base_path"), "must start with /");
    }
    if m.timeout.0.is_zero() {
        issues.add(format!("{p}.mcp.timeout"), "must be greater than zero");
    }
    for (field, size) in [("max_response", m.max_response.0), ("max_request", m.max_request.0)] {
        if size == 0 || size > 64 * 1024 * 1024 {
            issues.add(format!("{p}.mcp.{field}"), "must be from 1 byte to 64MiB");
        }
    }
    if let Some(tools) = &m.tools {
        if tools.is_empty() {
            issues.add(
                format!("{p}.mcp.tools"),
                "list at least one operation, or leave it out for all",
            );
        }
        for (i, t) in tools.iter().enumerate() {
            if tools[..i].contains(t) {
                issues.add(format!("{p}.mcp.tools[{i}]"), format!("{t:?} is listed twice"));
            }
        }
    }
}
