//! Consumers and their credentials, compiled into lookup tables at config
//! load: API keys by SHA-256 digest, Basic logins by username, token subjects
//! by value. A request does one hash of its key and one map lookup.
//!
//! API keys are stored only as SHA-256 digests (`sha2`, RustCrypto's), so the
//! process never holds more than the config does; the digest a request
//! presents is compared with `subtle` in constant time after the lookup.
//!
//! Each credential keeps its expiry (unix seconds); the lookups return the
//! [`Holder`] and the auth step refuses an expired one with 401
//! `credential_expired`, so an expiry needs no reload to take effect.

use crate::config::{unix_time, ConsumerConfig, Issues};
use crate::error::GatewayError;
use crate::policy::Rejection;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Debug)]
pub struct Consumer {
    /// Shared: every request's identity and call record carries it.
    pub name: std::sync::Arc<str>,
    /// The consumer header's value (the name), made at load; none when the
    /// name cannot be a header value.
    pub header: Option<http::HeaderValue>,
    /// The owning team: the consumer is an application. Shared: every call
    /// record of the application carries it.
    pub team: Option<std::sync::Arc<str>>,
    pub groups: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A Basic-auth password hash, checked by format at load.
#[derive(Debug, Clone)]
pub enum PasswordHash {
    Bcrypt(String),
    Argon2(String),
}

impl PasswordHash {
    pub fn parse(s: &str) -> Result<PasswordHash, String> {
        if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
            // Validates cost and length without checking any password.
            s.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("not a valid bcrypt hash: {e}"))?;
            return Ok(PasswordHash::Bcrypt(s.to_string()));
        }
        if s.starts_with("$argon2") {
            argon2::PasswordHash::new(s).map_err(|e| format!("not a valid argon2 hash: {e}"))?;
            return Ok(PasswordHash::Argon2(s.to_string()));
        }
        Err("password_hash must be a bcrypt ($2b$...) or argon2 ($argon2id$...) hash".into())
    }

    /// Checks a password; CPU-heavy by design, so callers run it off the
    /// request threads.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            PasswordHash::Argon2(h) => {
                use argon2::PasswordVerifier;
                argon2::PasswordHash::new(h)
                    .map(|parsed| argon2::Argon2::default().verify_password(password, &parsed).is_ok())
                    .unwrap_or(false)
            }
        }
    }
}

/// Whose a credential is, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Index of the consumer.
    pub consumer: usize,
    /// Unix seconds after which the credential is refused.
    pub expires: Option<u64>,
    /// The credential, in [`Consumers::credential_id`].
    pub credential: u32,
}

