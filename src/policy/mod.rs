//! Policies: the per-route chain of security and traffic steps (the
//! architecture document's pipeline, step 4). A route's chain is compiled once at config load from
//! `default_policies` and the route's `policies`, in that order. On a request
//! each step answers [`Step::Continue`], [`Step::Reject`] (a JSON error) or
//! [`Step::Reply`] (a complete response, e.g. a CORS preflight or a cache hit);
//! the first answer other than Continue ends the chain.
//!
//! Steps are an enum rather than trait objects: the set is closed, a match
//! costs nothing, and async steps need no boxed future per request.
//!
//! Two rules that do not depend on the order written:
//! - a CORS preflight is answered before any other step runs, because browsers
//!   send preflights without credentials;
//! - once one auth step has identified the caller, later auth steps are
//!   skipped, so `key_auth` (optional) then `jwt` means "either".

pub(crate) mod auth;
pub(crate) mod cache;
pub(crate) mod cors;
pub(crate) mod retire;
mod state;
pub(crate) mod traffic;
pub(crate) mod transform;

pub(crate) use auth::consumer::Consumers;
pub(crate) use state::{Identity, PolicyState, RateInfo};

use crate::config::PolicyConfig;
use crate::error::GatewayError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// A refusal: the JSON error with this status, and extra headers.
#[derive(Debug)]
pub struct Rejection {
    pub error: GatewayError,
    pub message: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub fn new(error: GatewayError, message: impl Into<String>) -> Rejection {
        Rejection {
            error,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Rejection {
        self.headers.push((name, value));
        self
    }
}

/// A complete response from the gateway that is not an error.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// What one step decided.
#[derive(Debug)]
pub enum Step {
    Continue,
    Reject(Rejection),
    Reply(Reply),
}

/// What a step may read of the request.
pub struct RequestView<'a> {
    pub req: &'a RequestHeader,
    /// The client's address, after `trusted_proxies`.
    pub client_ip: Option<IpAddr>,
    pub host: &'a str,
    /// The normalised path.
    pub path: &'a str,
    pub route: &'a str,
    pub consumers: &'a Consumers,
}

/// One compiled step.
pub enum Policy {
    Ip(traffic::ip::IpRules),
    Cors(cors::Cors),
    KeyAuth(auth::key::KeyAuth),
    BasicAuth(auth::basic::BasicAuth),
    Jwt(auth::token::JwtAuth),
    Introspection(auth::token::IntrospectionAuth),
    Acl(auth::acl::Acl),
    RateLimit(traffic::rate_limit::RateLimit),
    Concurrency(traffic::concurrency::ConcurrencyLimit),
    SizeLimit(traffic::size::SizeLimit),
    Transform(transform::Transform),
    Cache(cache::CachePolicy),
}

/// What compiling a step needs besides its own settings.
pub struct CompileEnv<'a> {
    /// The config file's folder, for relative file paths.
    pub base_dir: &'a Path,
    pub route: &'a str,
    /// The same step of the same route in the previous snapshot, when its
    /// settings are unchanged: state (counters, fetched keys, cached
    /// responses) carries over instead of starting empty.
    pub previous: Option<&'a Policy>,
    /// The route serves the AI API or MCP: `key_auth` then also takes the
    /// key the way the SDKs and MCP clients send it (`Authorization: Bearer`).
    pub ai_route: bool,
}

