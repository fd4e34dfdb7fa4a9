//! Per-request state carried through the phase hooks, grouped by what it is
//! about: the caller, the routing decision, the upstream attempts, and why
//! the request failed. Private to the proxy; the AI gateway sees a request
//! through [`crate::ai::exchange::AiExchange`] instead.

use crate::ai::handler::AiCall;
use crate::error::GatewayError;
use crate::policy::PolicyState;
use crate::serve::respond::ResponseContext;
use crate::snapshot::{Route, Snapshot};
use crate::upstream::InflightGuard;
use pingora_http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state of one request, from its head to its log line.
pub(crate) struct RequestCtx {
    /// The config this request runs on, start to finish.
    pub(super) snapshot: Arc<Snapshot>,
    pub(super) request_id: String,
    pub(super) client: Client,
    pub(super) routing: Routing,
    pub(super) upstream: Attempts,
    pub(super) failure: Failure,
    /// What the route's policies decided and hold for later phases.
    pub(super) policy: PolicyState,
    /// The AI call this request made, for the access log.
    pub(super) ai_call: Option<AiCall>,
    /// The MCP tools this request called (comma-separated when several).
    pub(super) mcp_tool: Option<Arc<str>>,
    /// Bodies the route's call-log capture keeps, as they stream.
    pub(super) collected: Option<Box<crate::calllog::capture::Collected>>,
    pub(super) start: Instant,
}

/// Who is calling, computed once when the request head arrives.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Client {
    /// The connection's peer: what X-Forwarded-For is extended with.
    pub(super) peer: Option<IpAddr>,
    /// The client: the peer, or the address a trusted proxy forwarded for
    /// (`server.trusted_proxies`). IP rules, rate-limit keys, consistent
    /// hashing and the access log all use this one.
    pub(super) addr: Option<IpAddr>,
}

/// Where the request goes.
#[derive(Debug, Default)]
pub(super) struct Routing {
    /// Index into `snapshot.routes` once routed.
    pub(super) route: Option<usize>,
    /// Index of the matched path pattern of the route.
    pub(super) pattern: usize,
    /// The normalised path when it differs from the request's.
    pub(super) normalized_path: Option<String>,
    /// Host as routed on (lower case, no port).
    pub(super) host: String,
}

/// The attempts on upstream targets.
#[derive(Default)]
pub(super) struct Attempts {
    /// Targets of the pool this request already tried.
    pub(super) tried: Vec<usize>,
    /// Retries used so far.
    pub(super) retries: u32,
    /// The target of the current attempt; counts it in flight.
    pub(super) current: Option<InflightGuard>,
    /// When the current attempt began.
    pub(super) started: Option<Instant>,
    /// Time from the attempt's start to the upstream's response header.
    pub(super) time: Option<Duration>,
}

/// Why the request failed, when Portico decided it.
#[derive(Debug, Default)]
pub(super) struct Failure {
    pub(super) error: Option<GatewayError>,
    /// The client-facing message, when more specific than the error's kind.
    pub(super) message: Option<String>,
}

impl RequestCtx {
    pub(super) fn new(snapshot: Arc<Snapshot>) -> RequestCtx {
        RequestCtx {
            snapshot,
            request_id: String::new(),
            client: Client::default(),
            routing: Routing::default(),
            upstream: Attempts::default(),
            failure: Failure::default(),
            policy: PolicyState::default(),
            ai_call: None,
            mcp_tool: None,
            collected: None,
            start: Instant::now(),
        }
    }

    /// The matched route.
    pub(super) fn route(&self) -> Option<&Route> {
        self.routing.route.and_then(|i| self.snapshot.routes.get(i))
    }

    /// The path routed on: normalised, else the request's own.
    pub(super) fn path<'a>(&'a self, req: &'a RequestHeader) -> &'a str {
        self.routing.normalized_path.as_deref().unwrap_or(req.uri.path())
    }

    /// Records why the request failed.
    pub(super) fn fail(&mut self, error: GatewayError) {
        self.failure.error = Some(error);
    }
}

impl ResponseContext for RequestCtx {
    fn request_id(&self) -> &str {
        &self.request_id
    }

    fn decorate(&self, req: &RequestHeader, resp: &mut ResponseHeader) {
        if let Some(route) = self.route() {
            route.policies.decorate(req, resp, &self.policy);
        }
    }
}
