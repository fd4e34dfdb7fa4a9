//! Per-route in-memory HTTP response cache for GET and HEAD.
//!
//! This module owns the caching *policy*: which requests may be answered from
//! the cache (`lookup`), which upstream responses may be stored and for how long
//! (`begin`), how entries are keyed (host, path, optional query, `Vary`ed request
//! headers and, for `private` responses, the consumer), and what an entry weighs.
//! The proxy owns the I/O: it writes a [`Lookup::Hit`] downstream itself and
//! feeds body chunks of a miss into a [`PendingEntry`].
//!
//! Storage is Pingora's own `TinyUFO` (TinyLFU admission + S3-FIFO eviction):
//! it is lock-free, so lookups on a hot route never contend on a mutex, it is
//! weight-bounded, and it is what Pingora's own memory cache is built on. Its
//! weights are `u16`, so entry sizes are counted in units of `unit` bytes,
//! chosen so that the largest storable entry still fits in a `u16`.
//!
//! TinyUFO only keeps a 64-bit hash of a key, so every slot carries its full key
//! and a lookup compares it: a hash collision is a miss, never a wrong response.
//! Expiry is stored in the entry and an expired entry is simply a miss; it is
//! replaced by the refreshed response or evicted by the cache's own policy.

use crate::config::CacheConfig;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::Method;
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinyufo::TinyUfo;

/// Fixed bookkeeping cost charged per entry (Arc, slot, queue node, hash-map bucket).
const ENTRY_OVERHEAD: usize = 256;
/// Per-header cost on top of name and value, as HPACK accounts for it.
const HEADER_OVERHEAD: usize = 32;
/// Headers plus key larger than this are not stored; it bounds the weight unit.
const MAX_META_BYTES: usize = 128 * 1024;
/// A guess of the average entry size, used only to size TinyUFO's sketch and map.
const AVG_ENTRY_GUESS: u64 = 8 * 1024;
/// RFC 9111 §1.2.2: delta-seconds larger than this are treated as this.
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// A stored response. Headers exclude hop-by-hop headers, `age`, `x-cache`,
/// `x-request-id` and `content-length` (the caller recomputes those).
#[derive(Debug)]
pub struct CachedResponse {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    stored_at: Instant,
    /// Remaining freshness at `stored_at`.
    ttl: Duration,
    /// The upstream's `Age` when stored (it may sit behind another cache).
    initial_age: u64,
    key: Box<[u8]>,
    weight: usize,
}

impl CachedResponse {
    /// Value for the `Age` header of a hit.
    pub fn age_secs(&self) -> u64 {
        self.age_at(Instant::now())
    }

    fn age_at(&self, now: Instant) -> u64 {
        self.initial_age
            .saturating_add(now.saturating_duration_since(self.stored_at).as_secs())
    }

    fn fresh_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.stored_at) < self.ttl
    }
}

/// What a primary key (host + path [+ query]) varies on. Stored at the primary
/// key instead of a response when the response had `Vary` or was private; the
/// responses then live under primary key + secondary key.
#[derive(Debug, PartialEq)]
struct Variants {
    key: Box<[u8]>,
    vary: Vec<HeaderName>,
    private: bool,
}

impl Variants {
    fn weight(&self) -> usize {
        let names: usize = self.vary.iter().map(|n| n.as_str().len()).sum();
        self.key.len() + names + ENTRY_OVERHEAD
    }
}

#[derive(Clone)]
enum Slot {
    Response(Arc<CachedResponse>),
    Variants(Arc<Variants>),
}

impl Slot {
    fn weight(&self) -> usize {
        match self {
            Slot::Response(r) => r.weight,
            Slot::Variants(v) => v.weight(),
        }
    }
}

/// Result of [`ResponseCache::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// A fresh entry; for HEAD the caller sends the headers only.
    Hit(Arc<CachedResponse>),
    /// Forward upstream, then pass this to [`ResponseCache::begin`].
    Miss(MissKey),
    /// The request must not use the cache at all.
    Bypass,
}

