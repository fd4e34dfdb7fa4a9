//! `request_filter`'s steps, in order: drop a client-sent consumer header,
//! refuse encoded slashes, normalise the path, find the route (a CORS
//! preflight is routed as the request it announces), run the route's
//! policies, and act: answer a fixed response, serve the AI or prompt API
//! or MCP, or let Pingora proxy. Each step that answers the client returns `true`.

use super::context::RequestCtx;
use super::headers;
use crate::ai::exchange::AiExchange;
use crate::ai::prompt::PromptApi;
use crate::config::EncodedSlashes;
use crate::error::GatewayError;
use crate::mcp::exchange::{McpExchange, McpReport};
use crate::policy::{RequestView, Step};
use crate::router::{path, RouteLookup};
use crate::serve::respond::{respond, respond_error};
use crate::snapshot::{Route, RouteAction, Snapshot};
use http::{HeaderValue, Method};
use pingora_core::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::borrow::Cow;

/// Runs the steps; true when the request was answered here.
pub(super) async fn route_request(session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
    // A client never chooses its own consumer identity.
    session.req_header_mut().remove_header(&ctx.snapshot.consumer_header);
    if let Some(answered) = find_route(session, ctx).await? {
        return Ok(answered);
    }
    let snapshot = ctx.snapshot.clone();
    let Some(route) = ctx.routing.route.and_then(|i| snapshot.routes.get(i)) else {
        return Ok(false);
    };
    if run_policies(session, ctx, route).await? {
        return Ok(true);
    }
    act(session, ctx, &snapshot, route).await
}

/// Normalises the path and looks the route up; `Some(true)` when the
/// request was refused (400, 404, 405).
async fn find_route(session: &mut Session, ctx: &mut RequestCtx) -> Result<Option<bool>> {
    let limits = ctx.snapshot.limits;
    let req = session.req_header();
    let raw_path = req.uri.path();
    if limits.encoded_slashes == EncodedSlashes::Reject {
        // A raw backslash is a slash to IIS and some Java and Node servers.
        let problem = if path::has_encoded_slash(raw_path) {
            Some("encoded slash in path")
        } else {
            raw_path.contains('\\').then_some("backslash in path")
        };
        if let Some(problem) = problem {
            respond_error(session, ctx, GatewayError::BadRequest, problem, Vec::new()).await?;
            return Ok(Some(true));
        }
    }
    let mut normalized = path::normalize(raw_path);
    if limits.case_insensitive_paths && normalized.bytes().any(|b| b.is_ascii_uppercase()) {
        normalized = Cow::Owned(normalized.to_ascii_lowercase());
    }
    ctx.routing.host = headers::request_host(
        req.headers.get(http::header::HOST).map(|v| v.as_bytes()),
        req.uri.authority().map(|a| a.as_str()),
    );
    let method = req.method.clone();
    let lookup = lookup(ctx, req, &normalized, &method);
    if let Cow::Owned(p) = normalized {
        ctx.routing.normalized_path = Some(p);
    }
    match lookup {
        RouteLookup::Found { route, pattern } => {
            ctx.routing.route = Some(route);
            ctx.routing.pattern = pattern;
            Ok(None)
        }
        RouteLookup::NotFound => {
            let msg = format!("no route for {} {}", method, session.req_header().uri.path());
            respond_error(session, ctx, GatewayError::RouteNotFound, &msg, Vec::new()).await?;
            Ok(Some(true))
        }
        RouteLookup::MethodNotAllowed { allow } => {
            let allow = allow.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            let msg = format!("method {} not allowed for {}", method, session.req_header().uri.path());
            let mut extra = Vec::new();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                extra.push((http::header::ALLOW, v));
            }
            respond_error(session, ctx, GatewayError::MethodNotAllowed, &msg, extra).await?;
            Ok(Some(true))
        }
    }
}

/// The router's answer; a CORS preflight for a method the path does not
/// take is routed as the request it announces, when that route has CORS.
fn lookup(ctx: &RequestCtx, req: &RequestHeader, path: &str, method: &Method) -> RouteLookup {
    let router = &ctx.snapshot.router;
    let lookup = router.lookup(&ctx.routing.host, path, method);
    if !matches!(lookup, RouteLookup::MethodNotAllowed { .. }) {
        return lookup;
    }
    let Some(announced) = headers::preflight_method(req) else {
        return lookup;
    };
    match router.lookup(&ctx.routing.host, path, &announced) {
        found @ RouteLookup::Found { route, .. } => {
            let has_cors = ctx
                .snapshot
                .routes
                .get(route)
                .is_some_and(|r| r.policies.cors().is_some());
            if has_cors {
                found
            } else {
                lookup
            }
        }
        _ => lookup,
    }
}

/// The route's policy chain; true when a step answered (a refusal, a
/// preflight, a cache hit).
async fn run_policies(session: &mut Session, ctx: &mut RequestCtx, route: &Route) -> Result<bool> {
    if route.policies.is_empty() {
        return Ok(false);
    }
    let req = session.req_header();
    let view = RequestView {
        req,
        client_ip: ctx.client.addr,
        host: &ctx.routing.host,
        path: ctx.routing.normalized_path.as_deref().unwrap_or(req.uri.path()),
        route: &route.name,
        consumers: &ctx.snapshot.consumers,
    };
    match Box::pin(route.policies.on_request(&view, &mut ctx.policy)).await {
        Step::Continue => Ok(false),
        Step::Reject(r) => {
            ctx.fail(r.error);
            respond_error(session, ctx, r.error, &r.message, r.headers).await?;
            Ok(true)
        }
        Step::Reply(reply) => {
            respond(session, ctx, reply.status, &reply.headers, reply.body).await?;
            Ok(true)
        }
    }
}

