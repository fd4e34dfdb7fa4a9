//! Services as MCP tools: a route with `mcp:` serves its service's OpenAPI
//! operations to AI agents as a Model Context Protocol server (Streamable
//! HTTP transport, stateless), each operation a tool whose calls go to the
//! route's upstream.
//!
//! The route is an ordinary route: its policies (auth, the service's
//! subscription gate, rate limits) run before the MCP server sees a request,
//! as they do before an AI route's handler, and the call is recorded like
//! any other (with the tools called, `mcp_tool`).
//!
//! Everything is compiled at config load ([`McpServer::compile`]): the tools
//! from the document ([`openapi`], their schemas made whole by [`schema`]),
//! the `tools/list` answer serialized once, the way to each upstream target
//! ([`upstream`]). A request parses JSON-RPC ([`jsonrpc`]), builds an
//! operation's request from a call's arguments ([`request`]) and sends it
//! ([`handler`] is the HTTP side). The proxy hands a request over through
//! [`exchange::McpExchange`].

pub(crate) mod exchange;
pub(crate) mod handler;
pub(crate) mod jsonrpc;
pub(crate) mod openapi;
pub(crate) mod request;
pub(crate) mod schema;
pub(crate) mod upstream;

#[cfg(test)]
mod openapi_tests;

use crate::config::{Issues, McpRouteConfig, ServiceConfig, UpstreamConfig};
use crate::upstream::UpstreamPool;
use openapi::Tool;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use upstream::{Caller, Endpoint, Tls};

/// The protocol versions this server speaks, newest first: the tools part of
/// MCP is the same in each.
pub(crate) const VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// What `initialize` answers a client asking for a version not in [`VERSIONS`].
pub(crate) const LATEST_VERSION: &str = VERSIONS[0];

/// One route's MCP server, compiled.
pub struct McpServer {
    tools: Vec<Tool>,
    by_name: HashMap<Arc<str>, usize>,
    /// The `tools/list` result, serialized once.
    tool_list: Vec<u8>,
    /// The `initialize` result but its `protocolVersion`.
    info: Value,
    pub(crate) caller: Caller,
    max_request: usize,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("tools", &self.by_name.keys().collect::<Vec<_>>())
            .field("upstream", &self.caller.pool.name)
            .finish()
    }
}

/// What compiling a route's MCP server needs.
pub(crate) struct McpEnv<'a> {
    /// The route's place in the config (`routes[3]`).
    pub route: &'a str,
    pub config: &'a McpRouteConfig,
    /// The route's service and its index in `services`.
    pub service: (usize, &'a ServiceConfig),
    pub pool: Arc<UpstreamPool>,
    /// The upstream's settings (TLS, timeouts).
    pub upstream: Option<&'a UpstreamConfig>,
    /// The config file's folder, for a relative `ca_file`.
    pub base_dir: &'a std::path::Path,
    /// The header the gateway names the caller in.
    pub consumer_header: &'a str,
    pub retries: u32,
}

impl McpServer {
    /// The tool named `name`.
    pub(crate) fn tool(&self, name: &str) -> Option<&Tool> {
        self.by_name.get(name).and_then(|&i| self.tools.get(i))
    }

    /// Compiles the route's server; None when anything is wrong (each
    /// problem is in `issues`, located).
    pub(crate) fn compile(env: &McpEnv, issues: &mut Issues) -> Option<McpServer> {
        let (s_index, service) = env.service;
        let doc_at = format!("services[{s_index}].openapi");
        let doc = match service.openapi.as_ref().map(serde_json::to_value) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                issues.add(doc_at, format!("the document cannot be read as JSON: {e}"));
                return None;
            }
            None => return None,
        };
        let compiled = openapi::compile(&doc, env.consumer_header, env.config.base_path.as_deref());
        let mut ok = compiled.issues.is_empty();
        for (at, message) in compiled.issues {
            let path = if at.is_empty() {
                doc_at.clone()
            } else {
                format!("{doc_at}.{at}")
            };
            issues.add(path, message);
        }
        let tools = select(env, compiled.tools, &compiled.skipped, issues, &mut ok);
        let caller = caller(env, issues, &mut ok);
        if !ok {
            return None;
        }
        let by_name = tools.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let list: Vec<&Value> = tools.iter().map(|t| &t.definition).collect();
        let tool_list = json!({ "tools": list }).to_string().into_bytes();
        let mut info = json!({
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "portico", "version": env!("CARGO_PKG_VERSION")},
        });
        let about = Some(service.description.trim())
            .filter(|d| !d.is_empty())
            .or_else(|| doc.pointer("/info/description").and_then(Value::as_str).map(str::trim));
        if let Some(text) = about.filter(|d| !d.is_empty()) {
            info["instructions"] = json!(text);
        }
        Some(McpServer {
            tools,
            by_name,
            tool_list,
            info,
            caller,
            max_request: usize::try_from(env.config.max_request.0).unwrap_or(usize::MAX),
        })
    }
}