/// What the response phase of a miss needs to store the response.
#[derive(Debug)]
pub struct MissKey {
    primary: Vec<u8>,
    head: bool,
}

/// A response being stored: collects the body until [`PendingEntry::finish`].
#[derive(Debug)]
pub struct PendingEntry {
    key: Vec<u8>,
    variants: Option<Variants>,
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    header_bytes: usize,
    body: Vec<u8>,
    max_entry_size: usize,
    declared_len: Option<u64>,
    stored_at: Instant,
    ttl: Duration,
    initial_age: u64,
    abandoned: bool,
}

impl PendingEntry {
    /// Appends a body chunk; returns false (and the entry is abandoned) once the
    /// body exceeds `max_entry_size`.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.abandoned {
            return false;
        }
        if self.body.len().saturating_add(chunk.len()) > self.max_entry_size {
            // Free the partial body now rather than when the request ends.
            self.abandoned = true;
            self.body = Vec::new();
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    /// Stores the entry once the body is complete.
    pub fn finish(self, cache: &ResponseCache) {
        // A body shorter or longer than Content-Length means the upstream broke
        // off or lied; storing it would serve a truncated response until expiry.
        if self.abandoned || self.declared_len.is_some_and(|n| n != self.body.len() as u64) {
            return;
        }
        let weight = self.body.len() + self.header_bytes + self.key.len() + ENTRY_OVERHEAD;
        let entry = CachedResponse {
            status: self.status,
            headers: self.headers,
            body: Bytes::from(self.body),
            stored_at: self.stored_at,
            ttl: self.ttl,
            initial_age: self.initial_age,
            key: self.key.clone().into_boxed_slice(),
            weight,
        };
        if let Some(variants) = self.variants {
            cache.put_variants(variants);
        }
        cache.put(self.key, Slot::Response(Arc::new(entry)));
    }
}

/// One route's cache. `Send + Sync`; share it in an `Arc`.
pub struct ResponseCache {
    store: TinyUfo<Vec<u8>, Slot>,
    /// Bytes per TinyUFO weight unit.
    unit: usize,
    limit_units: usize,
    max_entry_size: usize,
    default_ttl: Duration,
    max_ttl: Option<Duration>,
    statuses: Box<[u16]>,
    key_query: bool,
    /// Sum of stored weights in bytes; signed because concurrent replacements of
    /// one key can briefly double-subtract, and a metric must not wrap.
    bytes: AtomicI64,
}

impl ResponseCache {
    pub fn new(cfg: &CacheConfig) -> ResponseCache {
        let max_size = usize::try_from(cfg.max_size.0).unwrap_or(usize::MAX);
        let max_entry_size = usize::try_from(cfg.max_entry_size.0).unwrap_or(usize::MAX);
        let largest = max_entry_size.saturating_add(MAX_META_BYTES + ENTRY_OVERHEAD);
        let unit = largest.div_ceil(usize::from(u16::MAX)).max(1);
        let estimated = usize::try_from((cfg.max_size.0 / AVG_ENTRY_GUESS).clamp(16, 1 << 18)).unwrap_or(1 << 18);
        ResponseCache {
            store: TinyUfo::new(max_size / unit, estimated),
            unit,
            limit_units: max_size / unit,
            max_entry_size,
            default_ttl: cfg.ttl.0,
            max_ttl: cfg.max_ttl.map(|d| d.0),
            statuses: cfg.statuses.clone().into_boxed_slice(),
            key_query: cfg.key_query,
            bytes: AtomicI64::new(0),
        }
    }

    /// `consumer` is the authenticated consumer's name if any.
    pub fn lookup(&self, req: &RequestHeader, host: &str, path: &str, consumer: Option<&str>) -> Lookup {
        self.lookup_at(req, host, path, consumer, Instant::now())
    }

    /// Called in the response phase for a [`Lookup::Miss`]; `None` when the
    /// response must not be stored.
    pub fn begin(
        &self,
        miss: MissKey,
        req: &RequestHeader,
        resp: &ResponseHeader,
        consumer: Option<&str>,
    ) -> Option<PendingEntry> {
        self.begin_at(miss, req, resp, consumer, Instant::now())
    }

