//! The Snapshot: the compiled, immutable form of one config. The proxy reads
//! the current one from an ArcSwap once per request; a reload compiles a new
//! one and swaps it in, so requests in flight finish on the one they started
//! with. Everything derivable from the config is computed here, not per request.

use crate::config::{EncodedSlashes, LoadedConfig, PolicyConfig, RouteConfig};
use crate::policy::{CompileEnv, Consumers, Policy, PolicyChain};
use crate::router::{PathPattern, RouteSpec, Router};
use crate::tls::{load_certified_key, SniResolver};
use crate::upstream::peer::{build_peer, load_ca, PeerTls, Timeouts};
use crate::upstream::{ActiveCheck, Passive, Target, UpstreamPool};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// A response the gateway gives itself (route type `response`).
#[derive(Debug)]
pub struct FixedResponse {
    pub status: u16,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug)]
pub enum RouteAction {
    Proxy {
        pool: Arc<UpstreamPool>,
        /// Set when the route overrides the upstream's timeouts.
        timeouts: Option<Timeouts>,
    },
    Respond(FixedResponse),
    /// The OpenAI-compatible AI API; `models` limits the aliases (empty: all).
    Ai {
        models: Vec<String>,
    },
    /// A prompt template served as a REST API.
    Prompt(Arc<crate::ai::prompt::PromptApi>),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub action: RouteAction,
    pub patterns: Vec<PathPattern>,
    pub strip_prefix: bool,
    pub rewrite: Option<String>,
    pub retries: u32,
    /// This route's metric series, resolved once.
    pub metrics: crate::telemetry::metrics::RouteMetrics,
    /// Default policies (unless skipped) then the route's own, compiled.
    pub policies: PolicyChain,
    /// The settings each step was compiled from, to carry state across reloads.
    pub policy_configs: Vec<PolicyConfig>,
    /// Hash of the route's settings; a cache survives a reload only when it is unchanged.
    pub fingerprint: u64,
}

/// A listener as compiled: address and TLS acceptor material.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub address: String,
    pub tls: Option<Arc<SniResolver>>,
    pub http2: bool,
    pub h2c: bool,
}

/// Request limits and path rules enforced before routing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub encoded_slashes: EncodedSlashes,
    pub case_insensitive_paths: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            encoded_slashes: EncodedSlashes::Reject,
            case_insensitive_paths: false,
        }
    }
}

#[derive(Debug)]
pub struct Snapshot {
    pub limits: Limits,
    pub router: Router,
    pub routes: Vec<Route>,
    pub pools: HashMap<String, Arc<UpstreamPool>>,
    pub listeners: Vec<ListenerSpec>,
    pub consumers: Consumers,
    /// Providers, models, prices and budgets of the AI gateway.
    pub ai: Option<Arc<crate::ai::registry::AiRegistry>>,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Tells the upstream the identified consumer.
    pub consumer_header: HeaderName,
}