impl Holder {
    /// The consumer, or the 401 `credential_expired` refusal.
    pub fn live(&self, consumers: &Consumers) -> Result<usize, Rejection> {
        match self.expires {
            Some(at) if now_secs() >= at => {
                let name = consumers.get(self.consumer).map_or("", |c| &*c.name);
                Err(Rejection::new(
                    GatewayError::CredentialExpired,
                    format!("this credential of {name:?} expired at {}", rfc3339(at)),
                ))
            }
            _ => Ok(self.consumer),
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}

#[derive(Debug, Default)]
pub struct Consumers {
    list: Vec<Consumer>,
    // foldhash: built at load, looked up per request (no inserts by clients).
    by_key: foldhash::HashMap<[u8; 32], Holder>,
    by_login: foldhash::HashMap<String, (Holder, PasswordHash)>,
    by_subject: foldhash::HashMap<String, Holder>,
    /// Each credential's id as the call log records it: its `id`, else
    /// where it is written (`api_keys[0]`, `basic`, a subject).
    credential_ids: Vec<std::sync::Arc<str>>,
}

/// The expiry of a credential at `path`, reported when it does not parse.
fn expiry(text: Option<&str>, path: String, issues: &mut Issues) -> Option<u64> {
    match text.map(unix_time)? {
        Ok(t) => Some(t),
        Err(e) => {
            issues.add(path, e);
            None
        }
    }
}

/// The SHA-256 of an API key.
pub(crate) fn key_digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl Consumers {
    pub fn build(cfgs: &[ConsumerConfig], base_dir: &Path, issues: &mut Issues) -> Consumers {
        let mut out = Consumers::default();
        let mut names = HashMap::new();
        for (i, c) in cfgs.iter().enumerate() {
            let p = format!("consumers[{i}]");
            if c.name.trim().is_empty() {
                issues.add(format!("{p}.name"), "must not be empty");
            }
            if let Some(first) = names.insert(c.name.clone(), i) {
                issues.add(
                    format!("{p}.name"),
                    format!("{:?} is already consumers[{first}]", c.name),
                );
            }
            let idx = out.list.len();
            let ids = &mut out.credential_ids;
            let mut holder = |expires, id: String| {
                ids.push(std::sync::Arc::from(id.as_str()));
                Holder {
                    consumer: idx,
                    expires,
                    credential: u32::try_from(ids.len() - 1).unwrap_or(u32::MAX),
                }
            };
            for (j, k) in c.credentials.api_keys.iter().enumerate() {
                let kp = format!("{p}.credentials.api_keys[{j}]");
                let expires = expiry(k.expires_at.as_deref(), format!("{kp}.expires_at"), issues);
                let digest = match (&k.sha256, k.env.is_some() || k.file.is_some()) {
                    (Some(hex_digest), false) => match hex::decode(hex_digest.trim()) {
                        Ok(b) if b.len() == 32 => {
                            let mut d = [0u8; 32];
                            d.copy_from_slice(&b);
                            d
                        }
                        _ => {
                            issues.add(format!("{kp}.sha256"), "must be 64 hex digits (a SHA-256 digest)");
                            continue;
                        }
                    },
                    (None, true) => match k.secret_ref().read(base_dir) {
                        Ok(secret) => key_digest(secret.as_bytes()),
                        Err(e) => {
                            issues.add(kp, e);
                            continue;
                        }
                    },
                    _ => {
                        issues.add(kp, "give exactly one of `sha256`, `env` or `file`");
                        continue;
                    }
                };
                let id = k.id.clone().unwrap_or_else(|| format!("api_keys[{j}]"));
                if let Some(other) = out.by_key.insert(digest, holder(expires, id)) {
                    let owner = cfgs.get(other.consumer).map_or("", |o| o.name.as_str());
                    issues.add(kp, format!("this key is also a key of consumer {owner:?}"));
                }
            }
            if let Some(b) = &c.credentials.basic {
                let user = b.username.clone().unwrap_or_else(|| c.name.clone());
                let bp = format!("{p}.credentials.basic.expires_at");
                let expires = expiry(b.expires_at.as_deref(), bp, issues);
                match PasswordHash::parse(&b.password_hash) {
                    Ok(h) => {
                        let id = format!("basic:{user}");
                        if out.by_login.insert(user.clone(), (holder(expires, id), h)).is_some() {
                            issues.add(
                                format!("{p}.credentials.basic.username"),
                                format!("username {user:?} is used twice"),
                            );
                        }
                    }
                    Err(e) => issues.add(format!("{p}.credentials.basic.password_hash"), e),
                }
            }
            out.by_subject
                .insert(c.name.clone(), holder(None, format!("subject:{}", c.name)));
            for (j, s) in c.credentials.subjects.iter().enumerate() {
                let sp = format!("{p}.credentials.subjects[{j}].expires_at");
                let expires = expiry(s.expires_at(), sp, issues);
                let id = s
                    .id()
                    .map_or_else(|| format!("subject:{}", s.subject()), str::to_string);
                out.by_subject.insert(s.subject().to_string(), holder(expires, id));
            }
            out.list.push(Consumer {
                name: std::sync::Arc::from(c.name.as_str()),
                header: http::HeaderValue::from_str(&c.name).ok(),
                team: c.team.as_deref().map(std::sync::Arc::from),
                groups: c.groups.clone(),
                metadata: c.metadata.clone(),
            });
        }
        out
    }

    /// A credential's id, for the call log.
    pub fn credential_id(&self, i: u32) -> Option<&std::sync::Arc<str>> {
        self.credential_ids.get(usize::try_from(i).ok()?)
    }

    pub fn get(&self, i: usize) -> Option<&Consumer> {
        self.list.get(i)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every consumer's index by name (for compiling what names consumers).
    pub fn index_by_name(&self) -> HashMap<&str, usize> {
        self.list.iter().enumerate().map(|(i, c)| (&*c.name, i)).collect()
    }

    /// The consumer owning this API key.
    pub fn by_api_key(&self, key: &[u8]) -> Option<Holder> {
        let digest = key_digest(key);
        let (stored, holder) = self.by_key.get_key_value(&digest)?;
        bool::from(stored.ct_eq(&digest)).then_some(*holder)
    }

    pub fn login(&self, username: &str) -> Option<(Holder, &PasswordHash)> {
        self.by_login.get(username).map(|(i, h)| (*i, h))
    }

    /// The consumer a token subject names.
    pub fn by_subject(&self, subject: &str) -> Option<Holder> {
        self.by_subject.get(subject).copied()
    }
}
