//! JWT bearer authentication: owns the `jwt` policy's config, the compiled
//! verification keys (static keys from the config and keys fetched from a
//! JWKS URL), token extraction from a request, and signature + claim checks.
//! Key compilation and the JWKS fetch/refresh logic live in the `keys`
//! submodule, split out only to keep files short.
//!
//! The header and claims are parsed here rather than by `jsonwebtoken::decode`
//! so that every failure maps to one specific, client-safe [`JwtError`]
//! (`alg: none` is reported as such instead of as a JSON error) and so that key
//! selection enforces "header `alg` == the key's configured `alg`", which is
//! what defeats algorithm-confusion attacks.
//!
//! Dependencies and why:
//! - `jsonwebtoken` 9 (ring backend): PEM / JWK-component key parsing and the
//!   signature primitives; audited crypto we do not want to re-implement.
//! - `arc-swap`: the JWKS key set is read on every request; an `ArcSwap` load
//!   is lock-free and allocation-free, and a refresh swaps in a new set.
//! - `tokio::sync::Mutex`: single-flight for the rare refetch path only.
//! - `reqwest` (rustls): fetches the JWKS over HTTPS without OpenSSL.
//! - `base64`: strict URL-safe, unpadded segment decoding (RFC 7515).
//! - `serde` / `serde_json`: the config and the claims map handed to callers.
//! - `thiserror`: `JwtError`'s messages, which are shown to clients.
//! - `log`: JWKS fetch failures and skipped keys are operator information.

use crate::config::JwtConfig;
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use keys::{compile_key, Jwks, VerifyKey};

type Claims = Map<String, Value>;

/// A leeway this large would make `exp` meaningless; it is almost certainly a typo.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// Why a token was refused. The messages are shown to clients: they never contain the token or a key.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum JwtError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an algorithm this route does not accept: {0}")]
    AlgNotAllowed(String),
    #[error("token signed with an unknown key")]
    UnknownKid,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token has no expiry (exp)")]
    MissingExp,
    #[error("token issuer not accepted")]
    WrongIssuer,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("token given in more than one place")]
    AmbiguousCredentials,
    #[error("token signing keys are unavailable")]
    KeysUnavailable,
}

/// Verifies JWTs for one policy instance. `Send + Sync`; share it in an `Arc`.
pub struct JwtVerifier {
    keys: Vec<VerifyKey>,
    jwks: Option<Arc<Jwks>>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: f64,
    require_exp: bool,
    consumer_claim: String,
    header: String,
    bearer: bool,
    query: Option<String>,
    max_token_bytes: usize,
}

impl std::fmt::Debug for JwtVerifier {
    // Hand-written so key material can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("jwks_url", &self.jwks_url())
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Compiles the config: reads secrets / PEM files and parses keys now; no network I/O.
    /// Errors name the offending field.
    pub fn new(cfg: &JwtConfig, base_dir: &Path) -> Result<JwtVerifier, String> {
        if cfg.keys.is_empty() && cfg.jwks_url.is_none() {
            return Err("keys: give at least one key or a `jwks_url`".into());
        }
        let mut keys = Vec::with_capacity(cfg.keys.len());
        for (i, kc) in cfg.keys.iter().enumerate() {
            if let Some(kid) = &kc.kid {
                if cfg.keys[..i].iter().any(|k| k.kid.as_ref() == Some(kid)) {
                    return Err(format!("keys[{i}].kid: duplicate kid {kid:?}"));
                }
            }
            keys.push(compile_key(i, kc, base_dir)?);
        }
        if cfg.leeway.0 > MAX_LEEWAY {
            return Err("leeway: must be at most 1h".into());
        }
        if cfg.max_token_bytes == 0 {
            return Err("max_token_bytes: must be greater than 0".into());
        }
        if cfg.consumer_claim.is_empty() {
            return Err("consumer_claim: must not be empty".into());
        }
        if cfg.header.is_empty() {
            return Err("header: must not be empty".into());
        }
        if cfg.query.as_deref() == Some("") {
            return Err("query: must not be empty".into());
        }
        let jwks = match &cfg.jwks_url {
            None => None,
            Some(url) => Some(Arc::new(Jwks::new(url, cfg)?)),
        };
        let header = cfg.header.to_ascii_lowercase();
        Ok(JwtVerifier {
            keys,
            jwks,
            issuers: cfg.issuers.clone(),
            audiences: cfg.audiences.clone(),
            leeway: cfg.leeway.0.as_secs_f64(),
            require_exp: cfg.require_exp,
            consumer_claim: cfg.consumer_claim.clone(),
            bearer: header == "authorization",
            header,
            query: cfg.query.clone(),
            max_token_bytes: cfg.max_token_bytes,
        })
    }