impl Policy {
    /// Compiles one step; errors are messages for the config's issue list.
    pub fn compile(cfg: &PolicyConfig, env: &CompileEnv) -> Result<Policy, String> {
        let prev = env.previous;
        Ok(match cfg {
            PolicyConfig::Ip(c) => Policy::Ip(traffic::ip::IpRules::new(c)?),
            PolicyConfig::Cors(c) => Policy::Cors(cors::Cors::new(c)?),
            PolicyConfig::KeyAuth(c) => Policy::KeyAuth(auth::key::KeyAuth::new(c, env.ai_route)?),
            PolicyConfig::BasicAuth(c) => Policy::BasicAuth(auth::basic::BasicAuth::new(c)),
            PolicyConfig::Jwt(c) => {
                let auth = auth::token::JwtAuth::new(c, env.base_dir)?;
                if let Some(Policy::Jwt(old)) = prev {
                    auth.inherit(old);
                }
                Policy::Jwt(auth)
            }
            PolicyConfig::Oauth2Introspection(c) => {
                Policy::Introspection(auth::token::IntrospectionAuth::new(c, env.base_dir)?)
            }
            PolicyConfig::Acl(c) => Policy::Acl(auth::acl::Acl::new(c)?),
            PolicyConfig::RateLimit(c) => match prev {
                Some(Policy::RateLimit(old)) => Policy::RateLimit(old.clone()),
                _ => Policy::RateLimit(traffic::rate_limit::RateLimit::new(c, env.route)?),
            },
            PolicyConfig::Concurrency(c) => match prev {
                Some(Policy::Concurrency(old)) => Policy::Concurrency(old.clone()),
                _ => Policy::Concurrency(traffic::concurrency::ConcurrencyLimit::new(c)?),
            },
            PolicyConfig::SizeLimit(c) => Policy::SizeLimit(traffic::size::SizeLimit::new(c)?),
            PolicyConfig::Transform(c) => Policy::Transform(transform::Transform::new(c)?),
            PolicyConfig::Cache(c) => match prev {
                Some(Policy::Cache(old)) => Policy::Cache(old.clone()),
                _ => Policy::Cache(cache::CachePolicy::new(c)),
            },
        })
    }

    fn is_auth(&self) -> bool {
        matches!(
            self,
            Policy::KeyAuth(_) | Policy::BasicAuth(_) | Policy::Jwt(_) | Policy::Introspection(_)
        )
    }
}

impl Policy {
    /// The config key of the step, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Policy::Ip(_) => "ip",
            Policy::Cors(_) => "cors",
            Policy::KeyAuth(_) => "key_auth",
            Policy::BasicAuth(_) => "basic_auth",
            Policy::Jwt(_) => "jwt",
            Policy::Introspection(_) => "oauth2_introspection",
            Policy::Acl(_) => "acl",
            Policy::RateLimit(_) => "rate_limit",
            Policy::Concurrency(_) => "concurrency",
            Policy::SizeLimit(_) => "size_limit",
            Policy::Transform(_) => "transform",
            Policy::Cache(_) => "cache",
        }
    }
}

impl std::fmt::Debug for PolicyChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.steps.iter().map(|s| s.kind())).finish()
    }
}

/// A route's compiled chain.
#[derive(Default, Clone)]
pub struct PolicyChain {
    steps: Vec<Arc<Policy>>,
    /// The CORS step, answered first for preflights and consulted on responses.
    cors: Option<usize>,
    /// The route's service's subscription gate, run right after the last
    /// auth step (before the step at this index).
    gate: Option<(usize, Arc<auth::subscription::ServiceGate>)>,
    /// The route's retirement: its headers on every response, then 410.
    retire: Option<Arc<retire::Retirement>>,
}

impl PolicyChain {
    pub fn new(steps: Vec<Arc<Policy>>) -> PolicyChain {
        let cors = steps.iter().position(|s| matches!(**s, Policy::Cors(_)));
        PolicyChain {
            steps,
            cors,
            gate: None,
            retire: None,
        }
    }

    /// Adds a service's subscription gate after the chain's auth steps.
    pub fn with_gate(mut self, gate: Arc<auth::subscription::ServiceGate>) -> PolicyChain {
        let after_auth = self.steps.iter().rposition(|s| s.is_auth()).map_or(0, |i| i + 1);
        self.gate = Some((after_auth, gate));
        self
    }

    /// Adds the route's retirement: checked before every step, its
    /// headers on every response.
    pub(crate) fn with_retire(mut self, retire: Arc<retire::Retirement>) -> PolicyChain {
        self.retire = Some(retire);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.retire.is_none()
    }

    pub fn steps(&self) -> &[Arc<Policy>] {
        &self.steps
    }

    /// The CORS step, if the chain has one.
    pub fn cors(&self) -> Option<&cors::Cors> {
        match self.cors.and_then(|i| self.steps.get(i)).map(|s| &**s) {
            Some(Policy::Cors(c)) => Some(c),
            _ => None,
        }
    }

