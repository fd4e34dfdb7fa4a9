//! The narrow interface between the proxy and an MCP route, as
//! [`crate::ai::exchange::AiExchange`] is for the AI gateway: what the MCP
//! server may read of the request it serves, and what it reports back for
//! the call's record. The MCP server never sees the proxy's context.

use crate::error::GatewayError;
use crate::serve::respond::ResponseContext;
use bytes::Bytes;
use pingora_http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One MCP request as its server sees it.
pub(crate) struct McpExchange<'a> {
    /// The request id: `x-request-id` and error bodies.
    pub request_id: &'a str,
    /// Adds the route's response headers (CORS, rate limits).
    pub decorate: &'a (dyn Fn(&RequestHeader, &mut ResponseHeader) + Sync),
    /// The client's address (for `consistent_hash` on the client address).
    pub client_ip: Option<IpAddr>,
    /// The route has a CORS policy: it decides which browser origins may
    /// call, so the MCP server's own Origin check stands aside.
    pub cors: bool,
    /// Headers every tool call sends upstream: Host, `X-Forwarded-*`,
    /// `X-Request-Id`, the consumer header and the route's request
    /// transforms, as a proxied request of the route would carry.
    pub upstream_headers: http::HeaderMap,
    /// The route's call log captures bodies up to this many bytes.
    pub capture_max: Option<usize>,
    /// What the call did, for its record.
    pub report: McpReport,
    /// The response body as written, when captured.
    pub response_body: std::sync::OnceLock<Bytes>,
}

/// What an MCP request did, for the access log and the call log.
#[derive(Debug, Default)]
pub(crate) struct McpReport {
    /// The tools called (a batch may call several).
    pub tools: Vec<Arc<str>>,
    /// The upstream targets tried, in order (indexes into the pool).
    pub tried: Vec<usize>,
    /// Attempts after a tool call's first (another target after a failure
    /// to connect), over all the request's calls.
    pub retries: u32,
    /// From sending the last upstream attempt to its answer's head.
    pub upstream_time: Option<Duration>,
    /// Why a tool call got no answer from the upstream.
    pub failure: Option<GatewayError>,
    /// The request body as read, when captured.
    pub request_body: Option<Bytes>,
}

impl ResponseContext for McpExchange<'_> {
    fn request_id(&self) -> &str {
        self.request_id
    }

    fn decorate(&self, req: &RequestHeader, resp: &mut ResponseHeader) {
        (self.decorate)(req, resp);
    }

    fn keep_body(&self, body: &Bytes) {
        if let Some(max) = self.capture_max {
            let _ = self.response_body.set(body.slice(..body.len().min(max)));
        }
    }
}
