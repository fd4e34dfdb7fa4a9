//! JWT bearer authentication: owns the `jwt` policy's config, the compiled
//! verification keys (static keys from the config and keys fetched from a
//! JWKS URL), token extraction from a request, and signature + claim checks.
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

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{ConfDuration, SecretRef};

type Claims = Map<String, Value>;

/// Bounds one JWKS fetch (connect + response + body) so a slow IdP cannot stall requests for long.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few KiB; anything far larger is a misconfigured URL.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// A leeway this large would make `exp` meaningless; it is almost certainly a typo.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);
/// DER encodings of the named-curve OIDs, used to check a PEM's curve against its `alg`.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// The `jwt` policy's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Static verification keys.
    pub keys: Vec<JwtKeyConfig>,
    /// An http(s) URL of a JWKS document.
    pub jwks_url: Option<String>,
    /// Keys older than this are refreshed in the background (default 5m).
    pub jwks_refresh: ConfDuration,
    /// An unknown `kid` triggers at most one refetch per this interval (default 10s).
    pub jwks_min_refresh: ConfDuration,
    /// Accepted `iss` values; empty = not checked.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty = not checked, else the token's `aud` must contain one.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30s).
    pub leeway: ConfDuration,
    /// Reject tokens without `exp` (default true).
    pub require_exp: bool,
    /// The claim whose string value names the consumer (default `sub`).
    pub consumer_claim: String,
    /// The header carrying the token (default `authorization`, as `Bearer <token>`).
    pub header: String,
    /// An optional query parameter carrying the token.
    pub query: Option<String>,
    /// Longer tokens are rejected before any parsing (default 8192).
    pub max_token_bytes: usize,
    /// Remove the token from the request before proxying (default true).
    pub hide_credentials: bool,
    /// Let requests without a token through unidentified (default false).
    pub optional: bool,
    /// Refuse tokens whose consumer claim names no configured consumer (default false).
    pub require_consumer: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            keys: Vec::new(),
            jwks_url: None,
            jwks_refresh: ConfDuration(Duration::from_secs(300)),
            jwks_min_refresh: ConfDuration(Duration::from_secs(10)),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: ConfDuration(Duration::from_secs(30)),
            require_exp: true,
            consumer_claim: "sub".into(),
            header: "authorization".into(),
            query: None,
            max_token_bytes: 8192,
            hide_credentials: true,
            optional: false,
            require_consumer: false,
        }
    }
}

/// One static key: `secret` for HS*, otherwise exactly one of `public_key` / `public_key_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    pub kid: Option<String>,
    pub alg: String,
    pub secret: Option<SecretRef>,
    pub public_key: Option<String>,
    pub public_key_file: Option<PathBuf>,
}

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

/// A compiled key. `alg` is fixed per key: a token is only ever checked with its own key's algorithm.
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// One JWKS snapshot; `fetched_at` is `None` until the first successful fetch.
struct KeySet {
    keys: Vec<VerifyKey>,
    fetched_at: Option<Instant>,
}

/// JWKS state shared with background refresh tasks (hence in an `Arc`).
struct Jwks {
    url: String,
    client: reqwest::Client,
    refresh: Duration,
    min_refresh: Duration,
    keys: ArcSwap<KeySet>,
    /// Serializes fetches so concurrent misses share one request.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Time of the last rate-limited fetch attempt, as `now_ms()`; 0 = never. Atomic so the
    /// staleness check on the request path stays lock-free.
    last_attempt: AtomicU64,
    background: AtomicBool,
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
                new.keys.store(old.keys.load_full());
                new.last_attempt
                    .store(old.last_attempt.load(Ordering::Acquire), Ordering::Release);
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
            Some(jwks) => {
                let _guard = jwks.fetch_lock.lock().await;
                let set = jwks.fetch().await?;
                jwks.keys.store(Arc::new(set));
                Ok(())
            }
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

#[derive(Clone, Copy, PartialEq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Ed,
        _ => Family::Rsa,
    }
}

