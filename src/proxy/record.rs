//! The end of a request: metrics and the access-log line.

use super::context::RequestCtx;
use super::Gateway;
use crate::error::GatewayError;
use crate::snapshot::RouteAction;
use crate::telemetry::access_log::{AccessRecord, AiFields};
use crate::telemetry::metrics::UNROUTED;
use pingora_core::Error;
use pingora_proxy::Session;

impl Gateway {
    /// Metrics and the access-log line for a finished request.
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
            _ => None,
        };
        if let (Some(pool), Some(t)) = (pool, ctx.upstream.time) {
            pool.upstream_duration.observe(t.as_secs_f64());
        }
        let Some(log) = &self.access_log else { return };
        let target = ctx
            .upstream
            .tried
            .last()
            .and_then(|&i| pool.and_then(|p| p.targets.get(i)))
            .map(|t| t.label.clone());
        log.log(AccessRecord {
            time: std::time::SystemTime::now(),
            request_id: ctx.request_id.clone(),
            client_ip: ctx.client.addr,
            method: req.method.clone(),
            host: ctx.routing.host.clone(),
            path: req.uri.path().to_string(),
            route: route.map(|r| r.name.clone()).unwrap_or_default(),
            consumer: ctx.policy.consumer_name().map(str::to_string),
            upstream: pool.map(|p| p.name.clone()),
            target,
            status,
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            upstream_ms: ctx.upstream.time.map(|t| t.as_secs_f64() * 1000.0),
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
        });
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