    /// Carries over JWKS keys already fetched by the previous config's verifier when
    /// `jwks_url` is unchanged, so a reload neither refetches nor forgets them.
    pub fn inherit(&self, previous: &JwtVerifier) {
        if let (Some(new), Some(old)) = (&self.jwks, &previous.jwks) {
            if new.url == old.url {
                new.inherit_from(old);
            }
        }
    }

    /// The header to read the token from (lowercase).
    pub fn header_name(&self) -> &str {
        &self.header
    }

    pub fn jwks_url(&self) -> Option<&str> {
        self.jwks.as_deref().map(|j| j.url.as_str())
    }

    /// Extracts the token from the configured header's value and the raw query string.
    /// `Ok(None)` means no token (an `Authorization` header with another scheme counts as none).
    /// A token in both places, or a repeated query parameter, is `AmbiguousCredentials`.
    pub fn extract<'a>(
        &self,
        header: Option<&'a [u8]>,
        query: Option<&'a str>,
    ) -> Result<Option<Cow<'a, str>>, JwtError> {
        let from_header = match header {
            Some(v) => token_from_header(v, self.bearer, self.max_token_bytes)?,
            None => None,
        };
        let from_query = match (&self.query, query) {
            (Some(name), Some(q)) => token_from_query(q, name, self.max_token_bytes)?,
            _ => None,
        };
        match (from_header, from_query) {
            (Some(_), Some(_)) => Err(JwtError::AmbiguousCredentials),
            (Some(t), None) => Ok(Some(Cow::Borrowed(t))),
            (None, q) => Ok(q),
        }
    }

    /// Verifies the signature, then the claims, and returns the claims. Only an unknown `kid`
    /// (or a never-loaded JWKS) awaits a fetch; a known key costs no lock.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        if token.len() > self.max_token_bytes {
            return Err(JwtError::TooLarge);
        }
        let parts = Parts::split(token)?;
        let header_json = URL_SAFE_NO_PAD.decode(parts.header).map_err(|_| JwtError::Malformed)?;
        // serde would also accept a JSON array for a struct; a JOSE header must be an object.
        if header_json.trim_ascii_start().first() != Some(&b'{') {
            return Err(JwtError::Malformed);
        }
        let header: RawHeader = serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if header.crit.is_some() {
            // RFC 7515 4.1.11: extensions we do not understand must be refused.
            return Err(JwtError::Malformed);
        }
        let alg = Algorithm::from_str(&header.alg).map_err(|_| JwtError::AlgNotAllowed(alg_label(&header.alg)))?;
        if parts.signature.is_empty() {
            return Err(JwtError::BadSignature);
        }
        let kid = header.kid.as_deref();

        let mut outcome = try_keys(&self.keys, kid, alg, true, &parts);
        if outcome != Outcome::Verified {
            if let Some(jwks) = &self.jwks {
                outcome = outcome.max(jwks.lookup(kid, alg, &parts).await?);
            }
        }
        match outcome {
            Outcome::Verified => {}
            Outcome::BadSignature => return Err(JwtError::BadSignature),
            Outcome::AlgMismatch => return Err(JwtError::AlgNotAllowed(alg_label(&header.alg))),
            Outcome::NoKey if kid.is_some() => return Err(JwtError::UnknownKid),
            Outcome::NoKey => return Err(JwtError::AlgNotAllowed(alg_label(&header.alg))),
        }

        let payload = URL_SAFE_NO_PAD.decode(parts.payload).map_err(|_| JwtError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;
        self.check_claims(&claims)?;
        Ok(claims)
    }

    /// The consumer claim's string value.
    pub fn consumer_of<'c>(&self, claims: &'c Claims) -> Option<&'c str> {
        claims.get(&self.consumer_claim).and_then(Value::as_str)
    }

    /// Fetches the JWKS now (startup, or an operator's refresh); not rate-limited.
    /// On failure the old keys stay in use. `Ok` when no `jwks_url` is configured.
    pub async fn refresh_jwks(&self) -> Result<(), String> {
        match &self.jwks {
            None => Ok(()),
            Some(jwks) => jwks.refresh().await,
        }
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), JwtError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        match claims.get("exp") {
            // RFC 7519 4.1.4: the token must not be accepted on or after `exp`.
            Some(v) if now - self.leeway >= numeric_date(v)? => return Err(JwtError::Expired),
            Some(_) => {}
            None if self.require_exp => return Err(JwtError::MissingExp),
            None => {}
        }
        if let Some(v) = claims.get("nbf") {
            if now + self.leeway < numeric_date(v)? {
                return Err(JwtError::NotYetValid);
            }
        }
        if !self.issuers.is_empty() {
            match claims.get("iss").and_then(Value::as_str) {
                Some(iss) if self.issuers.iter().any(|i| i == iss) => {}
                _ => return Err(JwtError::WrongIssuer),
            }
        }
        if !self.audiences.is_empty() {
            let accepted = |a: &str| self.audiences.iter().any(|x| x == a);
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => accepted(a),
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
                _ => false,
            };
            if !ok {
                return Err(JwtError::WrongAudience);
            }
        }
        Ok(())
    }
}

