//! The ProxyHttp implementation. It orchestrates the request path from
//! DESIGN.md; routing, selection and header rules live in their own modules.

mod context;
mod errors;
mod forward;
mod headers;
mod record;
mod respond;

pub use context::RequestCtx;
pub use errors::{error_body, GatewayError};
pub use headers::{header_size, new_request_id};
pub(crate) use respond::{respond, respond_error, respond_rejection};

use crate::config::{EncodedSlashes, HashOn};
use crate::policy::{RequestView, Step};
use crate::router::RouteLookup;
use crate::runtime::{RouteAction, SharedSnapshot};
use crate::telemetry::access_log::AccessLog;
use crate::upstream::InflightGuard;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

pub struct Gateway {
    pub snapshot: SharedSnapshot,
    pub access_log: Option<AccessLog>,
}

impl Gateway {
    pub fn new(snapshot: SharedSnapshot, access_log: Option<AccessLog>) -> Gateway {
        Gateway { snapshot, access_log }
    }
}

pub(crate) fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip())
}

fn cookie_value<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii_start();
        let (k, v) = pair.split_at(pair.iter().position(|b| *b == b'=')?);
        (k == name.as_bytes()).then(|| &v[1..])
    })
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

    /// Assigns the request id before anything can fail.
    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        ctx.request_id = match session.req_header().headers.get("x-request-id") {
            Some(v) if headers::sane_request_id(v.as_bytes()) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            _ => headers::new_request_id(),
        };
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
            _ => (headers::header_size(session.req_header()), false),
        };
        if size > limit {
            ctx.failure = Some(GatewayError::HeadersTooLarge);
            return Error::e_explain(ErrorType::HTTPStatus(431), format!("request head of {size} bytes"));
        }
        if cl_with_te {
            // Both framings in one request is the shape of request smuggling (RFC 9112 6.1).
            ctx.failure = Some(GatewayError::BadRequest);
            return Error::e_explain(ErrorType::HTTPStatus(400), "Content-Length with Transfer-Encoding");
        }
        Ok(())
    }

    /// Routes the request, runs the route's policies, and answers 404/405,
    /// policy refusals and fixed responses here.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // A client never chooses its own consumer identity.
        let consumer_header = ctx.snapshot.consumer_header.clone();
        session.req_header_mut().remove_header(&consumer_header);
        let req = session.req_header();
        let raw_path = req.uri.path();
        if ctx.snapshot.limits.encoded_slashes == EncodedSlashes::Reject && crate::path::has_encoded_slash(raw_path) {
            respond_error(session, ctx, GatewayError::BadRequest, "encoded slash in path", None).await?;
            return Ok(true);
        }
        let mut path = crate::path::normalize(raw_path);
        if ctx.snapshot.limits.case_insensitive_paths && path.bytes().any(|b| b.is_ascii_uppercase()) {
            path = std::borrow::Cow::Owned(path.to_ascii_lowercase());
        }
        ctx.host = headers::request_host(
            req.headers.get(http::header::HOST).map(|v| v.as_bytes()),
            req.uri.authority().map(|a| a.as_str()),
        );
        let method = req.method.clone();
        let mut lookup = ctx.snapshot.router.lookup(&ctx.host, &path, &method);
        if let RouteLookup::MethodNotAllowed { .. } = lookup {
            // A CORS preflight is routed as the request it announces.
            if let Some(announced) = headers::preflight_method(req) {
                if let found @ RouteLookup::Found { .. } = ctx.snapshot.router.lookup(&ctx.host, &path, &announced) {
                    let route_has_cors = match &found {
                        RouteLookup::Found { route, .. } => ctx
                            .snapshot
                            .routes
                            .get(*route)
                            .is_some_and(|r| r.policies.cors().is_some()),
                        _ => false,
                    };
                    if route_has_cors {
                        lookup = found;
                    }
                }
            }
        }
        if let std::borrow::Cow::Owned(p) = path {
            ctx.normalized_path = Some(p);
        }
        match lookup {
            RouteLookup::Found { route, pattern } => {
                ctx.route = Some(route);
                ctx.pattern = pattern;
            }
            RouteLookup::NotFound => {
                let msg = format!("no route for {} {}", method, session.req_header().uri.path());
                respond_error(session, ctx, GatewayError::RouteNotFound, &msg, None).await?;
                return Ok(true);
            }
            RouteLookup::MethodNotAllowed { allow } => {
                let allow = allow.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
                let msg = format!("method {} not allowed for {}", method, session.req_header().uri.path());
                respond_error(
                    session,
                    ctx,
                    GatewayError::MethodNotAllowed,
                    &msg,
                    Some(("allow", allow)),
                )
                .await?;
                return Ok(true);
            }
        }
        let snapshot = ctx.snapshot.clone();
        let Some(route) = ctx.route.and_then(|i| snapshot.routes.get(i)) else {
            return Ok(false);
        };
        if !route.policies.is_empty() {
            let peer = client_ip(session);
            let req = session.req_header();
            let xff: Vec<&[u8]> = if snapshot.trusted_proxies.is_empty() {
                Vec::new()
            } else {
                req.headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect()
            };
            ctx.client_ip = crate::policy::ip::client_address(peer, &xff, &snapshot.trusted_proxies);
            let view = RequestView {
                req,
                client_ip: ctx.client_ip,
                host: &ctx.host,
                path: ctx.normalized_path.as_deref().unwrap_or(req.uri.path()),
                route: &route.name,
                consumers: &snapshot.consumers,
            };
            match Box::pin(route.policies.on_request(&view, &mut ctx.policy)).await {
                Step::Continue => {}
                Step::Reject(r) => {
                    ctx.failure = Some(r.error);
                    respond_rejection(session, ctx, r.error, &r.message, r.headers, None).await?;
                    return Ok(true);
                }
                Step::Reply(reply) => {
                    respond(session, ctx, reply.status, &reply.headers, reply.body).await?;
                    return Ok(true);
                }
            }
        }
        match &route.action {
            RouteAction::Respond(fixed) => {
                respond(session, ctx, fixed.status, &fixed.headers, fixed.body.clone()).await?;
                Ok(true)
            }
            RouteAction::Ai { models } => {
                let Some(ai) = snapshot.ai.clone() else {
                    return Error::e_explain(ErrorType::InternalError, "ai route without ai config");
                };
                let path = ctx
                    .normalized_path
                    .clone()
                    .unwrap_or_else(|| session.req_header().uri.path().to_string());
                // Boxed: the AI call's state would otherwise be in every request's future.
                Box::pin(crate::ai::handler::serve(session, ctx, &ai, models, &path)).await?;
                Ok(true)
            }
            RouteAction::Prompt(api) => {
                let Some(ai) = snapshot.ai.clone() else {
                    return Error::e_explain(ErrorType::InternalError, "prompt API without ai config");
                };
                Box::pin(crate::ai::prompt::serve(session, ctx, &ai, api)).await?;
                Ok(true)
            }
            RouteAction::Proxy { .. } => Ok(false),
        }
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
        let snapshot = ctx.snapshot.clone();
        let Some(route) = ctx.route.and_then(|i| snapshot.routes.get(i)) else {
            return Ok(());
        };
        if let Err(r) = route.policies.on_request_body(chunk.len(), &mut ctx.policy) {
            ctx.failure = Some(r.error);
            ctx.failure_message = Some(r.message);
            return Error::e_explain(ErrorType::HTTPStatus(r.error.status()), "request body over the limit");
        }
        Ok(())
    }

    /// Chooses a target among the pool's available ones, skipping those this
    /// request already tried.
    async fn upstream_peer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let snapshot = ctx.snapshot.clone();
        let route = ctx.route.and_then(|i| snapshot.routes.get(i));
        let Some(RouteAction::Proxy { pool, timeouts }) = route.map(|r| &r.action) else {
            return Error::e_explain(ErrorType::InternalError, "route has no upstream");
        };
        // The client address is the key, and the fallback when a header or cookie is missing.
        let mut ip_buf = [0u8; 16];
        let ip_key: &[u8] = match client_ip(session) {
            Some(std::net::IpAddr::V4(v4)) => {
                ip_buf[..4].copy_from_slice(&v4.octets());
                &ip_buf[..4]
            }
            Some(std::net::IpAddr::V6(v6)) => {
                ip_buf.copy_from_slice(&v6.octets());
                &ip_buf
            }
            None => &[],
        };
        let req = session.req_header();
        let key: &[u8] = match (&pool.hash_on, &pool.hash_header) {
            (HashOn::Path, _) => ctx.normalized_path.as_deref().unwrap_or(req.uri.path()).as_bytes(),
            (HashOn::Header, Some(name)) => req.headers.get(name).map_or(ip_key, |v| v.as_bytes()),
            (HashOn::Cookie, _) => req
                .headers
                .get(http::header::COOKIE)
                .and_then(|c| cookie_value(c.as_bytes(), &pool.hash_key))
                .unwrap_or(ip_key),
            _ => ip_key,
        };
        let Some(i) = pool.select(key, &ctx.tried) else {
            if ctx.failure.is_none() {
                ctx.failure = Some(GatewayError::NoHealthyUpstream);
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
        ctx.tried.push(i);
        ctx.current = Some((i, InflightGuard::new(target)));
        ctx.upstream_start = Some(std::time::Instant::now());
        Ok(Box::new(peer))
    }

    /// Path rewrite, Host, X-Forwarded-*, X-Request-Id, hop-by-hop removal.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(route) = ctx.route() else { return Ok(()) };
        let normalized = ctx.normalized_path.as_deref();
        let path = normalized.unwrap_or(up.uri.path());
        let new_path = forward::upstream_path(route, ctx.pattern, path);
        if let Some(p) = new_path.as_deref().or(normalized) {
            let pq = match up.uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p.to_string(),
            };
            if let Ok(uri) = pq.parse::<http::Uri>() {
                up.set_uri(uri);
            }
        }
        let upgrade = headers::is_upgrade(&up.headers);
        for name in headers::hop_by_hop_names(&up.headers, upgrade) {
            up.remove_header(&name);
        }
        let original_host = session
            .req_header()
            .headers
            .get(http::header::HOST)
            .cloned()
            .or_else(|| {
                session
                    .req_header()
                    .uri
                    .authority()
                    .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
            });
        if let Some(RouteAction::Proxy { pool, .. }) = ctx.route().map(|r| &r.action) {
            if let Some(h) = &pool.host_header {
                up.insert_header(http::header::HOST, h.clone())?;
            } else if !up.headers.contains_key(http::header::HOST) {
                if let Some(h) = &original_host {
                    up.insert_header(http::header::HOST, h.clone())?;
                }
            }
        }
        if let Some(ip) = client_ip(session) {
            let xff = forward::forwarded_for(up.headers.get("x-forwarded-for").map(|v| v.as_bytes()), &ip.to_string());
            up.insert_header("x-forwarded-for", xff)?;
        }
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        up.insert_header("x-forwarded-proto", if tls { "https" } else { "http" })?;
        if let Some(h) = original_host {
            up.insert_header("x-forwarded-host", h)?;
        }
        up.insert_header("x-request-id", ctx.request_id.as_str())?;
        if let Some(route) = ctx.route() {
            route
                .policies
                .on_upstream_request(up, &ctx.policy, &ctx.snapshot.consumer_header);
        }
        Ok(())
    }

    /// The target answered: it counts as a success for passive health.
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some((_, guard)) = &ctx.current {
            guard.target().record_success();
        }
        ctx.upstream_time = ctx.upstream_start.map(|t| t.elapsed());
        let keep_upgrade = resp.status == http::StatusCode::SWITCHING_PROTOCOLS;
        for name in headers::hop_by_hop_names(&resp.headers, keep_upgrade) {
            resp.remove_header(&name);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let snapshot = ctx.snapshot.clone();
        if let Some(route) = ctx.route.and_then(|i| snapshot.routes.get(i)) {
            route.policies.on_response(session.req_header(), resp, &mut ctx.policy);
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        if crate::drain::draining() {
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
        if ctx.policy.cache_pending.is_some() {
            let snapshot = ctx.snapshot.clone();
            if let Some(route) = ctx.route.and_then(|i| snapshot.routes.get(i)) {
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
        self.note_failure(ctx, &e);
        let budget = ctx.route().map_or(0, |r| r.retries);
        if ctx.retries < budget {
            ctx.retries += 1;
            e.set_retry(true);
        } else {
            e.set_retry(false);
        }
        e
    }

    /// After connecting: retry only idempotent requests whose body can be
    /// replayed (pingora's rule), within the route's budget.
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
            self.note_failure(ctx, &e);
        }
        let budget = ctx.route().map_or(0, |r| r.retries);
        if !session.req_header().method.is_idempotent()
            || session.as_ref().retry_buffer_truncated()
            || ctx.retries >= budget
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
            if e.retry() {
                ctx.retries += 1;
            }
        }
        e
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.record(session, e, ctx);
        // Ends the in-flight count now rather than when the context drops.
        ctx.current = None;
    }

    /// Every failure reaches the client as the JSON error.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let classified = match e.etype() {
            // Statuses Portico raised itself carry their cause in ctx; a 503 after
            // retries ran out reports the last connect failure.
            ErrorType::HTTPStatus(_) if ctx.failure.is_some() => ctx.failure,
            _ => GatewayError::from_pingora(e),
        };
        let Some(err) = classified else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        let status = err.status();
        if session.response_written().is_none() {
            // The connection is not reused after a failure: say so in the response.
            session.set_keepalive(None);
            let msg = match err {
                GatewayError::NoHealthyUpstream => "no healthy upstream target".to_string(),
                GatewayError::UpstreamTimeout => "upstream timed out".to_string(),
                GatewayError::UpstreamConnect => "could not connect to upstream".to_string(),
                GatewayError::UpstreamReset => "upstream closed the connection".to_string(),
                GatewayError::BadRequest => "malformed request".to_string(),
                GatewayError::HeadersTooLarge => {
                    format!("request headers exceed {} bytes", ctx.snapshot.limits.max_header_bytes)
                }
                _ if ctx.failure_message.is_some() => ctx.failure_message.clone().unwrap_or_default(),
                _ => err.kind().replace('_', " "),
            };
            if let Err(write_err) = respond_error(session, ctx, err, &msg, None).await {
                log::debug!("could not send error response: {write_err}");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }
}

impl Gateway {
    /// Passive health: a failed attempt counts against its target, and the
    /// target is excluded from this request's further attempts.
    fn note_failure(&self, ctx: &mut RequestCtx, e: &Error) {
        ctx.failure = GatewayError::from_pingora(e).or(ctx.failure);
        let Some((_, guard)) = ctx.current.take() else { return };
        if let Some(RouteAction::Proxy { pool, .. }) = ctx.route().map(|r| &r.action) {
            guard
                .target()
                .record_failure(pool.passive.max_fails, pool.passive.cooldown_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cookie_value;

    #[test]
    fn cookies() {
        assert_eq!(cookie_value(b"a=1; sid=xyz; b=2", "sid"), Some(&b"xyz"[..]));
        assert_eq!(cookie_value(b"a=1", "sid"), None);
        assert_eq!(cookie_value(b"garbage", "sid"), None);
    }
}
