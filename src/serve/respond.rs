//! Responses the gateway writes itself onto a client's session: fixed
//! routes, policy refusals, AI answers and the JSON errors of
//! [`crate::error`]. Whoever writes one says what it needs of the request
//! through [`ResponseContext`]: the proxy for its hooks, the AI gateway for
//! its handlers, so neither depends on the other.

use crate::error::{error_body, GatewayError};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// What a response the gateway writes itself needs of its request.
pub(crate) trait ResponseContext: Sync {
    /// The request id, sent as `x-request-id` and in error bodies.
    fn request_id(&self) -> &str;
    /// Adds the route's own response headers (CORS, rate-limit state).
    fn decorate(&self, req: &RequestHeader, resp: &mut ResponseHeader);
    /// Sees the body of a response written whole (for the call log's
    /// capture); nothing by default.
    fn keep_body(&self, _body: &Bytes) {}
}

/// Writes a complete response from the gateway itself.
///
/// Boxed, because writing a response holds Pingora's header-writing state:
/// inline, it would enlarge the future of every hook that might answer, on
/// every request (`proxy::future_sizes_tests`).
pub(crate) fn respond<'a>(
    session: &'a mut Session,
    ctx: &'a dyn ResponseContext,
    status: u16,
    headers: &'a [(HeaderName, HeaderValue)],
    body: Bytes,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(respond_now(session, ctx, status, headers, body))
}

async fn respond_now(
    session: &mut Session,
    ctx: &dyn ResponseContext,
    status: u16,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 3))?;
    for (k, v) in headers {
        resp.append_header(k.clone(), v.clone())?;
    }
    ctx.decorate(session.req_header(), &mut resp);
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header("x-request-id", ctx.request_id())?;
    if super::drain::draining() {
        session.set_keepalive(None);
    }
    ctx.keep_body(&body);
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// Writes the JSON error for `err` with `message`, plus `headers`.
pub(crate) async fn respond_error(
    session: &mut Session,
    ctx: &dyn ResponseContext,
    err: GatewayError,
    message: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<()> {
    respond_error_at(session, ctx, err, message, None, headers).await
}

/// [`respond_error`] naming the request field at fault (`param`).
pub(crate) async fn respond_error_at(
    session: &mut Session,
    ctx: &dyn ResponseContext,
    err: GatewayError,
    message: &str,
    param: Option<&str>,
    mut headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<()> {
    let status = err.status();
    let body = error_body(message, err, param, ctx.request_id());
    headers.push((http::header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    respond(session, ctx, status, &headers, body).await
}