/// The three segments of a compact JWS; `signed` is `header.payload`, the signing input.
struct Parts<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    signed: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Parts<'t>, JwtError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(JwtError::Malformed)?;
        // Checking the alphabet up front makes garbage `Malformed` before any crypto runs.
        let b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if header.is_empty() || payload.is_empty() || !b64url(header) || !b64url(payload) || !b64url(signature) {
            return Err(JwtError::Malformed);
        }
        Ok(Parts {
            header,
            payload,
            signature,
            signed,
        })
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Ordered so that combining the static and JWKS results keeps the most specific one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    NoKey,
    AlgMismatch,
    BadSignature,
    Verified,
}

/// Tries the keys matching `kid` whose `alg` equals the token's. Keys without a kid match a
/// token with a kid only when `kidless_matches_any` (static keys; not JWKS keys).
fn try_keys(
    keys: &[VerifyKey],
    kid: Option<&str>,
    alg: Algorithm,
    kidless_matches_any: bool,
    parts: &Parts,
) -> Outcome {
    let mut outcome = Outcome::NoKey;
    for k in keys {
        let kid_matches = match (kid, k.kid.as_deref()) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => kidless_matches_any,
            (None, _) => true,
        };
        if !kid_matches {
            continue;
        }
        if k.alg != alg {
            outcome = outcome.max(Outcome::AlgMismatch);
            continue;
        }
        if let Ok(true) = jsonwebtoken::crypto::verify(parts.signature, parts.signed.as_bytes(), &k.key, alg) {
            return Outcome::Verified;
        }
        outcome = Outcome::BadSignature;
    }
    outcome
}

fn numeric_date(v: &Value) -> Result<f64, JwtError> {
    v.as_f64().filter(|f| f.is_finite()).ok_or(JwtError::Malformed)
}

/// The token's `alg` is attacker-controlled: keep it short and printable before echoing it.
fn alg_label(alg: &str) -> String {
    let label: String = alg
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect();
    if label.is_empty() {
        "?".into()
    } else {
        label
    }
}

fn token_from_header(value: &[u8], bearer: bool, max: usize) -> Result<Option<&str>, JwtError> {
    let value = value.trim_ascii();
    let token = if bearer {
        // Scheme is case-insensitive (RFC 9110 11.1); other schemes belong to other policies.
        match value.get(..6) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer") => {}
            _ => return Ok(None),
        }
        let rest = &value[6..];
        match rest.first() {
            None => return Err(JwtError::Malformed),
            Some(b' ' | b'\t') => {}
            Some(_) => return Ok(None), // e.g. "BearerX ..." is a different scheme
        }
        let token = rest.trim_ascii();
        if token.is_empty() {
            return Err(JwtError::Malformed);
        }
        token
    } else if value.is_empty() {
        return Ok(None);
    } else {
        value
    };
    if token.len() > max {
        return Err(JwtError::TooLarge);
    }
    std::str::from_utf8(token).map(Some).map_err(|_| JwtError::Malformed)
}

fn token_from_query<'a>(query: &'a str, name: &str, max: usize) -> Result<Option<Cow<'a, str>>, JwtError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name || value.is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(JwtError::AmbiguousCredentials);
        }
        found = Some(value);
    }
    let Some(raw) = found else { return Ok(None) };
    // Percent-encoding at most triples the length; bound the work before decoding.
    if raw.len() > max.saturating_mul(3) {
        return Err(JwtError::TooLarge);
    }
    let token = percent_decode(raw)?;
    if token.len() > max {
        return Err(JwtError::TooLarge);
    }
    Ok(Some(token))
}

fn percent_decode(s: &str) -> Result<Cow<'_, str>, JwtError> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(JwtError::Malformed)?;
            let hex = std::str::from_utf8(hex).map_err(|_| JwtError::Malformed)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| JwtError::Malformed)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| JwtError::Malformed)
}

mod keys;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
