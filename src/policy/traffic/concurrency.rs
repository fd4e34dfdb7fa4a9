//! `concurrency`: at most N requests of one key in flight at once, counted
//! with pingora-limits' `Inflight` (lock-free; its guard gives the slot back
//! when the request ends, however it ends).

use crate::config::{ConcurrencyConfig, LimitKey};
use crate::error::GatewayError;
use crate::policy::traffic::rate_limit::{key_for, key_header};
use crate::policy::{PolicyState, Rejection, RequestView, Step};
use http::{HeaderName, HeaderValue};
use pingora_limits::inflight::Inflight;
use std::sync::Arc;

#[derive(Clone)]
pub struct ConcurrencyLimit(Arc<Inner>);

struct Inner {
    max: isize,
    key: LimitKey,
    header: Option<HeaderName>,
    inflight: Inflight,
}

impl ConcurrencyLimit {
    pub fn new(c: &ConcurrencyConfig) -> Result<ConcurrencyLimit, String> {
        if c.max == 0 {
            return Err("max: must be at least 1".into());
        }
        let header = key_header(c.key, c.header.as_deref())?;
        Ok(ConcurrencyLimit(Arc::new(Inner {
            max: c.max as isize,
            key: c.key,
            header,
            inflight: Inflight::new(),
        })))
    }

    pub fn check(&self, view: &RequestView, state: &mut PolicyState) -> Step {
        let inner = &*self.0;
        let key = key_for(inner.key, inner.header.as_ref(), view, state);
        let (guard, count) = inner.inflight.incr(&key, 1);
        if count > inner.max {
            drop(guard);
            return Step::Reject(
                Rejection::new(
                    GatewayError::RateLimited,
                    format!("more than {} requests in flight", inner.max),
                )
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
            );
        }
        state.inflight.push(guard);
        Step::Continue
    }
}
