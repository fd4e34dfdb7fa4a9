//! One route compiled: its path patterns, what it does (proxy, fixed
//! response, AI API, prompt API), its policy chain, and its metric series.
//! A policy step whose settings are unchanged by a reload keeps its state.

use crate::config::{Issues, PolicyConfig, RouteConfig};
use crate::policy::{CompileEnv, Policy, PolicyChain};
use crate::router::PathPattern;
use crate::upstream::peer::Timeouts;
use crate::upstream::{Pools, UpstreamPool};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// A response the gateway gives itself (route type `response`).
#[derive(Debug)]
pub struct FixedResponse {
    /// The status code.
    pub status: u16,
    /// The body, sent as is.
    pub body: Bytes,
    /// Content-Type and the configured headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What a route does with a request that passed its policies.
#[derive(Debug)]
pub enum RouteAction {
    /// Proxied to a target of `pool`.
    Proxy {
        /// The upstream.
        pool: Arc<UpstreamPool>,
        /// Set when the route overrides the upstream's timeouts.
        timeouts: Option<Timeouts>,
    },
    Respond(FixedResponse),
    /// The OpenAI-compatible AI API; `models` limits the aliases (empty: all).
    Ai {
        /// The model aliases this route serves; empty: all.
        models: Vec<String>,
        /// The route's AI response cache, when configured.
        cache: Option<Arc<crate::ai::cache::AiCache>>,
    },
    /// A prompt template served as a REST API.
    Prompt(Arc<crate::ai::prompt::PromptApi>),
    /// The service's OpenAPI operations as MCP tools.
    Mcp(Arc<crate::mcp::McpServer>),
}

/// A compiled route.
#[derive(Debug)]
pub struct Route {
    /// The name in `routes:` (`prompt:<name>` for a prompt API).
    pub name: String,
    /// What the route does with a request.
    pub action: RouteAction,
    /// The path patterns, in config order (a request knows which one matched).
    pub patterns: Vec<PathPattern>,
    /// Remove the matched prefix before proxying.
    pub strip_prefix: bool,
    /// The upstream path template with `{param}` placeholders.
    pub rewrite: Option<String>,
    /// Further attempts on other targets after a failed one.
    pub retries: u32,
    /// This route's metric series, resolved once.
    pub metrics: crate::telemetry::metrics::RouteMetrics,
    /// Default policies (unless skipped) then the route's own, compiled.
    pub policies: PolicyChain,
    /// The settings each step was compiled from, to carry state across reloads.
    policy_configs: Vec<PolicyConfig>,
    /// Hash of the route's settings; a cache survives a reload only when it is unchanged.
    fingerprint: u64,
    /// Its names for the call log, and its sampling and capture.
    pub(crate) call: crate::calllog::policy::RouteCall,
}

/// Compiles default policies (unless skipped) and the route's own into one
/// chain. A step whose settings equal the same step of the same-named route
/// in `old` keeps that step's state; a cache only when the whole route is unchanged.
fn compile_policies(
    i: usize,
    r: &RouteConfig,
    cfg: &crate::config::Config,
    issues: &mut Issues,
    base_dir: &std::path::Path,
    old: Option<&Route>,
    fingerprint: u64,
) -> (PolicyChain, Vec<PolicyConfig>) {
    let defaults = if r.skip_default_policies {
        &[][..]
    } else {
        &cfg.default_policies[..]
    };
    let mut steps = Vec::new();
    let mut configs = Vec::new();
    let written = defaults
        .iter()
        .enumerate()
        .map(|(j, c)| (format!("default_policies[{j}]"), c))
        .chain(
            r.policies
                .iter()
                .enumerate()
                .map(|(j, c)| (format!("routes[{i}].policies[{j}]"), c)),
        );
    for (k, (path, c)) in written.enumerate() {
        let previous = old.and_then(|o| {
            let same = o.policy_configs.get(k) == Some(c);
            let cache_ok = !matches!(c, PolicyConfig::Cache(_)) || o.fingerprint == fingerprint;
            (same && cache_ok)
                .then(|| o.policies.steps().get(k).map(|s| &**s))
                .flatten()
        });
        let env = CompileEnv {
            base_dir,
            route: &r.name,
            previous,
            ai_route: r.ai.is_some() || r.mcp.is_some(),
        };
        match Policy::compile(c, &env) {
            Ok(p) => steps.push(Arc::new(p)),
            Err(e) => issues.add(format!("{path}.{}", c.kind()), e),
        }
        configs.push(c.clone());
    }
    (PolicyChain::new(steps), configs)
}

fn fingerprint(r: &RouteConfig, cfg: &crate::config::Config) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{r:?}").hash(&mut h);
    if !r.skip_default_policies {
        format!("{:?}", cfg.default_policies).hash(&mut h);
    }
    h.finish()
}

/// What compiling any route needs.
pub(super) struct RouteEnv<'a> {
    pub(super) cfg: &'a crate::config::Config,
    /// The subscription gate of each service that needs one.
    pub(super) gates: &'a std::collections::HashMap<String, Arc<crate::policy::auth::subscription::ServiceGate>>,
    pub(super) pools: &'a Pools,
    pub(super) base_dir: &'a std::path::Path,
    /// Each service's call-log names and policy.
    pub(super) services: &'a std::collections::HashMap<String, crate::calllog::policy::ServiceCall>,
    /// The services that are retired, and how.
    pub(super) retired: &'a std::collections::HashMap<&'a str, &'a crate::config::RetireConfig>,
}

