//! Secrets sealed at rest: what store mode keeps of a provider key (or any
//! other [`super::Secret`]) given to it in the clear, and the process's
//! secrets key that opens them.
//!
//! A sealed secret is `v1:` and the base64 of a 12-byte random nonce
//! followed by the AES-256-GCM ciphertext and tag, under the secrets key
//! (32 bytes). Beside it the config keeps a fingerprint,
//! `sha256:` and the first 16 hex digits of the secret's SHA-256, so an
//! operator (and the admin API, which never shows the ciphertext) can tell
//! two secrets apart without either being shown.
//!
//! AES-GCM comes from RustCrypto's `aes-gcm` crate: audited (NCC Group,
//! 2020), constant-time with AES-NI and CLMUL, maintained beside the `sha2`
//! the config already uses, and an AEAD: a wrong key or a changed byte is
//! refused rather than decrypted into garbage. (`ring`, already linked for
//! TLS, would do too; `aes-gcm` keeps sealing independent of the TLS
//! provider chosen at build time.)
//!
//! The key is loaded once per process, before the first compile, by
//! `crate::process` (from `PORTICO_SECRETS_KEY`, `server.secrets_key_file`
//! or `state_dir/secrets-key`), and held here in a set-once cell: a config
//! reads its secrets from many compile sites ([`super::Secret::read`]), and
//! threading a key through each of them would change every compiler's
//! signature for one rarely used form. Nothing reads it on a request.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// The prefix of a sealed secret of this format.
const V1: &str = "v1:";
/// Binds a ciphertext to its use: a sealed Portico secret.
const AAD: &[u8] = b"portico sealed secret v1";
const NONCE_LEN: usize = 12;

/// What the admin API shows instead of a sealed secret's ciphertext; a
/// write that sends it back with the stored fingerprint keeps the stored
/// secret.
pub const REDACTED: &str = "<redacted>";

/// The 32-byte key secrets are sealed under.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl PartialEq for SecretsKey {
    fn eq(&self, other: &SecretsKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl SecretsKey {
    /// A key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SecretsKey {
        SecretsKey(bytes)
    }

    /// A new random key (from the OS).
    pub fn random() -> Result<SecretsKey, String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness from the OS: {e}"))?;
        Ok(SecretsKey(raw))
    }

    /// Reads a key as written in a file or the environment: exactly 32 raw
    /// bytes, or (surrounding whitespace ignored) 64 hex digits or the
    /// base64 of 32 bytes. The message never quotes the input.
    pub fn parse(input: &[u8]) -> Result<SecretsKey, String> {
        if let Ok(raw) = <[u8; 32]>::try_from(input) {
            return Ok(SecretsKey(raw));
        }
        let text = std::str::from_utf8(input).map(str::trim).unwrap_or_default();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .ok()
        };
        decoded
            .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
            .map(SecretsKey)
            .ok_or_else(|| {
                format!(
                    "a secrets key is 32 bytes: 64 hex digits, their base64, or 32 raw bytes (this is {} bytes long)",
                    input.len()
                )
            })
    }

    /// The key as 64 hex digits, as Portico writes a key it creates.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

/// `sha256:` and the first 16 hex digits of the secret's SHA-256: enough to
/// tell secrets apart, too little to guess one from.
pub fn fingerprint(secret: &str) -> String {
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    format!("sha256:{}", &digest[..16])
}

/// Seals `secret` under `key`: `v1:` and base64(nonce | ciphertext | tag),
/// with a fresh random nonce.
pub fn seal(key: &SecretsKey, secret: &str) -> Result<String, String> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let sealed = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: AAD,
            },
        )
        .map_err(|_| "the secret could not be sealed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{V1}{}", base64::engine::general_purpose::STANDARD.encode(out)))
}

/// Opens a sealed secret. Errors say what is wrong, never the secret.
pub fn open(key: &SecretsKey, sealed: &str) -> Result<String, String> {
    let body = sealed
        .strip_prefix(V1)
        .ok_or("not a sealed secret of a known format (`v1:...`)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "the sealed secret is not base64")?;
    if bytes.len() < NONCE_LEN + 16 {
        return Err("the sealed secret is too short".into());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| "the sealed secret is too short")?;
    let plain = key
        .cipher()
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: AAD,
            },
        )
        .map_err(|_| {
            "the sealed secret does not open with this process's secrets key (another key, or a damaged value)"
        })?;
    String::from_utf8(plain).map_err(|_| "the sealed secret is not text".into())
}

static KEY: OnceLock<SecretsKey> = OnceLock::new();

/// Makes `key` the process's secrets key. The first key installed stays:
/// false when another one already was (the key is read once per process).
pub fn install(key: SecretsKey) -> bool {
    let mut fresh = false;
    let kept = KEY.get_or_init(|| {
        fresh = true;
        key.clone()
    });
    fresh || *kept == key
}

/// The process's secrets key, once installed.
pub fn installed() -> Option<&'static SecretsKey> {
    KEY.get()
}

/// Installs the key the crate's tests seal with (every test shares it).
#[cfg(test)]
pub(crate) fn test_key() -> &'static SecretsKey {
    KEY.get_or_init(|| SecretsKey([7; 32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let key = SecretsKey::random().unwrap();
        let sealed = seal(&key, "sk-test-SECRET123").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("SECRET123"));
        assert_eq!(open(&key, &sealed).unwrap(), "sk-test-SECRET123");
        assert_ne!(
            seal(&key, "sk-test-SECRET123").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        let other = SecretsKey::random().unwrap();
        let e = open(&other, &sealed).unwrap_err();
        assert!(e.contains("does not open") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let key = SecretsKey::from_bytes([1; 32]);
        let sealed = seal(&key, "secret").unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(&bytes));
        assert!(open(&key, &tampered).unwrap_err().contains("does not open"));
        assert!(open(&key, "v1:AAAA").unwrap_err().contains("too short"));
        assert!(open(&key, "v1:!!").unwrap_err().contains("base64"));
        assert!(open(&key, "v2:AAAA").unwrap_err().contains("format"));
    }

    #[test]
    fn fingerprints_are_stable_and_short() {
        assert_eq!(fingerprint("test"), "sha256:9f86d081884c7d65");
        assert_eq!(fingerprint("test"), fingerprint("test"));
        assert_ne!(fingerprint("test"), fingerprint("test2"));
    }

    #[test]
    fn keys_are_read_as_hex_base64_or_raw_bytes() {
        let key = SecretsKey::from_bytes([0xab; 32]);
        let hex = key.to_hex();
        assert_eq!(SecretsKey::parse(format!("{hex}\n").as_bytes()).unwrap(), key);
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xab; 32]);
        assert_eq!(SecretsKey::parse(b64.as_bytes()).unwrap(), key);
        assert_eq!(SecretsKey::parse(&[0xab; 32]).unwrap(), key);
        let e = SecretsKey::parse(b"too short").unwrap_err();
        assert!(e.contains("32 bytes") && !e.contains("too short"), "{e}");
        assert!(SecretsKey::parse(&[0xab; 31]).is_err());
        assert_eq!(format!("{key:?}"), "SecretsKey(..)");
    }
}