    /// Approximate current weight in bytes, for tests and metrics.
    pub fn len_bytes(&self) -> u64 {
        u64::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(0)
    }

    fn lookup_at(&self, req: &RequestHeader, host: &str, path: &str, consumer: Option<&str>, now: Instant) -> Lookup {
        let head = req.method == Method::HEAD;
        if !head && req.method != Method::GET {
            return Lookup::Bypass;
        }
        // A stored full body must not answer a Range request, and a range answer
        // must never be stored under the full key, whatever `statuses` allows.
        if req.headers.contains_key(header::RANGE) {
            return Lookup::Bypass;
        }
        let cc = Directives::parse(&req.headers);
        if cc.no_store {
            return Lookup::Bypass;
        }
        let mut key = self.primary_key(req, host, path);
        let primary_len = key.len();
        // The client asks for an end-to-end reload: skip the lookup but keep the
        // miss so the fresh response replaces the entry.
        let reload = cc.no_cache || cc.max_age == Some(0) || (!cc.present && pragma_no_cache(&req.headers));
        if !reload {
            if let Some(hit) = self.find(&mut key, req, consumer, now, cc.max_age) {
                return Lookup::Hit(hit);
            }
            key.truncate(primary_len);
        }
        Lookup::Miss(MissKey { primary: key, head })
    }

    /// Looks up the primary key and, when it holds variants, the secondary key.
    fn find(
        &self,
        key: &mut Vec<u8>,
        req: &RequestHeader,
        consumer: Option<&str>,
        now: Instant,
        max_age: Option<u64>,
    ) -> Option<Arc<CachedResponse>> {
        let resp = match self.store.get(key)? {
            Slot::Response(r) => r,
            Slot::Variants(v) => {
                if *v.key != key[..] || (v.private && consumer.is_none()) {
                    return None;
                }
                push_secondary(key, &v.vary, req, if v.private { consumer } else { None });
                match self.store.get(key)? {
                    Slot::Response(r) => r,
                    Slot::Variants(_) => return None,
                }
            }
        };
        let young_enough = max_age.is_none_or(|limit| resp.age_at(now) <= limit);
        (*resp.key == key[..] && resp.fresh_at(now) && young_enough).then_some(resp)
    }

    fn begin_at(
        &self,
        miss: MissKey,
        req: &RequestHeader,
        resp: &ResponseHeader,
        consumer: Option<&str>,
        now: Instant,
    ) -> Option<PendingEntry> {
        // A HEAD response has no body; storing it would answer later GETs empty.
        if miss.head || req.method != Method::GET {
            return None;
        }
        let status = resp.status.as_u16();
        // 206 and 304 answer range or conditional requests; under the full key
        // they would be wrong for everyone else, whatever `statuses` says.
        if status == 206 || status == 304 || !self.statuses.contains(&status) {
            return None;
        }
        let h = &resp.headers;
        let cc = Directives::parse(h);
        if cc.no_store || cc.no_cache || h.contains_key(header::SET_COOKIE) {
            return None;
        }
        let vary = vary_names(h)?;
        // RFC 9111 §3.5: a response to an authorized request is not shared unless
        // it says so; keeping it per consumer is the safe reading.
        let authorized = req.headers.contains_key(header::AUTHORIZATION)
            && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate);
        let private = cc.private || authorized;
        let consumer = if private { Some(consumer?) } else { None };

        let initial_age = h.get(header::AGE).map_or(0, |v| delta_seconds(v.as_bytes()));
        let lifetime = match cc.s_maxage.or(cc.max_age) {
            Some(secs) => Duration::from_secs(secs),
            None => match h.get(header::EXPIRES) {
                Some(expires) => expires_lifetime(expires, h.get(header::DATE)),
                None => self.default_ttl,
            },
        };
        let mut ttl = lifetime.saturating_sub(Duration::from_secs(initial_age));
        if let Some(max) = self.max_ttl {
            ttl = ttl.min(max);
        }
        if ttl.is_zero() {
            return None;
        }