pub(super) fn compile_route(
    i: usize,
    r: &RouteConfig,
    env: &RouteEnv,
    issues: &mut Issues,
    old: Option<&Route>,
    prompt: Option<Arc<crate::ai::prompt::PromptApi>>,
) -> Option<Route> {
    let (cfg, pools, base_dir) = (env.cfg, env.pools, env.base_dir);
    let p = format!("routes[{i}]");
    let fingerprint = fingerprint(r, cfg);
    let (mut policies, policy_configs) = compile_policies(i, r, cfg, issues, base_dir, old, fingerprint);
    if let Some(gate) = r.service.as_ref().and_then(|s| env.gates.get(s)) {
        policies = policies.with_gate(gate.clone());
    }
    // The route's own retirement wins over its service's; bad dates are
    // validation's to report.
    let retire = r
        .retire
        .as_ref()
        .or_else(|| r.service.as_deref().and_then(|s| env.retired.get(s).copied()));
    if let Some(Ok(headers)) = retire.map(crate::config::RetireConfig::headers) {
        match crate::policy::retire::Retirement::new(&r.name, &headers) {
            Ok(retirement) => policies = policies.with_retire(Arc::new(retirement)),
            Err(e) => issues.add(format!("{p}.retire"), e),
        }
    }
    let mut patterns = Vec::new();
    for (j, s) in r.paths.iter().enumerate() {
        match PathPattern::parse(s) {
            Ok(pat) => patterns.push(pat),
            Err(e) => issues.add(format!("{p}.paths[{j}]"), e),
        }
    }
    if r.strip_prefix && patterns.iter().any(|x| !matches!(x, PathPattern::Prefix(_))) {
        issues.add(format!("{p}.strip_prefix"), "only applies to prefix paths like /api/*");
    }
    if let Some(rw) = &r.rewrite {
        for name in rewrite_params(rw) {
            if patterns.iter().any(|pat| !pat.params().contains(&name)) {
                issues.add(
                    format!("{p}.rewrite"),
                    format!("{{{name}}} is not a parameter of every path of this route"),
                );
            }
        }
    }
    let action = if let Some(api) = prompt {
        RouteAction::Prompt(api)
    } else if let Some(a) = &r.ai {
        RouteAction::Ai {
            models: a.models.clone(),
            cache: a.cache.as_ref().map(|c| Arc::new(crate::ai::cache::AiCache::new(c))),
        }
    } else if let Some(m) = &r.mcp {
        RouteAction::Mcp(Arc::new(mcp_server(i, r, m, env, issues)?))
    } else if let Some(resp) = &r.response {
        let mut headers = Vec::new();
        match HeaderValue::from_str(&resp.content_type) {
            Ok(v) => headers.push((http::header::CONTENT_TYPE, v)),
            Err(_) => issues.add(format!("{p}.response.content_type"), "invalid header value"),
        }
        for (k, v) in &resp.headers {
            match (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => issues.add(format!("{p}.response.headers.{k}"), format!("invalid header {k:?}")),
            }
        }
        RouteAction::Respond(FixedResponse {
            status: resp.status,
            body: Bytes::from(resp.body.clone()),
            headers,
        })
    } else {
        let name = r.upstream.as_ref()?;
        let pool = pools.get(name)?.clone();
        let any_override = r.timeouts.connect.is_some()
            || r.timeouts.read.is_some()
            || r.timeouts.write.is_some()
            || r.timeouts.idle.is_some();
        let timeouts = any_override.then(|| {
            let base = cfg
                .upstreams
                .get(name)
                .map_or_else(Timeouts::default, |u| Timeouts::default().overridden(&u.timeouts));
            base.overridden(&r.timeouts)
        });
        RouteAction::Proxy { pool, timeouts }
    };
    let service = r.service.as_ref().and_then(|s| env.services.get(s));
    let call =
        crate::calllog::policy::RouteCall::new(&r.name, r.call_log.as_ref(), &format!("{p}.call_log"), service, issues);
    Some(Route {
        call,
        name: r.name.clone(),
        action,
        patterns,
        strip_prefix: r.strip_prefix,
        rewrite: r.rewrite.clone(),
        retries: r.retries,
        metrics: crate::telemetry::metrics::RouteMetrics::new(&r.name),
        policies,
        policy_configs,
        fingerprint,
    })
}

/// The MCP server of route `i`; None when the config validation already
/// said what is missing, or compiling found problems (in `issues`).
fn mcp_server(
    i: usize,
    r: &RouteConfig,
    m: &crate::config::McpRouteConfig,
    env: &RouteEnv,
    issues: &mut Issues,
) -> Option<crate::mcp::McpServer> {
    let name = r.upstream.as_ref()?;
    let service = r.service.as_ref()?;
    let service = env.cfg.services.iter().enumerate().find(|(_, s)| &s.name == service)?;
    let mcp_env = crate::mcp::McpEnv {
        route: &format!("routes[{i}]"),
        config: m,
        service,
        pool: env.pools.get(name)?.clone(),
        upstream: env.cfg.upstreams.get(name),
        base_dir: env.base_dir,
        consumer_header: &env.cfg.server.consumer_header,
        retries: r.retries,
    };
    crate::mcp::McpServer::compile(&mcp_env, issues)
}

/// `{name}` placeholders in a rewrite template.
pub(crate) fn rewrite_params(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}
