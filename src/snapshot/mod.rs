//! The Snapshot: the compiled, immutable form of one config. The proxy reads
//! the current one from an ArcSwap once per request; a reload compiles a new
//! one and swaps it in, so requests in flight finish on the one they started
//! with. Everything derivable from the config is computed here, not per request.
//!
//! Compiling is split by what it builds: upstream pools
//! ([`crate::upstream::compile`]), routes and their policy chains
//! ([`route`]), prompt APIs as routes ([`prompt`]); this module puts them
//! together with the router, the consumers and the AI registry. Listeners
//! are not part of a snapshot: they belong to the process
//! ([`crate::serve::listeners`]).

mod prompt;
mod route;

pub(crate) use route::{Route, RouteAction};

use crate::config::{ConfigError, EncodedSlashes, Issues, LoadedConfig};
use crate::policy::Consumers;
use crate::router::{RouteSpec, Router};
use crate::upstream::{compile_pools, Pools};
use arc_swap::ArcSwap;
use http::{HeaderName, Method};
use std::sync::Arc;

/// The running config, swapped whole on reload.
pub(crate) type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

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

/// One compiled config.
#[derive(Debug)]
pub struct Snapshot {
    /// Request limits and path rules enforced before routing.
    pub limits: Limits,
    /// Host + path + method to an index into `routes`.
    pub router: Router,
    /// The routes, written ones first, then prompt APIs.
    pub routes: Vec<Route>,
    /// The upstream pools by name.
    pub pools: Pools,
    /// Consumers and their credentials, as lookup tables.
    pub consumers: Consumers,
    /// Providers, models, prices and budgets of the AI gateway.
    pub ai: Option<Arc<crate::ai::registry::AiRegistry>>,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Tells the upstream the identified consumer.
    pub consumer_header: HeaderName,
}

impl Snapshot {
    /// Compiles a validated config and fails with every problem found.
    /// Target health, policy state and AI key state of `previous` carry over
    /// where their settings are unchanged.
    pub fn build(loaded: &LoadedConfig, previous: Option<&Snapshot>) -> Result<Snapshot, ConfigError> {
        let mut issues = loaded.issues();
        let snapshot = Snapshot::compile(loaded, previous, &mut issues);
        issues.finish()?;
        Ok(snapshot)
    }

    /// Compiles a validated config; problems go to `issues`, and the result
    /// is only meant to be used when there are none.
    pub fn compile(loaded: &LoadedConfig, previous: Option<&Snapshot>, issues: &mut Issues) -> Snapshot {
        let cfg = &loaded.config;
        let pools = compile_pools(loaded, previous.map(|s| &s.pools), issues);
        let base_dir = loaded.file_path(std::path::Path::new("."));
        let consumers = Consumers::build(&cfg.consumers, &base_dir, issues);
        let trusted_proxies =
            match crate::policy::traffic::ip::parse_nets(&cfg.server.trusted_proxies, "trusted_proxies") {
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
                &cfg.consumers,
                &base_dir,
                issues,
                previous.and_then(|s| s.ai.as_deref()),
            ))
        });
        let index = consumers.index_by_name();
        let gates = cfg
            .services
            .iter()
            .filter_map(|s| {
                crate::policy::auth::subscription::ServiceGate::new(s, &cfg.subscriptions, &index)
                    .map(|g| (s.name.clone(), Arc::new(g)))
            })
            .collect();
        let services = crate::calllog::policy::services(&cfg.services, issues);
        let retired = cfg
            .services
            .iter()
            .filter_map(|s| s.retire.as_ref().map(|r| (s.name.as_str(), r)))
            .collect();
        let env = route::RouteEnv {
            cfg,
            services: &services,
            retired: &retired,
            gates: &gates,
            pools: &pools,
            base_dir: &base_dir,
        };
        let (routes, router) = compile_routes(&env, ai.as_deref(), previous, issues);
        Snapshot {
            limits: Limits {
                max_header_bytes: usize::try_from(cfg.server.max_header_size.0).unwrap_or(usize::MAX),
                encoded_slashes: cfg.server.encoded_slashes,
                case_insensitive_paths: cfg.server.case_insensitive_paths,
            },
            router,
            routes,
            pools,
            consumers,
            ai,
            trusted_proxies,
            consumer_header,
        }
    }
}

/// The written routes and the prompt APIs' routes, and the router over them.
fn compile_routes(
    env: &route::RouteEnv,
    ai: Option<&crate::ai::registry::AiRegistry>,
    previous: Option<&Snapshot>,
    issues: &mut Issues,
) -> (Vec<Route>, Router) {
    let mut routes = Vec::new();
    let mut specs = Vec::new();
    let prompt_routes = prompt::prompt_routes(env.cfg, ai, issues);
    let all_routes = env
        .cfg
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r, None))
        .chain(prompt_routes.iter().map(|(i, r, api)| (*i, r, api.clone())));
    // The previous snapshot's routes by name: a lookup each, not a scan
    // (a store of 10,000 routes compiles on every admin write).
    let old_routes: std::collections::HashMap<&str, &Route> = previous
        .map(|s| s.routes.iter().map(|o| (o.name.as_str(), o)).collect())
        .unwrap_or_default();
    for (i, r, prompt) in all_routes {
        let old = old_routes.get(r.name.as_str()).copied();
        if let Some(route) = route::compile_route(i, r, env, issues, old, prompt) {
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
    (routes, Router::new(&specs))
}