        let declared_len = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > self.max_entry_size as u64) {
            return None;
        }
        let (headers, header_bytes) = stored_headers(h);

        let mut key = miss.primary;
        let variants = if private || !vary.is_empty() {
            let variants = Variants {
                key: key.clone().into_boxed_slice(),
                vary,
                private,
            };
            push_secondary(&mut key, &variants.vary, req, consumer);
            Some(variants)
        } else {
            None
        };
        if header_bytes + key.len() > MAX_META_BYTES {
            return None;
        }
        let capacity = declared_len.map_or(0, |n| usize::try_from(n).unwrap_or(0));
        Some(PendingEntry {
            key,
            variants,
            status,
            headers,
            header_bytes,
            body: Vec::with_capacity(capacity),
            max_entry_size: self.max_entry_size,
            declared_len,
            stored_at: now,
            ttl,
            initial_age,
            abandoned: false,
        })
    }

    /// host + path [+ query]; method-independent so HEAD can hit GET entries.
    /// Parts are length-prefixed so no two different requests share a key.
    fn primary_key(&self, req: &RequestHeader, host: &str, path: &str) -> Vec<u8> {
        let query = if self.key_query { req.uri.query() } else { None };
        let mut key = Vec::with_capacity(host.len() + path.len() + query.map_or(0, str::len) + 64);
        // Host names are case-insensitive; paths and queries are not.
        key.extend_from_slice(&(host.len() as u64).to_le_bytes());
        key.extend(host.bytes().map(|b| b.to_ascii_lowercase()));
        push_part(&mut key, path.as_bytes());
        match query {
            Some(q) => {
                key.push(1);
                push_part(&mut key, q.as_bytes());
            }
            None => key.push(0),
        }
        key
    }

    /// Stores the variants record unless an identical one is already there, so
    /// each variant store does not churn the primary slot.
    fn put_variants(&self, variants: Variants) {
        if let Some(Slot::Variants(old)) = self.store.get(&variants.key.to_vec()) {
            if *old == variants {
                return;
            }
        }
        self.put(variants.key.to_vec(), Slot::Variants(Arc::new(variants)));
    }

    fn put(&self, key: Vec<u8>, slot: Slot) {
        let bytes = slot.weight();
        let units = bytes.div_ceil(self.unit).max(1);
        // TinyUFO admits an item even when it alone exceeds the limit.
        let Some(units) = u16::try_from(units)
            .ok()
            .filter(|&u| usize::from(u) <= self.limit_units)
        else {
            return;
        };
        // TinyUFO replaces an existing key in place without reporting the old
        // weight, so read it first. `remove` is deliberately not used: it leaves
        // the key in its FIFO queue, so a re-insert queues the key twice and its
        // weight can later be subtracted twice from TinyUFO's own accounting.
        if let Some(old) = self.store.get(&key) {
            self.add_bytes(-(old.weight() as i64));
        }
        let evicted = self.store.put(key, slot, units);
        self.add_bytes(bytes as i64);
        // Includes the new item itself when TinyLFU declined to admit it.
        for kv in evicted {
            self.add_bytes(-(kv.data.weight() as i64));
        }
    }

    fn add_bytes(&self, delta: i64) {
        self.bytes.fetch_add(delta, Ordering::Relaxed);
    }
}

fn push_part(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&(part.len() as u64).to_le_bytes());
    key.extend_from_slice(part);
}

/// Appends the secondary key: the consumer for private entries, then the
/// request's values (trimmed, in order) of every `Vary` header name.
fn push_secondary(key: &mut Vec<u8>, vary: &[HeaderName], req: &RequestHeader, consumer: Option<&str>) {
    key.push(b'V');
    match consumer {
        Some(c) => {
            key.push(1);
            push_part(key, c.as_bytes());
        }
        None => key.push(0),
    }
    for name in vary {
        push_part(key, name.as_str().as_bytes());
        for value in req.headers.get_all(name) {
            key.push(1);
            push_part(key, value.as_bytes().trim_ascii());
        }
        key.push(0);
    }
}

mod rules;
use rules::*;

#[cfg(test)]
mod tests;
