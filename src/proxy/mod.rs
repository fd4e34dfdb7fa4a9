//! The ProxyHttp implementation: it orchestrates the request path of
//! `docs/ARCHITECTURE.md` and does little itself. Each hook reads the
//! request's snapshot from its context and hands the work to the module
//! that owns it: routing and policies ([`route`]), target choice and retries
//! ([`upstream`]), upstream headers ([`forward`]), error answers
//! ([`failure`]) and the access log ([`record`]).

mod client;
mod context;
mod failure;
mod forward;
mod headers;
mod record;
mod route;
mod upstream;

#[cfg(test)]
mod future_sizes_tests;

pub(crate) use context::RequestCtx;

use crate::calllog::CallLog;
use crate::error::GatewayError;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::access_log::AccessLog;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

/// The gateway: the running snapshot and where finished requests are logged.
pub(crate) struct Gateway {
    snapshot: SharedSnapshot,
    access_log: Option<AccessLog>,
    call_log: Option<CallLog>,
    /// Calls at least this slow keep their raw record whatever the sampling.
    slow_call: std::time::Duration,
}

impl Gateway {
    /// A gateway serving whatever `snapshot` holds at each request's start.
    pub(crate) fn new(snapshot: SharedSnapshot, access_log: Option<AccessLog>) -> Gateway {
        Gateway {
            snapshot,
            access_log,
            call_log: None,
            slow_call: std::time::Duration::MAX,
        }
    }

    /// Records every call in `log` too; calls at least `slow` long are kept
    /// whatever a route's sampling.
    pub(crate) fn with_call_log(mut self, log: Option<CallLog>, slow: std::time::Duration) -> Gateway {
        self.call_log = log;
        self.slow_call = slow;
        self
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.snapshot.load_full())
    }

    /// No downstream modules. Pingora's default is a response compression
    /// module left switched off, which still builds its context and runs its
    /// filters on every request; Portico does not compress responses.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    /// Assigns the request id and the client address before anything can
    /// fail, and refuses oversized or ambiguously framed heads.
    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        ctx.request_id = match session.req_header().headers.get(&headers::X_REQUEST_ID) {
            Some(v) if crate::error::sane_request_id(v.as_bytes()) => {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            }
            _ => crate::telemetry::clock::new_request_id(),
        };
        ctx.client = client::client(session, &ctx.snapshot);
        let limit = ctx.snapshot.limits.max_header_bytes;
        let (size, cl_with_te) = match session.as_downstream() {
            // HTTP/1: the bytes as received; Pingora drops Content-Length when
            // Transfer-Encoding is present, so only the raw head shows both.
            pingora_core::protocols::http::ServerSession::H1(h1) => {
                let raw = h1.get_headers_raw_bytes();
                let te = session
                    .req_header()
                    .headers
                    .contains_key(http::header::TRANSFER_ENCODING);
                (raw.len(), te && headers::raw_has_header(&raw, b"content-length"))
            }
            _ => (crate::policy::traffic::size::header_size(session.req_header()), false),
        };
        if size > limit {
            ctx.fail(GatewayError::HeadersTooLarge);
            return Error::e_explain(ErrorType::HTTPStatus(431), format!("request head of {size} bytes"));
        }
        if cl_with_te {
            // Both framings in one request is the shape of request smuggling (RFC 9112 6.1).
            ctx.fail(GatewayError::BadRequest);
            return Error::e_explain(ErrorType::HTTPStatus(400), "Content-Length with Transfer-Encoding");
        }
        Ok(())
    }

    /// Routes the request, runs the route's policies, and answers 404/405,
    /// policy refusals, fixed responses and the AI APIs here.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        route::route_request(session, ctx).await
    }

    /// Counts the body against the route's size limit as it streams.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(chunk) = body else { return Ok(()) };
        record::collect(ctx, chunk, true);
        let snapshot = ctx.snapshot.clone();
        let Some(route) = ctx.routing.route.and_then(|i| snapshot.routes.get(i)) else {
            return Ok(());
        };
        if let Err(r) = route.policies.on_request_body(chunk.len(), &mut ctx.policy) {
            ctx.fail(r.error);
            ctx.failure.message = Some(r.message);
            return Error::e_explain(ErrorType::HTTPStatus(r.error.status()), "request body over the limit");
        }
        Ok(())
    }

    /// Chooses a target among the pool's available ones, skipping those this
    /// request already tried.
    async fn upstream_peer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        upstream::select_peer(session, ctx)
    }

    /// Path rewrite, Host, X-Forwarded-*, X-Request-Id, hop-by-hop removal.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        forward::upstream_request(session, up, ctx)
    }

    /// The target answered: it counts as a success for passive health.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream::answered(ctx);
        let keep_upgrade = resp.status == http::StatusCode::SWITCHING_PROTOCOLS;
        for name in headers::hop_by_hop_names(&resp.headers, keep_upgrade) {
            resp.remove_header(&name);
        }
        Ok(())
    }

    /// The route's response headers (CORS, rate limits, cache) and the request id.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let snapshot = ctx.snapshot.clone();
        if let Some(route) = ctx.routing.route.and_then(|i| snapshot.routes.get(i)) {
            route.policies.on_response(session.req_header(), resp, &mut ctx.policy);
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        if crate::serve::drain::draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// Feeds a response being cached.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(chunk) = body {
            record::collect(ctx, chunk, false);
        }
        if ctx.policy.cache_pending.is_some() {
            let snapshot = ctx.snapshot.clone();
            if let Some(route) = ctx.routing.route.and_then(|i| snapshot.routes.get(i)) {
                route.policies.on_response_body(body, end_of_stream, &mut ctx.policy);
            }
        }
        Ok(None)
    }

    /// Marks the target and retries on another one while the route allows.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        upstream::note_failure(ctx, &e);
        upstream::retry_connect(ctx, &mut e);
        e
    }

    /// After connecting: retry only idempotent requests whose body can be
    /// replayed (Pingora's rule), within the route's budget.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if e.esource() == &pingora_core::ErrorSource::Upstream {
            upstream::note_failure(ctx, &e);
        }
        upstream::retry_after_connect(session, ctx, &mut e, client_reused);
        e
    }

    /// Metrics and the access-log line.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.record(session, e, ctx);
        // Ends the in-flight count now rather than when the context drops.
        ctx.upstream.current = None;
    }

    /// Every failure reaches the client as the JSON error.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        failure::answer_failure(session, e, ctx).await
    }
}