    /// Runs the request-phase steps in order.
    pub async fn on_request(&self, view: &RequestView<'_>, state: &mut PolicyState) -> Step {
        if let Some(gone) = self.retire.as_ref().and_then(|r| r.check()) {
            return Step::Reject(gone);
        }
        if let Some(cors) = self.cors() {
            if let Some(step) = cors.preflight(view.req) {
                return step;
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(Step::Reject(r)) = self.gate_at(i, state) {
                return Step::Reject(r);
            }
            if step.is_auth() && state.identity.is_some() {
                continue;
            }
            let outcome = match &**step {
                Policy::Ip(p) => p.check(view.client_ip),
                Policy::Cors(_) | Policy::Transform(_) => Step::Continue,
                Policy::KeyAuth(p) => p.check(view, state),
                Policy::BasicAuth(p) => p.check(view, state).await,
                Policy::Jwt(p) => p.check(view, state).await,
                Policy::Introspection(p) => p.check(view, state).await,
                Policy::Acl(p) => p.check(view, state),
                Policy::RateLimit(p) => p.check(view, state).await,
                Policy::Concurrency(p) => p.check(view, state),
                Policy::SizeLimit(p) => p.check(view, state),
                Policy::Cache(p) => p.lookup(view, state),
            };
            if !matches!(outcome, Step::Continue) {
                return outcome;
            }
        }
        self.gate_at(self.steps.len(), state).unwrap_or(Step::Continue)
    }

    /// The gate's answer when it runs before step `i`.
    fn gate_at(&self, i: usize, state: &PolicyState) -> Option<Step> {
        match &self.gate {
            Some((at, gate)) if *at == i => Some(gate.check(state)),
            _ => None,
        }
    }

    /// Edits the request sent upstream: credential removal, the consumer
    /// header, header transforms and path rewrites, in chain order.
    pub fn on_upstream_request(&self, up: &mut RequestHeader, state: &PolicyState, consumer_header: &HeaderName) {
        state.strip_credentials(up);
        if let Some(v) = state.identity.as_ref().and_then(|id| id.header.clone()) {
            // The header was removed from the client's request before routing.
            let _ = up.insert_header(consumer_header.clone(), v);
        }
        for step in &self.steps {
            if let Policy::Transform(t) = &**step {
                t.on_request(up);
            }
        }
    }

    /// Adds rate-limit and CORS headers and runs response transforms; used
    /// for proxied responses and for the gateway's own answers alike.
    pub fn decorate(&self, req: &RequestHeader, resp: &mut ResponseHeader, state: &PolicyState) {
        if let Some(r) = &self.retire {
            r.decorate(resp);
        }
        if let Some(info) = &state.rate {
            info.write(resp);
        }
        if let Some(cors) = self.cors() {
            cors.on_response(req, resp);
        }
        for step in &self.steps {
            if let Policy::Transform(t) = &**step {
                t.on_response(resp);
            }
        }
    }

    /// A proxied response: [`Self::decorate`], then the cache starts storing it.
    pub fn on_response(&self, req: &RequestHeader, resp: &mut ResponseHeader, state: &mut PolicyState) {
        for step in &self.steps {
            if let Policy::Cache(c) = &**step {
                c.on_response(req, resp, state);
            }
        }
        self.decorate(req, resp, state);
    }

    /// Counts the request body against a size limit as it streams.
    pub fn on_request_body(&self, len: usize, state: &mut PolicyState) -> Result<(), Rejection> {
        state.body_seen += len as u64;
        match state.body_limit {
            Some(max) if state.body_seen > max => Err(traffic::size::too_large(max)),
            _ => Ok(()),
        }
    }

    /// Feeds the response body to a pending cache entry.
    pub fn on_response_body(&self, body: &Option<Bytes>, end: bool, state: &mut PolicyState) {
        if state.cache_pending.is_none() {
            return;
        }
        for step in &self.steps {
            if let Policy::Cache(c) = &**step {
                c.on_body(body, end, state);
                return;
            }
        }
    }
}