impl Snapshot {
    /// Compiles a validated config. Target health of `previous` carries over
    /// for targets with the same pool name and address.
    pub fn build(loaded: &LoadedConfig, previous: Option<&Snapshot>) -> Result<Snapshot, crate::config::ConfigError> {
        let cfg = &loaded.config;
        let mut issues = loaded.issues();
        let mut listeners = Vec::new();
        for (i, l) in cfg.server.listeners.iter().enumerate() {
            let mut resolver = None;
            if let Some(tls) = &l.tls {
                let mut keys = Vec::new();
                for (j, c) in tls.certificates.iter().enumerate() {
                    match load_certified_key(&loaded_rel(loaded, &c.cert), &loaded_rel(loaded, &c.key)) {
                        Ok(k) => keys.push(k),
                        Err(e) => issues.add(format!("server.listeners[{i}].tls.certificates[{j}]"), e),
                    }
                }
                resolver = SniResolver::new(keys).map(Arc::new);
            }
            listeners.push(ListenerSpec {
                address: l.address.clone(),
                tls: resolver,
                http2: l.tls.as_ref().is_some_and(|t| t.http2),
                h2c: l.h2c,
            });
        }

        let mut pools = HashMap::new();
        for (name, up) in &cfg.upstreams {
            let p = format!("upstreams.{name}");
            let tls = match &up.tls {
                None => None,
                Some(t) => {
                    let (ca, ca_key) = match &t.ca_file {
                        None => (None, 0),
                        Some(f) => match load_ca(&loaded_rel(loaded, f)) {
                            Ok((ca, key)) => (Some(ca), key),
                            Err(e) => {
                                issues.add(format!("{p}.tls.ca_file"), e);
                                (None, 0)
                            }
                        },
                    };
                    Some(PeerTls {
                        sni: t.sni.clone(),
                        verify: t.verify,
                        ca,
                        ca_key,
                    })
                }
            };
            let timeouts = Timeouts::default().overridden(&up.timeouts);
            let mut targets = Vec::new();
            let mut seen = HashMap::new();
            for (i, t) in up.targets.iter().enumerate() {
                let addr = match resolve(&t.address) {
                    Ok(a) => a,
                    Err(e) => {
                        issues.add(format!("{p}.targets[{i}].address"), e);
                        continue;
                    }
                };
                if let Some(first) = seen.insert(addr, i) {
                    issues.add(
                        format!("{p}.targets[{i}].address"),
                        format!("{addr} is already targets[{first}]"),
                    );
                }
                let host = t.address.rsplit_once(':').map_or(t.address.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let peer = build_peer(addr, host, tls.as_ref(), &timeouts);
                let target = Target::new(t.address.clone(), addr, t.weight, peer);
                let old = previous
                    .and_then(|s| s.pools.get(name))
                    .and_then(|p| p.targets.iter().find(|o| o.addr == addr));
                if let Some(old) = old {
                    target.inherit(old);
                }
                targets.push(Arc::new(target));
            }
            let active = up.health_check.active.as_ref().map(|a| ActiveCheck {
                http: a.kind == crate::config::CheckKind::Http,
                path: a.path.clone(),
                host: a
                    .host
                    .clone()
                    .or_else(|| up.host_header.clone())
                    .unwrap_or_else(|| "localhost".into()),
                expected: a.expected_statuses.clone(),
                interval: a.interval.0,
                timeout: a.timeout.0,
                healthy_threshold: a.healthy_threshold,
                unhealthy_threshold: a.unhealthy_threshold,
            });
            let passive = Passive {
                max_fails: up.health_check.passive.max_fails,
                cooldown_ms: up.health_check.passive.cooldown.0.as_millis() as u64,
            };
            if targets.is_empty() {
                continue;
            }
            let pool = UpstreamPool::new(
                name.clone(),
                targets,
                up.algorithm,
                up.hash_on,
                up.hash_key.clone().unwrap_or_default(),
                up.host_header.as_deref().and_then(|h| HeaderValue::from_str(h).ok()),
                passive,
                active,
                tls.is_some(),
            );
            pools.insert(name.clone(), Arc::new(pool));
        }

        let base_dir = loaded_rel(loaded, std::path::Path::new("."));
        let consumers = Consumers::build(&cfg.consumers, &base_dir, &mut issues);
        let trusted_proxies = match crate::policy::ip::parse_nets(&cfg.server.trusted_proxies, "trusted_proxies") {
            Ok(n) => n,
            Err(e) => {
                issues.add("server.trusted_proxies", e);
                Vec::new()
            }
        };
        let consumer_header = HeaderName::from_bytes(cfg.server.consumer_header.as_bytes()).unwrap_or_else(|_| {
            issues.add("server.consumer_header", "invalid header name");
            HeaderName::from_static("x-consumer")
        });
        let ai = cfg.ai.as_ref().map(|a| {
            Arc::new(crate::ai::registry::AiRegistry::build(
                a,
                &base_dir,
                &mut issues,
                previous.and_then(|s| s.ai.as_deref()),
            ))
        });
        let mut routes = Vec::new();
        let mut specs = Vec::new();
        let prompt_routes = prompt_routes(cfg, ai.as_deref(), &mut issues);
        let all_routes = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r, None))
            .chain(prompt_routes.iter().map(|(i, r, api)| (*i, r, api.clone())));
        for (i, r, prompt) in all_routes {
            let old = previous.and_then(|s| s.routes.iter().find(|o| o.name == r.name));
            let env = RouteEnv {
                cfg,
                pools: &pools,
                base_dir: &base_dir,
            };
            if let Some(route) = compile_route(i, r, &env, &mut issues, old, prompt) {
                specs.push(RouteSpec {
                    route: routes.len(),
                    hosts: r.hosts.clone(),
                    patterns: route.patterns.clone(),
                    methods: r
                        .methods
                        .iter()
                        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                        .collect(),
                });
                routes.push(route);
            }
        }
        issues.finish()?;
        Ok(Snapshot {
            limits: Limits {
                max_header_bytes: usize::try_from(cfg.server.max_header_size.0).unwrap_or(usize::MAX),
                encoded_slashes: cfg.server.encoded_slashes,
                case_insensitive_paths: cfg.server.case_insensitive_paths,
            },
            router: Router::new(&specs),
            routes,
            pools,
            listeners,
            consumers,
            ai,
            trusted_proxies,
            consumer_header,
        })
    }
}

