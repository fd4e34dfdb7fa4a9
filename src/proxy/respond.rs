//! Responses the gateway writes itself: fixed routes, policy refusals and
//! the JSON errors of DESIGN.md.

use super::{error_body, GatewayError, RequestCtx};
use bytes::Bytes;
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Writes a complete response from the gateway itself.
///
/// Boxed, because writing a response holds Pingora's header-writing state:
/// inline, it would enlarge the future of every hook that might answer, on
/// every request (tests/future_sizes.rs).
pub(crate) fn respond<'a>(
    session: &'a mut Session,
    ctx: &'a RequestCtx,
    status: u16,
    headers: &'a [(http::HeaderName, http::HeaderValue)],
    body: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(respond_now(session, ctx, status, headers, body))
}

async fn respond_now(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    headers: &[(http::HeaderName, http::HeaderValue)],
    body: Bytes,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    for (k, v) in headers {
        resp.append_header(k.clone(), v.clone())?;
    }
    if let Some(route) = ctx.route() {
        route.policies.decorate(session.req_header(), &mut resp, &ctx.policy);
    }
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if crate::drain::draining() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

pub(crate) async fn respond_error(
    session: &mut Session,
    ctx: &RequestCtx,
    err: GatewayError,
    message: &str,
    extra: Option<(&str, String)>,
) -> Result<()> {
    respond_rejection(session, ctx, err, message, Vec::new(), extra).await
}

pub(crate) async fn respond_rejection(
    session: &mut Session,
    ctx: &RequestCtx,
    err: GatewayError,
    message: &str,
    mut headers: Vec<(http::HeaderName, http::HeaderValue)>,
    extra: Option<(&str, String)>,
) -> Result<()> {
    let status = err.status();
    let body = error_body(message, err.kind(), status, &ctx.request_id);
    headers.push((
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    ));
    if let Some((name, value)) = extra {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.push((n, v));
        }
    }
    respond(session, ctx, status, &headers, body).await
}
