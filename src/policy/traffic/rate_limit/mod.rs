//! `rate_limit`: N requests per second, minute or hour, counted per
//! consumer, client address, header value or route.
//!
//! With `burst`, the limit is a token bucket ([`bucket`]): `burst + 1` at
//! once from idle, then the rate. Without it, counting is a sliding window
//! estimate (Cloudflare's): the previous
//! window's count weighted by how much of it still overlaps, plus the current
//! window's. It has no boundary burst, unlike plain fixed windows, and needs
//! two counters per key. Locally the counters are pingora-limits' `Rate` (a
//! count-min sketch: lock-free, fixed memory; it can over-count on hash
//! collisions, never under-count, so a limit errs on the strict side).
//! Cluster-wide, the same estimate runs atomically in Redis ([`cluster`]).
//!
//! A refused request is not counted, so a client sending at twice the limit
//! still gets the limit's worth through.

pub(crate) mod bucket;
pub(crate) mod cluster;

use crate::config::{LimitKey, RateLimitConfig};
use crate::error::GatewayError;
use crate::policy::{PolicyState, RateInfo, Rejection, RequestView, Step};
use crate::telemetry::metrics::METRICS;
use bucket::{Bucket, Shape};
use cluster::{Algorithm, RedisLimiter};
use http::{HeaderName, HeaderValue};
use pingora_limits::rate::Rate;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// A key borrowed from the request; hashed for the local counters and
/// printed for Redis keys.
#[derive(Hash)]
pub(crate) enum KeyRef<'a> {
    Route,
    Consumer(&'a str),
    Ip(Option<IpAddr>),
    Header(&'a [u8]),
}

impl KeyRef<'_> {
    pub(crate) fn render(&self) -> String {
        match self {
            KeyRef::Route => "route".into(),
            KeyRef::Consumer(c) => format!("c:{c}"),
            KeyRef::Ip(Some(ip)) => format!("ip:{ip}"),
            KeyRef::Ip(None) => "ip:-".into(),
            KeyRef::Header(h) => format!("h:{}", String::from_utf8_lossy(h)),
        }
    }
}

/// The header a `key: header` limit counts by, checked at load.
pub(crate) fn key_header(key: LimitKey, header: Option<&str>) -> Result<Option<HeaderName>, String> {
    match (key, header) {
        (LimitKey::Header, Some(h)) => HeaderName::from_bytes(h.as_bytes())
            .map(Some)
            .map_err(|_| format!("header: invalid name {h:?}")),
        (LimitKey::Header, None) => Err("header: required when key is header".into()),
        (_, Some(_)) => Err("header: only used with key: header".into()),
        _ => Ok(None),
    }
}

/// Resolves a key kind for this request.
pub(crate) fn key_for<'a>(
    kind: LimitKey,
    header: Option<&HeaderName>,
    view: &'a RequestView,
    state: &'a PolicyState,
) -> KeyRef<'a> {
    match kind {
        LimitKey::Route => KeyRef::Route,
        LimitKey::Consumer => match state.consumer_name() {
            Some(c) => KeyRef::Consumer(c),
            None => KeyRef::Ip(view.client_ip),
        },
        LimitKey::Ip => KeyRef::Ip(view.client_ip),
        LimitKey::Header => match header.and_then(|h| view.req.headers.get(h)) {
            Some(v) => KeyRef::Header(v.as_bytes()),
            None => KeyRef::Ip(view.client_ip),
        },
    }
}

enum Counter {
    /// The sliding window, in this process.
    Local(Rate),
    /// The token bucket (`burst`), in this process.
    Bucket(Bucket),
    /// Either, on Redis (boxed: the client is large and rarely used).
    Redis(Box<RedisLimiter>, Algorithm),
}

/// Shared by reloads that leave the step's settings unchanged, so counts survive.
#[derive(Clone)]
pub struct RateLimit(Arc<Inner>);

struct Inner {
    route: String,
    limit: u64,
    advertised: u64,
    window: Duration,
    key: LimitKey,
    header: Option<HeaderName>,
    counter: Counter,
}

