//! What the policy steps learn about one request and hand to later phases.

use crate::policy::auth::consumer::Consumer;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::Arc;

/// Who the caller is, once an auth step has decided.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Index into the snapshot's consumers when the credential belongs to one.
    pub consumer: Option<usize>,
    /// The consumer's name, or the token's subject when no consumer matches it.
    pub name: Arc<str>,
    /// The consumer header's value: the name (none when it cannot be one).
    pub header: Option<HeaderValue>,
    /// The credential that identified it ([`crate::policy::auth::consumer::Consumers::credential_id`]).
    pub credential: Option<u32>,
}

impl Identity {
    /// Consumer `idx`: its name and header value, shared from the snapshot.
    pub fn of_consumer(idx: usize, consumer: Option<&Consumer>, credential: Option<u32>) -> Identity {
        Identity {
            consumer: Some(idx),
            name: consumer.map_or_else(|| Arc::from(""), |c| c.name.clone()),
            header: consumer.and_then(|c| c.header.clone()),
            credential,
        }
    }

    /// A token's subject that no consumer holds.
    pub fn of_subject(subject: &str, credential: Option<u32>) -> Identity {
        Identity {
            consumer: None,
            name: Arc::from(subject),
            header: HeaderValue::from_str(subject).ok(),
            credential,
        }
    }
}

/// The numbers for the `RateLimit-*` response headers.
#[derive(Debug, Clone, Copy)]
pub struct RateInfo {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window frees capacity.
    pub reset: u64,
}

impl RateInfo {
    pub fn write(&self, resp: &mut ResponseHeader) {
        let _ = resp.insert_header("ratelimit-limit", self.limit);
        let _ = resp.insert_header("ratelimit-remaining", self.remaining);
        let _ = resp.insert_header("ratelimit-reset", self.reset);
    }
}

#[derive(Default)]
pub struct PolicyState {
    pub identity: Option<Identity>,
    /// Request headers that carried credentials, removed before proxying.
    pub strip_headers: Vec<HeaderName>,
    /// A query parameter that carried a credential, removed before proxying.
    pub strip_query: Option<String>,
    /// The tightest rate limit seen, for the response headers.
    pub rate: Option<RateInfo>,
    /// In-flight slots held until the request ends.
    pub inflight: Vec<pingora_limits::inflight::Guard>,
    /// Largest body accepted, and how much has streamed so far.
    pub body_limit: Option<u64>,
    pub body_seen: u64,
    /// Set on a cache miss, for storing the response.
    pub cache_miss: Option<crate::policy::cache::MissKey>,
    pub cache_pending: Option<crate::policy::cache::PendingEntry>,
    /// `X-Cache` value to send, when the route caches.
    pub cache_status: Option<&'static str>,
}

impl PolicyState {
    /// Records a rate limit's numbers, keeping the tightest.
    pub fn note_rate(&mut self, info: RateInfo) {
        match &self.rate {
            Some(old) if old.remaining <= info.remaining => {}
            _ => self.rate = Some(info),
        }
    }

    /// The consumer name, if any, for logs and cache keys.
    pub fn consumer_name(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| &*i.name)
    }

    pub(crate) fn strip_credentials(&self, up: &mut RequestHeader) {
        for h in &self.strip_headers {
            up.remove_header(h);
        }
        let Some(param) = &self.strip_query else { return };
        let Some(query) = up.uri.query() else { return };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| pair.split('=').next() != Some(param.as_str()))
            .collect();
        let path = up.uri.path();
        let pq = if kept.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        if let Ok(uri) = pq.parse::<http::Uri>() {
            up.set_uri(uri);
        }
    }
}

/// The first value of query parameter `name`, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// How many times query parameter `name` appears.
pub(crate) fn query_count(query: Option<&str>, name: &str) -> usize {
    query.map_or(0, |q| {
        q.split('&').filter(|pair| pair.split('=').next() == Some(name)).count()
    })
}
