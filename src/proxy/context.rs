//! Per-request state carried through the phase hooks.

use super::errors::GatewayError;
use crate::runtime::Snapshot;
use crate::upstream::InflightGuard;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RequestCtx {
    /// The config this request runs on, start to finish.
    pub snapshot: Arc<Snapshot>,
    pub request_id: String,
    /// Index into `snapshot.routes` once routed.
    pub route: Option<usize>,
    /// Index of the matched path pattern of the route.
    pub pattern: usize,
    /// The normalised path when it differs from the request's.
    pub normalized_path: Option<String>,
    /// Host as routed on (lower case, no port).
    pub host: String,
    /// Targets of the pool this request already tried.
    pub tried: Vec<usize>,
    /// Retries used so far.
    pub retries: u32,
    /// The target of the current attempt; counts it in flight.
    pub current: Option<(usize, InflightGuard)>,
    /// Why the request failed, when Portico decided it.
    pub failure: Option<GatewayError>,
    /// The client-facing message for `failure`, when more specific than its kind.
    pub failure_message: Option<String>,
    /// The client's address after `trusted_proxies`; set when policies run.
    pub client_ip: Option<std::net::IpAddr>,
    /// The AI call this request made, for the access log.
    pub ai_call: Option<crate::ai::handler::AiCall>,
    /// What the route's policies decided and hold for later phases.
    pub policy: crate::policy::PolicyState,
    pub start: Instant,
    /// When the current upstream attempt began.
    pub upstream_start: Option<Instant>,
    /// Time from the attempt's start to the upstream's response header.
    pub upstream_time: Option<Duration>,
}

impl RequestCtx {
    pub fn new(snapshot: Arc<Snapshot>) -> RequestCtx {
        RequestCtx {
            snapshot,
            request_id: String::new(),
            route: None,
            pattern: 0,
            normalized_path: None,
            host: String::new(),
            tried: Vec::new(),
            retries: 0,
            current: None,
            failure: None,
            failure_message: None,
            client_ip: None,
            policy: crate::policy::PolicyState::default(),
            ai_call: None,
            start: Instant::now(),
            upstream_start: None,
            upstream_time: None,
        }
    }

    pub fn route(&self) -> Option<&crate::runtime::Route> {
        self.route.and_then(|i| self.snapshot.routes.get(i))
    }
}
