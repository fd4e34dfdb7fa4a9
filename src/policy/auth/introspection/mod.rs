//! OAuth2 token introspection (RFC 7662) for opaque bearer tokens: owns the
//! `introspection` policy's config, token extraction, the call to the
//! authorization server's introspection endpoint, and the cache in front of it.
//!
//! An active token is cached until `min(exp, now + cache_ttl)`, an inactive one
//! for `negative_cache_ttl`; endpoint failures are never cached. The cache key
//! is the SHA-256 of the token, so raw tokens are not kept in memory longer
//! than a request.
//!
//! Dependencies and why:
//! - `reqwest` (rustls): the POST to the endpoint, with a whole-request timeout.
//! - `moka` (future cache): bounded, per-entry TTL (needed for `min(exp, ttl)`)
//!   and `try_get_with`, which coalesces concurrent lookups of one token into
//!   one request. `pingora-memory-cache` was not used because it identifies
//!   entries by a 64-bit hash alone: a collision would hand one token's claims
//!   to another token; moka compares the full 32-byte key.
//! - `sha2`: the cache key.
//! - `base64`: the HTTP Basic credentials.
//! - `serde` / `serde_json`: config and the introspection response.
//! - `thiserror`: `IntrospectError`'s messages, which are shown to clients.
//! - `log`: endpoint failures are reported to operators with detail the client must not see.

use crate::config::IntrospectionConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use moka::future::Cache;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

type Claims = Map<String, Value>;

/// Introspection responses are small; a huge body means the endpoint URL is wrong.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why a token was refused. Messages are shown to clients: no secrets, no endpoint details.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub(crate) enum IntrospectError {
    #[error("token too large")]
    TooLarge,
    #[error("token is not active")]
    Inactive,
    #[error("token introspection unavailable: {0}")]
    Unavailable(String),
}

/// A cached answer. `expires` repeats the TTL given to moka so a stale entry is never used
/// even if eviction lags.
#[derive(Clone)]
struct Entry {
    active: Option<Arc<Claims>>,
    ttl: Duration,
    expires: Instant,
}

struct EntryTtl;