/// Compiles default policies (unless skipped) and the route's own into one
/// chain. A step whose settings equal the same step of the same-named route
/// in `old` keeps that step's state; a cache only when the whole route is unchanged.
fn compile_policies(
    i: usize,
    r: &RouteConfig,
    cfg: &crate::config::Config,
    issues: &mut crate::config::Issues,
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
struct RouteEnv<'a> {
    cfg: &'a crate::config::Config,
    pools: &'a HashMap<String, Arc<UpstreamPool>>,
    base_dir: &'a std::path::Path,
}

fn compile_route(
    i: usize,
    r: &RouteConfig,
    env: &RouteEnv,
    issues: &mut crate::config::Issues,
    old: Option<&Route>,
    prompt: Option<Arc<crate::ai::prompt::PromptApi>>,
) -> Option<Route> {
    let (cfg, pools, base_dir) = (env.cfg, env.pools, env.base_dir);
    let p = format!("routes[{i}]");
    let fingerprint = fingerprint(r, cfg);
    let (policies, policy_configs) = compile_policies(i, r, cfg, issues, base_dir, old, fingerprint);
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
        }
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
    Some(Route {
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

/// Prompt APIs as routes (`prompt:<name>`), plus `GET /apis/openapi.json`
/// describing them. The index is the prompt API's, for messages.
fn prompt_routes(
    cfg: &crate::config::Config,
    ai: Option<&crate::ai::registry::AiRegistry>,
    issues: &mut crate::config::Issues,
) -> Vec<(usize, RouteConfig, Option<Arc<crate::ai::prompt::PromptApi>>)> {
    use crate::ai::prompt::PromptApi;
    let mut out = Vec::new();
    let mut apis = Vec::new();
    let route = |name: String, path: String, method: String| RouteConfig {
        name,
        hosts: Vec::new(),
        paths: vec![path],
        methods: vec![method],
        upstream: None,
        response: None,
        ai: None,
        strip_prefix: false,
        rewrite: None,
        retries: 0,
        timeouts: Default::default(),
        policies: Vec::new(),
        skip_default_policies: false,
    };
    for (i, c) in cfg.prompt_apis.iter().enumerate() {
        let p = format!("prompt_apis[{i}]");
        let Some(ai) = ai else {
            issues.add(p, "prompt APIs need the top-level `ai:` section (providers and models)");
            continue;
        };
        if cfg.prompt_apis[..i].iter().any(|o| o.name == c.name) {
            issues.add(format!("{p}.name"), format!("duplicate prompt API name {:?}", c.name));
        }
        match PromptApi::compile(c) {
            Ok(api) => {
                if ai.resolve(api.model()).is_none_or(|t| t.is_empty()) {
                    issues.add(format!("{p}.model"), format!("model {:?} does not exist", c.model));
                }
                let mut r = route(format!("prompt:{}", c.name), api.path.clone(), api.method.to_string());
                r.policies = c.policies.clone();
                let api = Arc::new(api);
                apis.push(Arc::clone(&api));
                out.push((i, r, Some(api)));
            }
            Err((field, e)) => issues.add(format!("{p}.{field}"), e),
        }
    }
    if !apis.is_empty() {
        let doc = crate::ai::prompt::openapi(&apis.iter().map(|a| &**a).collect::<Vec<_>>());
        let mut r = route("prompt:openapi".into(), "/apis/openapi.json".into(), "GET".into());
        r.response = Some(crate::config::FixedResponseConfig {
            status: 200,
            body: doc.to_string(),
            content_type: "application/json".into(),
            headers: Default::default(),
        });
        out.push((cfg.prompt_apis.len(), r, None));
    }
    out
}

/// `{name}` placeholders in a rewrite template.
pub fn rewrite_params(template: &str) -> Vec<&str> {
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

/// Relative file paths in the config are relative to the config file's folder.
fn loaded_rel(loaded: &LoadedConfig, p: &std::path::Path) -> std::path::PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match loaded.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !address.contains(':') {
        return Err(format!("invalid address {address:?}; use host:port"));
    }
    let mut addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{address:?} resolved to no address"))
}
