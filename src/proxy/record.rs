//! The end of a request: metrics, and the call's record for the access log
//! and the call log (built once, shared by both).

use super::context::RequestCtx;
use super::Gateway;
use crate::calllog::capture::Collected;
use crate::error::GatewayError;
use crate::snapshot::{Route, RouteAction};
use crate::telemetry::call::{AiFields, CallRecord};
use crate::telemetry::metrics::UNROUTED;
use pingora_core::Error;
use pingora_proxy::Session;
use std::sync::Arc;

impl Gateway {
    /// Metrics and the record of a finished request.
    pub(super) fn record(&self, session: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        let (status, error) = outcome(session, e, ctx);
        let req = session.req_header();
        let route = ctx.route();
        let elapsed = ctx.start.elapsed();
        let metrics = route.map_or(&*UNROUTED, |r| &r.metrics);
        metrics.requests.inc(&req.method, status);
        metrics.duration.observe(elapsed.as_secs_f64());
        let pool = match route.map(|r| &r.action) {
            Some(RouteAction::Proxy { pool, .. }) => Some(pool),
            Some(RouteAction::Mcp(server)) => Some(&server.caller.pool),
            _ => None,
        };
        if let (Some(pool), Some(t)) = (pool, ctx.upstream.time) {
            pool.upstream_duration.observe(t.as_secs_f64());
        }
        if self.access_log.is_none() && self.call_log.is_none() {
            return;
        }
        let target = ctx
            .upstream
            .tried
            .last()
            .and_then(|&i| pool.and_then(|p| p.targets.get(i)))
            .map(|t| t.label.clone());
        let identity = ctx.policy.identity.as_ref();
        let consumer = identity
            .and_then(|i| i.consumer)
            .and_then(|i| ctx.snapshot.consumers.get(i));
        let credential = identity
            .and_then(|i| i.credential)
            .and_then(|c| ctx.snapshot.consumers.credential_id(c))
            .cloned();
        let call = route.map(|r| &r.call);
        let mut rec = CallRecord {
            // The time of the last tick, as nginx logs its cached time.
            time: crate::telemetry::clock::coarse_realtime(),
            request_id: ctx.request_id.clone(),
            client_ip: ctx.client.addr,
            method: req.method.clone(),
            host: ctx.routing.host.clone(),
            path: req.uri.path().to_string(),
            route: call.map_or_else(|| Arc::from(""), |c| c.name.clone()),
            service: call.and_then(|c| c.service.clone()),
            service_team: call.and_then(|c| c.service_team.clone()),
            consumer: identity.map(|i| i.name.clone()),
            team: consumer.and_then(|c| c.team.clone()),
            credential,
            upstream: pool.map(|p| p.name.clone()),
            target,
            status,
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            duration: elapsed,
            upstream_time: ctx.upstream.time,
            retries: ctx.upstream.retries,
            error,
            ai: ctx.ai_call.as_ref().map(|c| {
                Box::new(AiFields {
                    model: c.model.clone(),
                    provider: c.provider.clone(),
                    provider_model: c.provider_model.clone(),
                    prompt_tokens: c.usage.prompt_tokens,
                    completion_tokens: c.usage.completion_tokens,
                    cached_tokens: c.usage.cached_tokens,
                    cost_usd: c.cost_usd,
                    usage_estimated: c.usage_estimated,
                    unpriced: c.unpriced,
                    attempts: c.attempts,
                    cache: c.cache_hit.then_some("hit"),
                })
            }),
            mcp_tool: ctx.mcp_tool.clone(),
            capture: None,
            keep: true,
        };
        if let (Some(_), Some(route)) = (&self.call_log, route) {
            rec.keep = self.keeps(route, &rec);
            if let Some(capture) = route.call.policy.capture.as_deref() {
                let out = capture.finish(
                    Some(&req.headers),
                    session.response_written().map(|r| &r.headers),
                    ctx.collected.as_deref(),
                    &ctx.policy.strip_headers,
                );
                rec.capture = Some(Box::new(out));
            }
        }
        let rec = Arc::new(rec);
        if let Some(log) = &self.call_log {
            log.record(rec.clone());
        }
        if let Some(log) = &self.access_log {
            log.log(rec);
        }
    }

    /// Whether the call keeps its raw record: errors, slow calls and AI
    /// calls always; the rest by the route's sampling.
    fn keeps(&self, route: &Route, rec: &CallRecord) -> bool {
        let always = rec.status >= 400 || rec.error.is_some() || rec.ai.is_some() || rec.duration >= self.slow_call;
        route.call.policy.keeps(&rec.request_id, always)
    }
}

/// Keeps what of a body chunk the route captures.
pub(super) fn collect(ctx: &mut RequestCtx, chunk: &[u8], request: bool) {
    let Some(capture) = ctx.route().and_then(|r| r.call.policy.capture.as_ref()) else {
        return;
    };
    if !capture.bodies {
        return;
    }
    let cap = capture.max_body;
    let c = ctx.collected.get_or_insert_with(|| Box::new(Collected::default()));
    if request {
        c.request_body.push(chunk, cap);
    } else {
        c.response_body.push(chunk, cap);
    }
}

/// Status 499, nginx's convention for a client that went away before its
/// response was complete.
const CLIENT_CLOSED: u16 = 499;

/// The status and error name a finished request is counted and logged with.
/// A client that left early is 499 `client_closed`, whatever had been
/// written; otherwise the status written (or the one Portico decided) and
/// the cause of any failure, such as `upstream_reset` for an upstream that
/// hung up mid-response.
fn outcome(session: &Session, e: Option<&Error>, ctx: &RequestCtx) -> (u16, Option<&'static str>) {
    let decided = ctx.failure.error;
    let written = session.response_written().map(|r| r.status.as_u16());
    let Some(e) = e else {
        return (
            written.or(decided.map(|f| f.status())).unwrap_or(0),
            decided.map(|f| f.kind()),
        );
    };
    match GatewayError::from_pingora(e) {
        None => (CLIENT_CLOSED, Some("client_closed")),
        Some(cause) => {
            let error = decided.unwrap_or(cause);
            (written.unwrap_or(error.status()), Some(error.kind()))
        }
    }
}