impl moka::Expiry<[u8; 32], Entry> for EntryTtl {
    fn expire_after_create(&self, _key: &[u8; 32], entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Introspects tokens for one policy instance. `Send + Sync`; share it in an `Arc`.
pub(crate) struct Introspector {
    endpoint: String,
    client: reqwest::Client,
    authorization: HeaderValue,
    cache: Cache<[u8; 32], Entry>,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    consumer_claim: String,
    header: String,
    bearer: bool,
    max_token_bytes: usize,
}

impl std::fmt::Debug for Introspector {
    // Hand-written so the client secret can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Validates the config and reads the client secret; no network I/O.
    pub(crate) fn new(cfg: &IntrospectionConfig, base_dir: &Path) -> Result<Introspector, String> {
        let url =
            reqwest::Url::parse(&cfg.endpoint).map_err(|e| format!("endpoint: invalid URL {:?}: {e}", cfg.endpoint))?;
        match url.scheme() {
            "https" => {}
            "http" => log::warn!(
                "introspection endpoint {} is plain http: the client secret travels in clear",
                url
            ),
            _ => return Err(format!("endpoint: {:?} must be an http or https URL", cfg.endpoint)),
        }
        if cfg.client_id.is_empty() {
            return Err("client_id: must not be empty".into());
        }
        let secret = cfg
            .client_secret
            .read(base_dir)
            .map_err(|e| format!("client_secret: {e}"))?;
        if cfg.timeout.0.is_zero() {
            return Err("timeout: must be greater than 0".into());
        }
        // Caching an answer for longer than a day defeats revocation; also keeps TTL math small.
        if cfg.cache_ttl.0 > MAX_CACHE_TTL || cfg.negative_cache_ttl.0 > MAX_CACHE_TTL {
            return Err("cache_ttl / negative_cache_ttl: must be at most 24h".into());
        }
        if cfg.cache_entries == 0 {
            return Err("cache_entries: must be greater than 0".into());
        }
        if cfg.max_token_bytes == 0 {
            return Err("max_token_bytes: must be greater than 0".into());
        }
        if cfg.header.is_empty() {
            return Err("header: must not be empty".into());
        }
        // RFC 6749 2.3.1: id and secret are form-urlencoded before the Basic encoding.
        let mut credentials = String::new();
        form_encode(&cfg.client_id, &mut credentials);
        credentials.push(':');
        form_encode(&secret, &mut credentials);
        let mut authorization = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
            .map_err(|_| "client_secret: cannot be sent in a header".to_string())?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.0)
            .build()
            .map_err(|e| format!("endpoint: cannot build an HTTP client: {e}"))?;
        let cache = Cache::builder()
            .max_capacity(u64::try_from(cfg.cache_entries).unwrap_or(u64::MAX))
            .expire_after(EntryTtl)
            .build();
        let header = cfg.header.to_ascii_lowercase();
        Ok(Introspector {
            endpoint: cfg.endpoint.clone(),
            client,
            authorization,
            cache,
            cache_ttl: cfg.cache_ttl.0,
            negative_cache_ttl: cfg.negative_cache_ttl.0,
            consumer_claim: cfg.consumer_claim.clone(),
            bearer: header == "authorization",
            header,
            max_token_bytes: cfg.max_token_bytes,
        })
    }

    /// The header to read the token from (lowercase).
    #[cfg(test)]
    pub(crate) fn header_name(&self) -> &str {
        &self.header
    }

    /// Extracts the token from the header value. `Ok(None)`: no token (absent, empty, or an
    /// `Authorization` header with another scheme).
    pub(crate) fn extract<'a>(&self, header: Option<&'a [u8]>) -> Result<Option<&'a str>, IntrospectError> {
        let Some(value) = header else { return Ok(None) };
        let value = value.trim_ascii();
        let token = if self.bearer {
            // Scheme is case-insensitive (RFC 9110 11.1); other schemes belong to other policies.
            match value.get(..6) {
                Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer") => {}
                _ => return Ok(None),
            }
            let rest = &value[6..];
            if !matches!(rest.first(), Some(b' ' | b'\t')) {
                return Ok(None);
            }
            rest.trim_ascii()
        } else {
            value
        };
        if token.is_empty() {
            return Ok(None);
        }
        if token.len() > self.max_token_bytes {
            return Err(IntrospectError::TooLarge);
        }
        // A token that is not text cannot be active; no need to ask the server.
        std::str::from_utf8(token)
            .map(Some)
            .map_err(|_| IntrospectError::Inactive)
    }

    /// Returns the introspection response of an active token, from the cache when possible.
    /// Concurrent lookups of one token share a single endpoint call.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Claims, IntrospectError> {
        if token.len() > self.max_token_bytes {
            return Err(IntrospectError::TooLarge);
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut entry = self.lookup(key, token).await?;
        if entry.expires <= Instant::now() {
            // Moka had not evicted it yet; ask again rather than trust a stale answer.
            self.cache.invalidate(&key).await;
            entry = self.lookup(key, token).await?;
        }
        match entry.active {
            Some(claims) => Ok(Claims::clone(&claims)),
            None => Err(IntrospectError::Inactive),
        }
    }

    /// The consumer name: `consumer_claim`, else `username`, else `client_id` (RFC 7662 fields).
    pub(crate) fn consumer_of<'c>(&self, claims: &'c Claims) -> Option<&'c str> {
        [self.consumer_claim.as_str(), "username", "client_id"]
            .into_iter()
            .find_map(|name| claims.get(name).and_then(Value::as_str))
    }

    async fn lookup(&self, key: [u8; 32], token: &str) -> Result<Entry, IntrospectError> {
        self.cache
            .try_get_with(key, self.call_endpoint(token))
            .await
            .map_err(|e| IntrospectError::clone(&e))
    }

    async fn call_endpoint(&self, token: &str) -> Result<Entry, IntrospectError> {
        let mut body = String::with_capacity(token.len() + 40);
        body.push_str("token=");
        form_encode(token, &mut body);
        body.push_str("&token_type_hint=access_token");
        let mut resp = self
            .client
            .post(&self.endpoint)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unavailable(&e))?;
        if resp.status() != reqwest::StatusCode::OK {
            log::warn!(
                "introspection endpoint {} returned HTTP {}",
                self.endpoint,
                resp.status()
            );
            return Err(IntrospectError::Unavailable(format!(
                "endpoint returned HTTP {}",
                resp.status().as_u16()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unavailable(&e))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                log::warn!(
                    "introspection endpoint {}: response over {MAX_RESPONSE_BYTES} bytes",
                    self.endpoint
                );
                return Err(IntrospectError::Unavailable(
                    "endpoint returned an invalid response".into(),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let claims = parse_response(&bytes).map_err(|e| {
            log::warn!("introspection endpoint {}: {e}", self.endpoint);
            IntrospectError::Unavailable("endpoint returned an invalid response".into())
        })?;
        Ok(self.entry_for(claims))
    }

    /// Decides what to cache and for how long. An `exp` in the past makes the token inactive
    /// whatever `active` says; a future `exp` caps the cache lifetime.
    fn entry_for(&self, claims: Option<Claims>) -> Entry {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let active = claims.and_then(|claims| match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if exp <= now_unix => None,
            Some(exp) => Some((
                Duration::try_from_secs_f64(exp - now_unix).unwrap_or(Duration::MAX),
                claims,
            )),
            None => Some((Duration::MAX, claims)),
        });
        let (ttl, active) = match active {
            Some((remaining, claims)) => (remaining.min(self.cache_ttl), Some(Arc::new(claims))),
            None => (self.negative_cache_ttl, None),
        };
        let now = Instant::now();
        Entry {
            active,
            ttl,
            expires: now.checked_add(ttl).unwrap_or(now),
        }
    }

    /// Logs the transport error in full; the client gets only its kind.
    fn unavailable(&self, e: &reqwest::Error) -> IntrospectError {
        log::warn!("introspection endpoint {} failed: {e}", self.endpoint);
        let what = if e.is_timeout() {
            "endpoint timed out"
        } else if e.is_connect() {
            "endpoint unreachable"
        } else {
            "endpoint request failed"
        };
        IntrospectError::Unavailable(what.into())
    }
}

/// `Ok(Some(claims))` for `"active": true`, `Ok(None)` for `"active": false`. A response
/// without a boolean `active` is a broken endpoint, not an inactive token.
fn parse_response(body: &[u8]) -> Result<Option<Claims>, String> {
    let claims: Claims = serde_json::from_slice(body).map_err(|e| format!("response is not a JSON object ({e})"))?;
    match claims.get("active") {
        Some(Value::Bool(true)) => Ok(Some(claims)),
        Some(Value::Bool(false)) => Ok(None),
        _ => Err("response has no boolean `active`".into()),
    }
}

/// application/x-www-form-urlencoded (WHATWG URL 5.2), appended to `out`.
fn form_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0F)]));
            }
        }
    }
}

#[cfg(test)]
mod tests;