fn compile_key(i: usize, kc: &JwtKeyConfig, base_dir: &Path) -> Result<VerifyKey, String> {
    let alg = Algorithm::from_str(&kc.alg).map_err(|_| {
        format!(
            "keys[{i}].alg: unsupported algorithm {:?}; use one of HS256 HS384 HS512 RS256 RS384 RS512 \
             PS256 PS384 PS512 ES256 ES384 EdDSA",
            kc.alg
        )
    })?;
    let key = if family(alg) == Family::Hmac {
        if kc.public_key.is_some() || kc.public_key_file.is_some() {
            return Err(format!("keys[{i}]: {} keys take `secret`, not a public key", kc.alg));
        }
        let secret = kc
            .secret
            .as_ref()
            .ok_or_else(|| format!("keys[{i}].secret: required for {}", kc.alg))?;
        let secret = secret.read(base_dir).map_err(|e| format!("keys[{i}].secret: {e}"))?;
        if secret.len() < 32 {
            // RFC 7518 3.2 wants at least the hash size; warn rather than break existing setups.
            log::warn!("jwt keys[{i}].secret: shorter than 32 bytes; HMAC secrets this short are guessable");
        }
        DecodingKey::from_secret(secret.as_bytes())
    } else {
        if kc.secret.is_some() {
            return Err(format!(
                "keys[{i}].secret: only for HS256/HS384/HS512; give `public_key` or `public_key_file`"
            ));
        }
        let (field, pem) = match (&kc.public_key, &kc.public_key_file) {
            (Some(pem), None) => ("public_key", pem.clone()),
            (None, Some(file)) => {
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    base_dir.join(file)
                };
                let pem = std::fs::read_to_string(&path)
                    .map_err(|e| format!("keys[{i}].public_key_file: cannot read {}: {e}", path.display()))?;
                ("public_key_file", pem)
            }
            _ => {
                return Err(format!(
                    "keys[{i}]: give exactly one of `public_key` or `public_key_file`"
                ))
            }
        };
        parse_public_pem(alg, &pem).map_err(|e| format!("keys[{i}].{field}: {e}"))?
    };
    Ok(VerifyKey {
        kid: kc.kid.clone(),
        alg,
        key,
    })
}

fn parse_public_pem(alg: Algorithm, pem: &str) -> Result<DecodingKey, String> {
    if pem.contains("PRIVATE KEY") {
        return Err("this is a private key; give the public key (`openssl pkey -pubout`)".into());
    }
    match family(alg) {
        Family::Rsa => DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| "not a valid RSA public key".into()),
        Family::Ed => DecodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| "not a valid Ed25519 public key".into()),
        Family::Ec => {
            let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| "not a valid EC public key".to_string())?;
            // A curve/alg mismatch would make every signature fail; say so at load time instead.
            let (oid, curve) = if alg == Algorithm::ES256 {
                (OID_P256, "P-256")
            } else {
                (OID_P384, "P-384")
            };
            let der = pem_body(pem).ok_or("not a valid EC public key")?;
            if !der.windows(oid.len()).any(|w| w == oid) {
                return Err(format!("an EC public key on curve {curve} is required for {alg:?}"));
            }
            Ok(key)
        }
        Family::Hmac => Err("HMAC keys are not PEM".into()),
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD.decode(b64).ok()
}

/// A process-wide origin so attempt times fit in an `AtomicU64` and survive `inherit`.
fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let ms = ORIGIN.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1)
}

impl Jwks {
    fn new(url: &str, cfg: &JwtConfig) -> Result<Jwks, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("jwks_url: invalid URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("jwks_url: {url:?} must be an http or https URL"));
        }
        if cfg.jwks_refresh.0.is_zero() || cfg.jwks_min_refresh.0.is_zero() {
            return Err("jwks_refresh / jwks_min_refresh: must be greater than 0".into());
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("jwks_url: cannot build an HTTP client: {e}"))?;
        Ok(Jwks {
            url: url.to_string(),
            client,
            refresh: cfg.jwks_refresh.0,
            min_refresh: cfg.jwks_min_refresh.0,
            keys: ArcSwap::from_pointee(KeySet {
                keys: Vec::new(),
                fetched_at: None,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            last_attempt: AtomicU64::new(0),
            background: AtomicBool::new(false),
        })
    }

    async fn lookup(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
        parts: &Parts<'_>,
    ) -> Result<Outcome, JwtError> {
        // The guard must not live across an await (it would make the future !Send).
        let seen = {
            let current = self.keys.load();
            self.refresh_in_background_if_stale(&current);
            let outcome = try_keys(&current.keys, kid, alg, false, parts);
            if outcome != Outcome::NoKey {
                return Ok(outcome);
            }
            arc_swap::Guard::into_inner(current)
        };
        if self.fetch_if_due(&seen).await {
            let current = self.keys.load_full();
            let outcome = try_keys(&current.keys, kid, alg, false, parts);
            if outcome != Outcome::NoKey || current.fetched_at.is_some() {
                return Ok(outcome);
            }
        } else if seen.fetched_at.is_some() {
            return Ok(Outcome::NoKey);
        }
        Err(JwtError::KeysUnavailable)
    }

    fn attempt_due(&self) -> bool {
        let last = self.last_attempt.load(Ordering::Acquire);
        let min = u64::try_from(self.min_refresh.as_millis()).unwrap_or(u64::MAX);
        last == 0 || now_ms().saturating_sub(last) >= min
    }

    /// Lazy periodic refresh: the request keeps using the current keys while a task fetches.
    fn refresh_in_background_if_stale(self: &Arc<Self>, set: &KeySet) {
        let stale = set.fetched_at.is_none_or(|t| t.elapsed() >= self.refresh);
        if !stale || !self.attempt_due() || self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.background.store(false, Ordering::Release);
            return;
        };
        let jwks = Arc::clone(self);
        runtime.spawn(async move {
            let seen = jwks.keys.load_full();
            jwks.fetch_if_due(&seen).await;
            jwks.background.store(false, Ordering::Release);
        });
    }

