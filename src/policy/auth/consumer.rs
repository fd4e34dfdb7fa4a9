//! Consumers and their credentials, compiled into lookup tables at config
//! load: API keys by SHA-256 digest, Basic logins by username, token subjects
//! by value. A request does one hash of its key and one map lookup.
//!
//! API keys are stored only as SHA-256 digests (`sha2`, RustCrypto's), so the
//! process never holds more than the config does; the digest a request
//! presents is compared with `subtle` in constant time after the lookup.

use crate::config::{ConsumerConfig, Issues};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Debug)]
pub struct Consumer {
    pub name: String,
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

#[derive(Debug, Default)]
pub struct Consumers {
    list: Vec<Consumer>,
    by_key: HashMap<[u8; 32], usize>,
    by_login: HashMap<String, (usize, PasswordHash)>,
    by_subject: HashMap<String, usize>,
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
            for (j, k) in c.credentials.api_keys.iter().enumerate() {
                let kp = format!("{p}.credentials.api_keys[{j}]");
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
                if let Some(other) = out.by_key.insert(digest, idx) {
                    let owner = cfgs.get(other).map_or("", |o| o.name.as_str());
                    issues.add(kp, format!("this key is also a key of consumer {owner:?}"));
                }
            }
            if let Some(b) = &c.credentials.basic {
                let user = b.username.clone().unwrap_or_else(|| c.name.clone());
                match PasswordHash::parse(&b.password_hash) {
                    Ok(h) => {
                        if out.by_login.insert(user.clone(), (idx, h)).is_some() {
                            issues.add(
                                format!("{p}.credentials.basic.username"),
                                format!("username {user:?} is used twice"),
                            );
                        }
                    }
                    Err(e) => issues.add(format!("{p}.credentials.basic.password_hash"), e),
                }
            }
            out.by_subject.insert(c.name.clone(), idx);
            for s in &c.credentials.subjects {
                out.by_subject.insert(s.clone(), idx);
            }
            out.list.push(Consumer {
                name: c.name.clone(),
                groups: c.groups.clone(),
                metadata: c.metadata.clone(),
            });
        }
        out
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

    /// The consumer owning this API key.
    pub fn by_api_key(&self, key: &[u8]) -> Option<usize> {
        let digest = key_digest(key);
        let (stored, idx) = self.by_key.get_key_value(&digest)?;
        bool::from(stored.ct_eq(&digest)).then_some(*idx)
    }

    pub fn login(&self, username: &str) -> Option<(usize, &PasswordHash)> {
        self.by_login.get(username).map(|(i, h)| (*i, h))
    }

    /// The consumer a token subject names.
    pub fn by_subject(&self, subject: &str) -> Option<usize> {
        self.by_subject.get(subject).copied()
    }
}