/// The tools the route offers (`mcp.tools`, else all), with every name
/// taken once.
fn select(env: &McpEnv, all: Vec<Tool>, skipped: &[openapi::Skipped], issues: &mut Issues, ok: &mut bool) -> Vec<Tool> {
    let (s_index, _) = env.service;
    let mut chosen: Vec<Tool> = match &env.config.tools {
        None => all,
        Some(wanted) => {
            let named = |t: &str, id: Option<&String>, name: &str| id.is_some_and(|i| i == t) || name == t;
            for (i, w) in wanted.iter().enumerate() {
                let found = all.iter().any(|t| named(w, t.operation_id.as_ref(), &t.name));
                if found {
                    continue;
                }
                *ok = false;
                let why = skipped
                    .iter()
                    .find(|s| named(w, s.operation_id.as_ref(), &s.name))
                    .map_or_else(
                        || format!("service {:?} has no operation {w:?}", env.service.1.name),
                        |s| format!("operation {w:?} cannot be a tool: {}", s.why),
                    );
                issues.add(format!("{}.mcp.tools[{i}]", env.route), why);
            }
            all.into_iter()
                .filter(|t| wanted.iter().any(|w| named(w, t.operation_id.as_ref(), &t.name)))
                .collect()
        }
    };
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in chosen.windows(2) {
        if pair[0].name == pair[1].name {
            *ok = false;
            issues.add(
                format!("services[{s_index}].openapi.paths.{}", pair[1].template),
                format!(
                    "{} {} and {} {} are both tool {:?}: give them distinct operationIds, \
                     or leave one out with the route's `mcp.tools`",
                    pair[0].method, pair[0].template, pair[1].method, pair[1].template, &*pair[1].name
                ),
            );
        }
    }
    if chosen.is_empty() && *ok {
        *ok = false;
        issues.add(
            format!("{}.service", env.route),
            format!(
                "service {:?}'s document has no operation to offer as a tool",
                env.service.1.name
            ),
        );
    }
    chosen
}

/// How the route reaches each target of its upstream.
fn caller(env: &McpEnv, issues: &mut Issues, ok: &mut bool) -> Caller {
    let pool = env.pool.clone();
    let tls = env.upstream.and_then(|u| u.tls.as_ref());
    let settings = tls.map(|t| {
        let ca_pem = t.ca_file.as_ref().and_then(|f| {
            let path = if f.is_absolute() {
                f.clone()
            } else {
                env.base_dir.join(f)
            };
            // The upstream's compiler reports an unreadable file.
            std::fs::read(path).ok()
        });
        let connect = env
            .upstream
            .and_then(|u| u.timeouts.connect)
            .map_or(std::time::Duration::from_secs(5), |d| d.0);
        Tls {
            sni: t.sni.clone(),
            verify: t.verify,
            ca_pem,
            connect_timeout: connect,
        }
    });
    let mut endpoints = Vec::new();
    for target in &pool.targets {
        match &settings {
            None => endpoints.push(Endpoint::plain(target.addr)),
            Some(s) => match Endpoint::tls(&target.label, target.addr, s) {
                Ok(e) => endpoints.push(e),
                Err(e) => {
                    *ok = false;
                    issues.add(format!("{}.upstream", env.route), e);
                }
            },
        }
    }
    Caller {
        pool,
        endpoints,
        timeout: env.config.timeout.0,
        max_response: usize::try_from(env.config.max_response.0).unwrap_or(usize::MAX),
        retries: env.retries,
    }
}
