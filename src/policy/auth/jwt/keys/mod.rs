//! Key material for [`super`] (`jwt`): static keys compiled from the config (secrets, PEM)
//! and the JWKS document, its parsing, and its fetch/refresh state machine.
//! Split out of `jwt` only to keep each file readable; see that module's docs
//! for why each dependency is used.
//!
//! Refresh rules: a JWKS key set is swapped in whole through an `ArcSwap`, so a
//! request never sees half a set and never waits on a lock for a known key.
//! Fetches are serialized by a `tokio::sync::Mutex` (concurrent misses share one
//! fetch) and the rate-limited ones (unknown `kid`, background staleness) happen at
//! most once per `jwks_min_refresh`. A failed fetch keeps the previous keys.

use crate::config::{JwtConfig, JwtKeyConfig};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use super::{try_keys, JwtError, Outcome, Parts};

/// Bounds one JWKS fetch (connect + response + body) so a slow IdP cannot stall requests for long.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few KiB; anything far larger is a misconfigured URL.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// DER encodings of the named-curve OIDs, used to check a PEM's curve against its `alg`.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// A compiled key. `alg` is fixed per key: a token is only ever checked with its own key's algorithm.
pub(super) struct VerifyKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
}

/// One JWKS snapshot; `fetched_at` is `None` until the first successful fetch.
pub(super) struct KeySet {
    pub(super) keys: Vec<VerifyKey>,
    pub(super) fetched_at: Option<Instant>,
}

/// JWKS state shared with background refresh tasks (hence in an `Arc`).
pub(super) struct Jwks {
    pub(super) url: String,
    client: reqwest::Client,
    refresh: Duration,
    min_refresh: Duration,
    pub(super) keys: ArcSwap<KeySet>,
    /// Serializes fetches so concurrent misses share one request.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Time of the last rate-limited fetch attempt, as `now_ms()`; 0 = never. Atomic so the
    /// staleness check on the request path stays lock-free.
    last_attempt: AtomicU64,
    background: AtomicBool,
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

pub(super) fn compile_key(i: usize, kc: &JwtKeyConfig, base_dir: &Path) -> Result<VerifyKey, String> {
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
    pub(super) fn new(url: &str, cfg: &JwtConfig) -> Result<Jwks, String> {
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

    pub(super) async fn lookup(
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

    /// Carries over keys fetched by the previous config's `Jwks` (same URL, checked by the caller).
    pub(super) fn inherit_from(&self, old: &Jwks) {
        self.keys.store(old.keys.load_full());
        self.last_attempt
            .store(old.last_attempt.load(Ordering::Acquire), Ordering::Release);
    }

    /// An explicit fetch: not rate-limited, but still single-flight.
    pub(super) async fn refresh(&self) -> Result<(), String> {
        let _guard = self.fetch_lock.lock().await;
        let set = self.fetch().await?;
        self.keys.store(Arc::new(set));
        Ok(())
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
pub(super) fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyKey>, String> {
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
mod tests;