/// The outcome of counting one request.
pub(crate) struct Verdict {
    pub allowed: bool,
    pub remaining: u64,
    /// Milliseconds until the current window ends.
    pub reset_ms: u64,
}

impl RateLimit {
    pub fn new(c: &RateLimitConfig, route: &str) -> Result<RateLimit, String> {
        if c.requests == 0 {
            return Err("requests: must be at least 1".into());
        }
        let header = key_header(c.key, c.header.as_deref())?;
        let window = c.per.duration();
        let shape = (c.burst > 0).then(|| Shape::new(c.requests, window, c.burst));
        let counter = match (&c.redis, shape) {
            (Some(r), Some(shape)) => Counter::Redis(Box::new(RedisLimiter::new(r, route)?), Algorithm::Bucket(shape)),
            (Some(r), None) => Counter::Redis(
                Box::new(RedisLimiter::new(r, route)?),
                Algorithm::Window {
                    limit: c.requests,
                    window,
                },
            ),
            (None, Some(shape)) => Counter::Bucket(Bucket::new(shape)),
            (None, None) => Counter::Local(Rate::new(window)),
        };
        Ok(RateLimit(Arc::new(Inner {
            route: route.to_string(),
            limit: c.requests,
            advertised: c.requests,
            window,
            key: c.key,
            header,
            counter,
        })))
    }

    pub async fn check(&self, view: &RequestView<'_>, state: &mut PolicyState) -> Step {
        let inner = &*self.0;
        let key = key_for(inner.key, inner.header.as_ref(), view, state);
        let verdict = match &inner.counter {
            Counter::Local(rate) => count_local(rate, &key, inner.limit, inner.window),
            Counter::Bucket(bucket) => bucket.take(&key),
            Counter::Redis(r, algorithm) => match r.count(&key.render(), *algorithm).await {
                Ok(v) => v,
                Err(step) => return step,
            },
        };
        let reset = verdict.reset_ms.div_ceil(1000).max(1);
        state.note_rate(RateInfo {
            limit: inner.advertised,
            remaining: verdict.remaining.min(inner.advertised),
            reset,
        });
        if verdict.allowed {
            return Step::Continue;
        }
        METRICS.rate_limited_total.with_label_values(&[&inner.route]).inc();
        let mut rejection = Rejection::new(
            GatewayError::RateLimited,
            format!(
                "rate limit of {} requests per {}s exceeded",
                inner.advertised,
                inner.window.as_secs()
            ),
        )
        .with_header(http::header::RETRY_AFTER, HeaderValue::from(reset));
        for (name, value) in [
            ("ratelimit-limit", inner.advertised),
            ("ratelimit-remaining", 0),
            ("ratelimit-reset", reset),
        ] {
            rejection = rejection.with_header(HeaderName::from_static(name), HeaderValue::from(value));
        }
        Step::Reject(rejection)
    }
}

/// Counts one request locally with the sliding window estimate.
fn count_local<K: Hash>(rate: &Rate, key: &K, limit: u64, window: Duration) -> Verdict {
    let (prev, fraction) = rate.rate_with(key, |c| (c.prev_samples.max(0) as f64, c.current_interval_fraction));
    let curr = rate.observe(key, 1).max(0) as f64;
    let estimate = prev * (1.0 - fraction) + curr;
    let reset_ms = ((1.0 - fraction) * window.as_millis() as f64) as u64;
    if estimate > limit as f64 {
        // Refused requests do not count.
        rate.observe(key, -1);
        return Verdict {
            allowed: false,
            remaining: 0,
            reset_ms,
        };
    }
    Verdict {
        allowed: true,
        remaining: (limit as f64 - estimate).max(0.0) as u64,
        reset_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_window_accepts_the_limit_exactly() {
        let rate = Rate::new(Duration::from_secs(3600));
        let accepted = (0..200)
            .filter(|_| count_local(&rate, &"k", 100, Duration::from_secs(3600)).allowed)
            .count();
        assert_eq!(accepted, 100);
        // Another key has its own budget.
        assert!(count_local(&rate, &"other", 100, Duration::from_secs(3600)).allowed);
    }
}
