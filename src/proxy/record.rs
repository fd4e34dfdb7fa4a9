//! The end of a request: metrics and the access-log line.

use super::context::RequestCtx;
use super::Gateway;
use crate::snapshot::RouteAction;
use crate::telemetry::access_log::{AccessRecord, AiFields};
use crate::telemetry::metrics::UNROUTED;
use pingora_core::Error;
use pingora_proxy::Session;

impl Gateway {
    /// Metrics and the access-log line for a finished request.
    pub(super) fn record(&self, session: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        let status = session.response_written().map(|r| r.status).or_else(|| {
            ctx.failure
                .error
                .and_then(|f| http::StatusCode::from_u16(f.status()).ok())
        });
        let req = session.req_header();
        let route = ctx.route();
        let elapsed = ctx.start.elapsed();
        let metrics = route.map_or(&*UNROUTED, |r| &r.metrics);
        metrics.requests.inc(&req.method, status.map_or(0, |s| s.as_u16()));
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
            status: status.map_or(0, |s| s.as_u16()),
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            upstream_ms: ctx.upstream.time.map(|t| t.as_secs_f64() * 1000.0),
            error: ctx.failure.error.map(|f| f.kind()).or_else(|| e.map(|_| "error")),
            ai: ctx.ai_call.as_ref().map(|c| {
                Box::new(AiFields {
                    model: c.model.clone(),
                    provider: c.provider.clone(),
                    provider_model: c.provider_model.clone(),
                    prompt_tokens: c.usage.prompt_tokens,
                    completion_tokens: c.usage.completion_tokens,
                    cached_tokens: c.usage.cached_tokens,
                    cost_usd: c.cost_usd,
                })
            }),
        });
    }
}
