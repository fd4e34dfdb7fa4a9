//! The upstream attempts of a proxied request: choosing a target (skipping
//! those this request already tried), counting failures for passive health,
//! and deciding whether a failed attempt is retried.

use super::context::RequestCtx;
use crate::error::GatewayError;
use crate::snapshot::RouteAction;
use crate::upstream::InflightGuard;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_proxy::Session;

/// Chooses a target among the pool's available ones for this attempt.
pub(super) fn select_peer(session: &Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    let snapshot = ctx.snapshot.clone();
    let route = ctx.routing.route.and_then(|i| snapshot.routes.get(i));
    let Some(RouteAction::Proxy { pool, timeouts }) = route.map(|r| &r.action) else {
        return Error::e_explain(ErrorType::InternalError, "route has no upstream");
    };
    let req = session.req_header();
    let mut ip_buf = [0u8; 16];
    let key = pool.hash_input(req, ctx.path(req), ctx.client.addr, &mut ip_buf);
    let Some(i) = pool.select(key, &ctx.upstream.tried) else {
        if ctx.failure.error.is_none() {
            ctx.fail(GatewayError::NoHealthyUpstream);
        }
        return Error::e_explain(
            ErrorType::HTTPStatus(503),
            format!("no available target in upstream {}", pool.name),
        );
    };
    let target = pool.targets[i].clone();
    let mut peer = target.peer.clone();
    peer.group_key = crate::upstream::peer::thread_group(peer.group_key);
    if let Some(t) = timeouts {
        t.apply(&mut peer);
    }
    let attempt = &mut ctx.upstream;
    attempt.tried.push(i);
    attempt.current = Some(InflightGuard::new(target));
    attempt.started = Some(std::time::Instant::now());
    Ok(Box::new(peer))
}

/// The target answered: a success for passive health.
pub(super) fn answered(ctx: &mut RequestCtx) {
    if let Some(guard) = &ctx.upstream.current {
        guard.target().record_success();
    }
    ctx.upstream.time = ctx.upstream.started.map(|t| t.elapsed());
}

/// Passive health: a failed attempt counts against its target, and the
/// target is excluded from this request's further attempts.
pub(super) fn note_failure(ctx: &mut RequestCtx, e: &Error) {
    ctx.failure.error = GatewayError::from_pingora(e).or(ctx.failure.error);
    let Some(guard) = ctx.upstream.current.take() else {
        return;
    };
    if let Some(RouteAction::Proxy { pool, .. }) = ctx.route().map(|r| &r.action) {
        pool.record_failure(guard.target());
    }
}

/// A connection to the target failed: retry on another while the route allows.
pub(super) fn retry_connect(ctx: &mut RequestCtx, e: &mut Error) {
    let budget = ctx.route().map_or(0, |r| r.retries);
    if ctx.upstream.retries < budget {
        ctx.upstream.retries += 1;
        e.set_retry(true);
    } else {
        e.set_retry(false);
    }
}

/// After connecting: retry only idempotent requests whose body can be
/// replayed (Pingora's rule), within the route's budget.
pub(super) fn retry_after_connect(session: &Session, ctx: &mut RequestCtx, e: &mut Error, client_reused: bool) {
    let budget = ctx.route().map_or(0, |r| r.retries);
    if !session.req_header().method.is_idempotent()
        || session.as_ref().retry_buffer_truncated()
        || ctx.upstream.retries >= budget
    {
        e.set_retry(false);
    } else {
        e.retry.decide_reuse(client_reused);
        if e.retry() {
            ctx.upstream.retries += 1;
        }
    }
}