    /// Single-flight, rate-limited fetch. Returns true when the key set changed since `seen`
    /// (fetched by us or by whoever held the lock before us), i.e. a retry is worthwhile.
    async fn fetch_if_due(&self, seen: &Arc<KeySet>) -> bool {
        let _guard = self.fetch_lock.lock().await;
        if !Arc::ptr_eq(&self.keys.load(), seen) {
            return true;
        }
        if !self.attempt_due() {
            return false;
        }
        self.last_attempt.store(now_ms(), Ordering::Release);
        match self.fetch().await {
            Ok(set) => {
                self.keys.store(Arc::new(set));
                true
            }
            Err(e) => {
                log::warn!("jwt: {e}; keeping the previous keys");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let url = &self.url;
        let mut resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("JWKS fetch from {url} failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("JWKS fetch from {url} failed: HTTP {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(format!("JWKS from {url} is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("JWKS fetch from {url} failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS from {url} is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_jwks(&body).map_err(|e| format!("JWKS from {url}: {e}"))?;
        Ok(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
        })
    }
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses the usable signing keys; a key that fails to parse is logged and skipped so one odd
/// entry cannot take the whole set down. An empty result is an error (old keys are kept).
fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyKey>, String> {
    let doc: JwksDoc = serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({e})"))?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    for (i, value) in doc.keys.into_iter().enumerate() {
        match serde_json::from_value::<Jwk>(value)
            .map_err(|e| e.to_string())
            .and_then(|jwk| jwk_to_key(&jwk))
        {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(e) => log::warn!("jwt: skipping JWKS keys[{i}]: {e}"),
        }
    }
    if keys.is_empty() {
        return Err("no usable signing keys".into());
    }
    Ok(keys)
}

fn jwk_to_key(jwk: &Jwk) -> Result<Option<VerifyKey>, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None); // encryption keys are not ours to use
    }
    let field = |v: &Option<String>, name: &str| v.clone().ok_or_else(|| format!("missing `{name}`"));
    let decoded_len = |v: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(v)
            .map(|b| b.len())
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    let (key, natural) = match jwk.kty.as_str() {
        "RSA" => {
            let (n, e) = (field(&jwk.n, "n")?, field(&jwk.e, "e")?);
            // ring refuses RSA keys under 2048 bits; skip them here with a clear reason.
            if decoded_len(&n, "n")? < 256 {
                return Err("RSA key shorter than 2048 bits".into());
            }
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|_| "invalid RSA key".to_string())?;
            (key, Algorithm::RS256)
        }
        "EC" => {
            let (size, natural) = match field(&jwk.crv, "crv")?.as_str() {
                "P-256" => (32, Algorithm::ES256),
                "P-384" => (48, Algorithm::ES384),
                other => return Err(format!("unsupported curve {other:?}")),
            };
            let (x, y) = (field(&jwk.x, "x")?, field(&jwk.y, "y")?);
            if decoded_len(&x, "x")? != size || decoded_len(&y, "y")? != size {
                return Err("EC coordinates have the wrong length".into());
            }
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|_| "invalid EC key".to_string())?;
            (key, natural)
        }
        "OKP" => {
            let crv = field(&jwk.crv, "crv")?;
            if crv != "Ed25519" {
                return Err(format!("unsupported curve {crv:?}"));
            }
            let x = field(&jwk.x, "x")?;
            if decoded_len(&x, "x")? != 32 {
                return Err("Ed25519 key has the wrong length".into());
            }
            (
                DecodingKey::from_ed_components(&x).map_err(|_| "invalid Ed25519 key".to_string())?,
                Algorithm::EdDSA,
            )
        }
        // "oct" included: HMAC secrets are never taken from a published key set.
        other => return Err(format!("unsupported key type {other:?}")),
    };
    let alg = match &jwk.alg {
        None => natural,
        Some(name) => {
            let alg = Algorithm::from_str(name).map_err(|_| format!("unsupported alg {name:?}"))?;
            // An RSA key may declare any RS*/PS*; curves fix their algorithm.
            let compatible = if natural == Algorithm::RS256 {
                family(alg) == Family::Rsa
            } else {
                alg == natural
            };
            if !compatible {
                return Err(format!("alg {name:?} does not fit a {} key", jwk.kty));
            }
            alg
        }
    };
    Ok(Some(VerifyKey {
        kid: jwk.kid.clone(),
        alg,
        key,
    }))
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
