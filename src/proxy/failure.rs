//! `fail_to_proxy`: every failure reaches the client as the JSON error of
//! [`crate::error`], with the cause Portico recorded when it decided the
//! status itself, else the cause read from Pingora's error.

use super::context::RequestCtx;
use crate::error::GatewayError;
use crate::serve::respond::respond_error;
use pingora_core::{Error, ErrorType};
use pingora_proxy::{FailToProxy, Session};

/// Answers a failed request, unless the client is gone or a response has begun.
pub(super) async fn answer_failure(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    let classified = match e.etype() {
        // Statuses Portico raised itself carry their cause in ctx; a 503 after
        // retries ran out reports the last connect failure.
        ErrorType::HTTPStatus(_) if ctx.failure.error.is_some() => ctx.failure.error,
        _ => GatewayError::from_pingora(e),
    };
    let Some(err) = classified else {
        return FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        };
    };
    if err == GatewayError::RequestTimeout {
        // The head's own timeout is counted where the head is read (serve::head).
        crate::telemetry::metrics::METRICS
            .client_timeouts_total
            .with_label_values(&["body"])
            .inc();
    }
    if session.response_written().is_none() {
        // The connection is not reused after a failure: say so in the response.
        session.set_keepalive(None);
        let msg = message(err, ctx);
        if let Err(write_err) = respond_error(session, ctx, err, &msg, Vec::new()).await {
            log::debug!("could not send error response: {write_err}");
        }
    }
    FailToProxy {
        error_code: err.status(),
        can_reuse_downstream: false,
    }
}

/// The client-facing message for `err`.
fn message(err: GatewayError, ctx: &RequestCtx) -> String {
    if let Some(m) = &ctx.failure.message {
        return m.clone();
    }
    match err {
        GatewayError::NoHealthyUpstream => "no healthy upstream target".to_string(),
        GatewayError::UpstreamTimeout => "upstream timed out".to_string(),
        GatewayError::UpstreamConnect => "could not connect to upstream".to_string(),
        GatewayError::UpstreamReset => "upstream closed the connection".to_string(),
        GatewayError::BadRequest => "malformed request".to_string(),
        GatewayError::HeadersTooLarge => {
            format!("request headers exceed {} bytes", ctx.snapshot.limits.max_header_bytes)
        }
        _ => err.kind().replace('_', " "),
    }
}
