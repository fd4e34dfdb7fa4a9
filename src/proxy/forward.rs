//! What the upstream receives: the path after normalisation, strip_prefix or
//! rewrite, and the forwarding headers.

use super::context::RequestCtx;
use super::headers;
use crate::router::PathPattern;
use crate::snapshot::{Route, RouteAction};
use http::HeaderValue;
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// Path rewrite, Host, X-Forwarded-*, X-Request-Id, hop-by-hop removal, and
/// the route's policies' upstream edits (credentials removed, consumer set).
pub(super) fn upstream_request(session: &Session, up: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let Some(route) = ctx.route() else { return Ok(()) };
    let normalized = ctx.routing.normalized_path.as_deref();
    let path = normalized.unwrap_or(up.uri.path());
    let new_path = upstream_path(route, ctx.routing.pattern, path);
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
    let client_req = session.req_header();
    let original_host = client_req.headers.get(http::header::HOST).cloned().or_else(|| {
        client_req
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    if let RouteAction::Proxy { pool, .. } = &route.action {
        if let Some(h) = &pool.host_header {
            up.insert_header(http::header::HOST, h.clone())?;
        } else if !up.headers.contains_key(http::header::HOST) {
            if let Some(h) = &original_host {
                up.insert_header(http::header::HOST, h.clone())?;
            }
        }
    }
    // Each hop appends the address it was connected from.
    if let Some(ip) = ctx.client.peer {
        let existing = up.headers.get(&headers::X_FORWARDED_FOR).map(|v| v.as_bytes());
        if let Some(xff) = forwarded_for(existing, ip) {
            up.insert_header("x-forwarded-for", xff)?;
        }
    }
    up.insert_header("x-forwarded-proto", forwarded_proto(session))?;
    if let Some(h) = original_host {
        up.insert_header("x-forwarded-host", h)?;
    }
    up.insert_header("x-request-id", ctx.request_id.as_str())?;
    route
        .policies
        .on_upstream_request(up, &ctx.policy, &ctx.snapshot.consumer_header);
    Ok(())
}

/// The headers an MCP route's tool calls send upstream, as a proxied
/// request of the route would carry them: Host (the upstream's
/// `host_header`, else the client's), `X-Forwarded-*`, `X-Request-Id`, the
/// consumer header and the route's request transforms. None of the client's
/// own headers (its credentials among them) goes along.
pub(super) fn mcp_headers(
    session: &Session,
    ctx: &RequestCtx,
    route: &Route,
    pool: &crate::upstream::UpstreamPool,
) -> http::HeaderMap {
    let Ok(mut up) = RequestHeader::build("POST", b"/", None) else {
        return http::HeaderMap::new();
    };
    let client_req = session.req_header();
    let original_host = client_req.headers.get(http::header::HOST).cloned().or_else(|| {
        client_req
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    if let Some(h) = pool.host_header.clone().or_else(|| original_host.clone()) {
        let _ = up.insert_header(http::header::HOST, h);
    }
    if let Some(ip) = ctx.client.peer {
        let existing = client_req.headers.get(&headers::X_FORWARDED_FOR).map(|v| v.as_bytes());
        if let Some(xff) = forwarded_for(existing, ip) {
            let _ = up.insert_header("x-forwarded-for", xff);
        }
    }
    let _ = up.insert_header("x-forwarded-proto", forwarded_proto(session));
    if let Some(h) = original_host {
        let _ = up.insert_header("x-forwarded-host", h);
    }
    let _ = up.insert_header("x-request-id", ctx.request_id.as_str());
    route
        .policies
        .on_upstream_request(&mut up, &ctx.policy, &ctx.snapshot.consumer_header);
    up.headers.clone()
}

/// The path sent upstream for `path` (already normalised) matched by pattern `pattern`.
pub(super) fn upstream_path(route: &Route, pattern: usize, path: &str) -> Option<String> {
    let pat = route.patterns.get(pattern)?;
    if let Some(template) = &route.rewrite {
        let caps = pat.captures(path).unwrap_or_default();
        let mut out = template.clone();
        for (name, value) in caps {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        return Some(out);
    }
    if route.strip_prefix {
        if let PathPattern::Prefix(prefix) = pat {
            let rest = path.strip_prefix(prefix.as_str()).unwrap_or(path);
            return Some(if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("/{rest}")
            });
        }
    }
    None
}

/// X-Forwarded-For: `ip` appended to an existing value.
fn forwarded_for(existing: Option<&[u8]>, ip: IpAddr) -> Option<HeaderValue> {
    match existing.and_then(|v| std::str::from_utf8(v).ok()) {
        Some(prev) if !prev.trim().is_empty() => HeaderValue::from_str(&format!("{prev}, {ip}")).ok(),
        _ => headers::ip_value(ip),
    }
}

/// X-Forwarded-Proto: the scheme the client connected with.
fn forwarded_proto(session: &Session) -> HeaderValue {
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    HeaderValue::from_static(if tls { "https" } else { "http" })
}
