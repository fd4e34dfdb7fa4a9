//! The cluster-wide counter of `rate_limit`: the same sliding window
//! estimate, or the same token bucket ([`super::bucket`]), as the local one,
//! computed and updated by one Lua script so
//! the check and the increment are atomic across every Portico that shares the
//! Redis server. The script reads the server's clock (`TIME`), so gateways
//! with skewed clocks still agree on the windows.
//!
//! The `redis` crate (the standard Rust client) provides a multiplexed,
//! self-reconnecting connection (`ConnectionManager`) and EVALSHA with a
//! fallback to EVAL. The connection is made on first use, from a request's
//! runtime; after a failure new attempts wait a second, so a Redis outage
//! costs requests one timeout at most, not one per request.
//!
//! When Redis cannot answer within `timeout`, `on_error` decides: `allow`
//! (fail open, the default: an outage of the limiter is not an outage of the
//! API) or `deny` (fail closed, 503).

use super::bucket::Shape;
use super::Verdict;
use crate::config::{OnError, RedisLimitConfig};
use crate::error::GatewayError;
use crate::policy::{Rejection, Step};
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// `KEYS[1]`: the counter's base key; `ARGV[1]`: window in ms; `ARGV[2]`: limit.
/// Returns {allowed (0/1), remaining, ms until the window ends}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local idx = math.floor(now / window)
local curr_key = KEYS[1] .. ':' .. idx
local prev_key = KEYS[1] .. ':' .. (idx - 1)
local curr = tonumber(redis.call('GET', curr_key) or '0')
local prev = tonumber(redis.call('GET', prev_key) or '0')
local weight = 1 - (now % window) / window
local reset = window - (now % window)
if prev * weight + curr + 1 > limit then
  return {0, 0, reset}
end
curr = redis.call('INCR', curr_key)
if curr == 1 then
  redis.call('PEXPIRE', curr_key, window * 2)
end
return {1, math.floor(limit - (prev * weight + curr)), reset}
"#;

/// The token bucket (GCRA, as [`Shape::decide`]). `KEYS[1]`: the bucket's
/// key; `ARGV[1]`: interval in µs; `ARGV[2]`: tolerance in µs. Returns
/// {allowed (0/1), remaining, ms until full (allowed) or until a request
/// fits (refused)}.
const BUCKET_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local debt = tat - now
if debt > tolerance then
  return {0, 0, math.ceil((debt - tolerance) / 1000)}
end
debt = debt + interval
redis.call('SET', KEYS[1], now + debt, 'PX', math.ceil(debt / 1000) + 1000)
return {1, math.floor((tolerance + interval - debt) / interval), math.ceil(debt / 1000)}
"#;

/// Which count a limit keeps on Redis.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Algorithm {
    /// The sliding window: `limit` per `window`.
    Window { limit: u64, window: Duration },
    /// The token bucket of `burst`.
    Bucket(Shape),
}

const RETRY_CONNECT_MS: u64 = 1000;

pub(crate) struct RedisLimiter {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    bucket_script: redis::Script,
    /// `{prefix:route}`: the braces keep one route's keys in one cluster slot.
    base: String,
    timeout: Duration,
    on_error: OnError,
    last_connect_failure_ms: AtomicU64,
    last_warning_ms: AtomicU64,
}

impl RedisLimiter {
    pub(crate) fn new(c: &RedisLimitConfig, route: &str) -> Result<RedisLimiter, String> {
        let scheme_ok = ["redis://", "rediss://", "unix://"]
            .iter()
            .any(|s| c.url.starts_with(s));
        let client = redis::Client::open(c.url.as_str())
            .ok()
            .filter(|_| scheme_ok)
            .ok_or_else(|| {
                format!(
                    "redis.url: {:?} is not a Redis URL; use redis://host:port[/db] or rediss://",
                    crate::store::redacted(&c.url)
                )
            })?;
        if c.timeout.0.is_zero() {
            return Err("redis.timeout: must be above zero".into());
        }
        Ok(RedisLimiter {
            client,
            conn: OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            bucket_script: redis::Script::new(BUCKET_SCRIPT),
            base: format!("{{{}:{route}}}", c.prefix),
            timeout: c.timeout.0,
            on_error: c.on_error,
            last_connect_failure_ms: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let failed_at = self.last_connect_failure_ms.load(Ordering::Relaxed);
        if failed_at != 0 && crate::upstream::now_ms().saturating_sub(failed_at) < RETRY_CONNECT_MS {
            return Err("not connected (retrying shortly)".into());
        }
        let made = self
            .conn
            .get_or_try_init(|| async {
                match tokio::time::timeout(self.timeout, ConnectionManager::new(self.client.clone())).await {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("connect timed out".to_string()),
                }
            })
            .await;
        match made {
            Ok(c) => Ok(c.clone()),
            Err(e) => {
                self.last_connect_failure_ms
                    .store(crate::upstream::now_ms().max(1), Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Counts one request. `Err` carries the step to take when Redis failed:
    /// continue (fail open) or a 503.
    pub(crate) async fn count(&self, key: &str, algorithm: Algorithm) -> Result<Verdict, Step> {
        match self.try_count(key, algorithm).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let now = crate::upstream::now_ms();
                let last = self.last_warning_ms.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 1000 && self.last_warning_ms.swap(now, Ordering::Relaxed) == last {
                    log::warn!("rate limit on Redis unavailable ({e}); on_error: {:?}", self.on_error);
                }
                Err(match self.on_error {
                    OnError::Allow => Step::Continue,
                    OnError::Deny => Step::Reject(Rejection::new(
                        GatewayError::DependencyUnavailable,
                        "rate limiter unavailable",
                    )),
                })
            }
        }
    }

    async fn try_count(&self, key: &str, algorithm: Algorithm) -> Result<Verdict, String> {
        let mut conn = self.connection().await?;
        let invocation = match algorithm {
            Algorithm::Window { limit, window } => {
                let mut i = self.script.key(format!("{}:{key}", self.base));
                i.arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)).arg(limit);
                i
            }
            Algorithm::Bucket(shape) => {
                // Its own key space: a window's counters are not a bucket's TAT.
                let mut i = self.bucket_script.key(format!("{}:b:{key}", self.base));
                i.arg(shape.interval_us).arg(shape.tolerance_us);
                i
            }
        };
        let call = invocation.invoke_async::<Vec<i64>>(&mut conn);
        let reply = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out".into()),
        };
        match reply.as_slice() {
            [allowed, remaining, reset] => Ok(Verdict {
                allowed: *allowed == 1,
                remaining: (*remaining).max(0) as u64,
                reset_ms: (*reset).max(0) as u64,
            }),
            _ => Err(format!("unexpected script reply {reply:?}")),
        }
    }
}
