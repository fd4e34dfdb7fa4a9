//! `basic_auth`: HTTP Basic against consumers' bcrypt or argon2 hashes.
//!
//! Password hashes are slow on purpose (tens of milliseconds), so a check
//! runs on tokio's blocking pool, never on a request thread, and a success is
//! remembered for a few minutes under the SHA-256 of the login, so a client
//! reusing its credentials pays the hash once. The memory cache is
//! `pingora-memory-cache` (Pingora's lock-free TinyUFO cache); it keys by a
//! 64-bit hash, so the stored value is the full digest and is compared.

use crate::config::BasicAuthConfig;
use crate::error::GatewayError;
use crate::policy::auth::consumer::key_digest;
use crate::policy::{Identity, PolicyState, Rejection, RequestView, Step};
use base64::Engine;
use http::HeaderValue;
use pingora_memory_cache::MemoryCache;
use std::sync::Arc;
use std::time::Duration;

/// How long a verified login is remembered.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

pub struct BasicAuth {
    challenge: HeaderValue,
    hide: bool,
    optional: bool,
    verified: Arc<MemoryCache<[u8; 32], [u8; 32]>>,
}

impl BasicAuth {
    pub fn new(c: &BasicAuthConfig) -> BasicAuth {
        let realm = c.realm.replace(['"', '\\'], "");
        BasicAuth {
            challenge: HeaderValue::from_str(&format!("Basic realm=\"{realm}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"portico\"")),
            hide: c.hide_credentials,
            optional: c.optional,
            verified: Arc::new(MemoryCache::new(4096)),
        }
    }

    fn reject(&self, msg: &str) -> Step {
        Step::Reject(
            Rejection::new(GatewayError::Unauthorized, msg)
                .with_header(http::header::WWW_AUTHENTICATE, self.challenge.clone()),
        )
    }

    pub async fn check(&self, view: &RequestView<'_>, state: &mut PolicyState) -> Step {
        let Some(value) = view.req.headers.get(http::header::AUTHORIZATION) else {
            if self.optional {
                return Step::Continue;
            }
            return self.reject("missing credentials");
        };
        let Some((user, password)) = parse_basic(value.as_bytes()) else {
            if self.optional
                && !value
                    .as_bytes()
                    .get(..6)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"basic "))
            {
                // Another scheme (a Bearer token) is for a later auth step.
                return Step::Continue;
            }
            return self.reject("malformed Basic credentials");
        };
        let Some((holder, hash)) = view.consumers.login(&user) else {
            return self.reject("invalid username or password");
        };
        let mut login = Vec::with_capacity(user.len() + password.len() + 1);
        login.extend_from_slice(user.as_bytes());
        login.push(0);
        login.extend_from_slice(&password);
        let digest = key_digest(&login);
        let cached = self.verified.get(&digest).0.is_some_and(|d| d == digest);
        if !cached {
            let hash = hash.clone();
            let ok = tokio::task::spawn_blocking(move || hash.verify(&password))
                .await
                .unwrap_or(false);
            if !ok {
                return self.reject("invalid username or password");
            }
            self.verified.put(&digest, digest, Some(VERIFIED_TTL));
        }
        // Checked after the password, so an expiry tells nothing to a guesser.
        let idx = match holder.live(view.consumers) {
            Ok(i) => i,
            Err(r) => return Step::Reject(r),
        };
        state.identity = Some(Identity::of_consumer(
            idx,
            view.consumers.get(idx),
            Some(holder.credential),
        ));
        if self.hide {
            state.strip_headers.push(http::header::AUTHORIZATION);
        }
        Step::Continue
    }
}

/// `Basic base64(user:password)`; the scheme is case-insensitive.
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    #[test]
    fn parsing() {
        // "alice:s3cret:with:colons"
        let (u, p) = parse_basic(b"Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z").unwrap();
        assert_eq!(u, "alice");
        assert_eq!(p, b"s3cret:with:colons");
        assert!(parse_basic(b"basic YWxpY2U6eA==").is_some());
        assert!(parse_basic(b"Bearer abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic bm9jb2xvbg==").is_none());
        assert!(parse_basic(b"Basic").is_none());
    }
}
