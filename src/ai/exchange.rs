//! The narrow interface between the proxy and the AI gateway: what an AI
//! handler may read of the request it serves, and what it reports back for
//! the access log. The proxy builds one from its request context, and copies
//! the report back when the handler returns.

use super::handler::AiCall;
use crate::error::GatewayError;
use crate::serve::respond::ResponseContext;
use pingora_http::{RequestHeader, ResponseHeader};

/// One AI request as its handler sees it.
pub(crate) struct AiExchange<'a> {
    /// The request id: response ids, error bodies and `x-request-id`.
    pub request_id: &'a str,
    /// Usage, cost and budgets are counted under this consumer.
    pub consumer: &'a str,
    /// Adds the route's response headers (CORS, rate limits) to a response
    /// the handler writes whole.
    pub decorate: &'a (dyn Fn(&RequestHeader, &mut ResponseHeader) + Sync),
    /// The call made, set by the handler.
    pub call: Option<AiCall>,
    /// Why the request failed, set by the handler.
    pub failure: Option<GatewayError>,
    /// The route's call log captures bodies up to this many bytes.
    pub capture_max: Option<usize>,
    /// The request body as read, when captured (a reference-counted view of
    /// the bytes already read, not a copy).
    pub request_body: Option<bytes::Bytes>,
    /// The response body as written (its first `capture_max` bytes), when
    /// captured: a whole answer, or a stream's events.
    pub response_body: std::sync::OnceLock<bytes::Bytes>,
}

impl ResponseContext for AiExchange<'_> {
    fn request_id(&self) -> &str {
        self.request_id
    }

    fn decorate(&self, req: &RequestHeader, resp: &mut ResponseHeader) {
        (self.decorate)(req, resp);
    }

    fn keep_body(&self, body: &bytes::Bytes) {
        if let Some(max) = self.capture_max {
            let _ = self.response_body.set(body.slice(..body.len().min(max)));
        }
    }
}
