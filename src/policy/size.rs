//! `size_limit`: the request body (413) and head (431) of one route. The body
//! is counted while it streams to the upstream, never buffered; a declared
//! Content-Length over the limit is refused before anything is proxied.

use super::{PolicyState, Rejection, RequestView, Step};
use crate::config::ConfSize;
use crate::proxy::GatewayError;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizeLimitConfig {
    /// Largest request body.
    pub body: Option<ConfSize>,
    /// Largest request head (request line and headers).
    pub headers: Option<ConfSize>,
}

pub struct SizeLimit {
    body: Option<u64>,
    headers: Option<usize>,
}

pub fn too_large(max: u64) -> Rejection {
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
            let size = crate::proxy::header_size(view.req);
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