/// What the route does; true when answered here rather than proxied.
async fn act(session: &mut Session, ctx: &mut RequestCtx, snapshot: &Snapshot, route: &Route) -> Result<bool> {
    match &route.action {
        RouteAction::Respond(fixed) => {
            respond(session, ctx, fixed.status, &fixed.headers, fixed.body.clone()).await?;
            Ok(true)
        }
        RouteAction::Ai { models, cache } => {
            let path = ctx.path(session.req_header()).to_string();
            let endpoint = AiEndpoint::Api {
                models,
                cache: cache.as_deref(),
                path: &path,
            };
            serve_ai(session, ctx, snapshot, route, endpoint).await
        }
        RouteAction::Prompt(api) => serve_ai(session, ctx, snapshot, route, AiEndpoint::Prompt(api)).await,
        RouteAction::Mcp(server) => Box::pin(serve_mcp(session, ctx, route, server)).await,
        RouteAction::Proxy { .. } => Ok(false),
    }
}

/// Hands the request to the route's MCP server through its narrow
/// interface, and takes back what it reports for the call's record.
async fn serve_mcp(
    session: &mut Session,
    ctx: &mut RequestCtx,
    route: &Route,
    server: &crate::mcp::McpServer,
) -> Result<bool> {
    let upstream_headers = super::forward::mcp_headers(session, ctx, route, &server.caller.pool);
    let decorate = |req: &RequestHeader, resp: &mut ResponseHeader| route.policies.decorate(req, resp, &ctx.policy);
    let mut exchange = McpExchange {
        request_id: &ctx.request_id,
        decorate: &decorate,
        client_ip: ctx.client.addr,
        cors: route.policies.cors().is_some(),
        upstream_headers,
        capture_max: route
            .call
            .policy
            .capture
            .as_ref()
            .filter(|c| c.bodies)
            .map(|c| c.max_body),
        report: McpReport::default(),
        response_body: std::sync::OnceLock::new(),
    };
    let served = crate::mcp::handler::serve(session, &mut exchange, server).await;
    let McpExchange {
        report, response_body, ..
    } = exchange;
    if let Some(body) = &report.request_body {
        super::record::collect(ctx, body, true);
    }
    if let Some(body) = response_body.into_inner() {
        super::record::collect(ctx, &body, false);
    }
    ctx.upstream.tried = report.tried;
    ctx.upstream.retries = report.retries;
    ctx.upstream.time = report.upstream_time;
    ctx.mcp_tool = match report.tools.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(many.join(",").into()),
    };
    if report.failure.is_some() {
        ctx.failure.error = report.failure;
    }
    served?;
    Ok(true)
}

/// Which AI handler serves a route.
enum AiEndpoint<'a> {
    /// The OpenAI-compatible API, limited to `models` (empty: all).
    Api {
        models: &'a [String],
        cache: Option<&'a crate::ai::cache::AiCache>,
        path: &'a str,
    },
    /// A prompt template published as a REST API.
    Prompt(&'a PromptApi),
}

/// Hands the request to the AI gateway through its narrow interface, and
/// takes back what it reports for the access log.
async fn serve_ai(
    session: &mut Session,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &Route,
    endpoint: AiEndpoint<'_>,
) -> Result<bool> {
    let Some(ai) = snapshot.ai.clone() else {
        return Error::e_explain(ErrorType::InternalError, "AI route without the `ai:` config");
    };
    let decorate = |req: &RequestHeader, resp: &mut ResponseHeader| route.policies.decorate(req, resp, &ctx.policy);
    let mut exchange = AiExchange {
        request_id: &ctx.request_id,
        consumer: ctx.policy.consumer_name().unwrap_or("anonymous"),
        decorate: &decorate,
        call: None,
        failure: None,
        capture_max: route
            .call
            .policy
            .capture
            .as_ref()
            .filter(|c| c.bodies)
            .map(|c| c.max_body),
        request_body: None,
        response_body: std::sync::OnceLock::new(),
    };
    // Boxed: the AI call's state would otherwise be in every request's future.
    let served = match endpoint {
        AiEndpoint::Api { models, cache, path } => {
            Box::pin(crate::ai::handler::serve(
                session,
                &mut exchange,
                &ai,
                models,
                cache,
                path,
            ))
            .await
        }
        AiEndpoint::Prompt(api) => Box::pin(crate::ai::prompt::serve(session, &mut exchange, &ai, api)).await,
    };
    let AiExchange {
        call,
        failure,
        request_body,
        response_body,
        ..
    } = exchange;
    if let Some(body) = request_body {
        super::record::collect(ctx, &body, true);
    }
    if let Some(body) = response_body.into_inner() {
        super::record::collect(ctx, &body, false);
    }
    ctx.ai_call = call;
    if failure.is_some() {
        ctx.failure.error = failure;
    }
    served?;
    Ok(true)
}
