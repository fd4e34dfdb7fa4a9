//! `cache`: the response cache step. Storage and HTTP caching rules live in
//! `store`; this step looks a request up before proxying, answers a
//! hit itself (`X-Cache: HIT`, `Age`), and on a miss stores the response as
//! it streams to the client (`X-Cache: MISS`).

pub(crate) mod store;

use super::{PolicyState, Reply, RequestView, Step};
use crate::config::CacheConfig;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::Arc;
use store::{Lookup, ResponseCache};
pub(crate) use store::{MissKey, PendingEntry};

/// Shared across reloads that leave the route unchanged; a changed route
/// starts with an empty cache.
#[derive(Clone)]
pub struct CachePolicy(Arc<ResponseCache>);

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

impl CachePolicy {
    pub fn new(c: &CacheConfig) -> CachePolicy {
        CachePolicy(Arc::new(ResponseCache::new(c)))
    }

    pub fn store(&self) -> &ResponseCache {
        &self.0
    }

    pub fn lookup(&self, view: &RequestView, state: &mut PolicyState) -> Step {
        match self.0.lookup(view.req, view.host, view.path, state.consumer_name()) {
            Lookup::Hit(entry) => {
                let mut headers = entry.headers.clone();
                headers.push((X_CACHE, HeaderValue::from_static("HIT")));
                headers.push((http::header::AGE, HeaderValue::from(entry.age_secs())));
                Step::Reply(Reply {
                    status: entry.status,
                    headers,
                    body: entry.body.clone(),
                })
            }
            Lookup::Miss(key) => {
                state.cache_miss = Some(key);
                state.cache_status = Some("MISS");
                Step::Continue
            }
            Lookup::Bypass => {
                state.cache_status = Some("BYPASS");
                Step::Continue
            }
        }
    }

    pub fn on_response(&self, req: &RequestHeader, resp: &mut ResponseHeader, state: &mut PolicyState) {
        if let Some(miss) = state.cache_miss.take() {
            state.cache_pending = self.0.begin(miss, req, resp, state.consumer_name());
        }
        if let Some(s) = state.cache_status {
            let _ = resp.insert_header(X_CACHE, s);
        }
    }

    pub fn on_body(&self, body: &Option<Bytes>, end: bool, state: &mut PolicyState) {
        let Some(pending) = state.cache_pending.as_mut() else {
            return;
        };
        if let Some(chunk) = body {
            if !pending.push(chunk) {
                state.cache_pending = None;
                return;
            }
        }
        if end {
            if let Some(p) = state.cache_pending.take() {
                p.finish(&self.0);
            }
        }
    }
}
