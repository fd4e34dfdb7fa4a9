//! `size_limit`: the request body (413) and head (431) of one route. The body
//! is counted while it streams to the upstream, never buffered; a declared
//! Content-Length over the limit is refused before anything is proxied.

use crate::config::SizeLimitConfig;
use crate::error::GatewayError;
use crate::policy::{PolicyState, Rejection, RequestView, Step};

pub struct SizeLimit {
    body: Option<u64>,
    headers: Option<usize>,
}

pub(crate) fn too_large(max: u64) -> Rejection {
    Rejection::new(
        GatewayError::PayloadTooLarge,
        format!("request body exceeds {max} bytes"),
    )
}

impl SizeLimit {
    pub fn new(c: &SizeLimitConfig) -> Result<SizeLimit, String> {
        if c.body.is_none() && c.headers.is_none() {
            return Err("give `body` or `headers`".into());
        }
        Ok(SizeLimit {
            body: c.body.map(|s| s.0),
            headers: c.headers.map(|s| usize::try_from(s.0).unwrap_or(usize::MAX)),
        })
    }

    pub fn check(&self, view: &RequestView, state: &mut PolicyState) -> Step {
        if let Some(max) = self.headers {
            let size = header_size(view.req);
            if size > max {
                return Step::Reject(Rejection::new(
                    GatewayError::HeadersTooLarge,
                    format!("request headers exceed {max} bytes"),
                ));
            }
        }
        if let Some(max) = self.body {
            let declared = view
                .req
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|len| len > max) {
                return Step::Reject(too_large(max));
            }
            state.body_limit = Some(state.body_limit.map_or(max, |old| old.min(max)));
        }
        Step::Continue
    }
}

/// Approximate size of a request head (HTTP/2, where no raw bytes exist).
pub(crate) fn header_size(req: &pingora_http::RequestHeader) -> usize {
    let line = req.method.as_str().len() + req.uri.to_string().len() + 12;
    req.headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}
