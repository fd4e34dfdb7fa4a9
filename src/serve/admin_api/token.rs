//! Who calls the admin API. Two kinds of bearer token:
//!
//! - the bootstrap admin token: `PORTICO_ADMIN_TOKEN` when set, else the one
//!   in `state_dir/admin-token`, created at first start (32 random bytes from
//!   the OS, written 0600) with its path logged; it holds the `admin` role;
//! - tokens made through the API (`POST /admin/v1/tokens`), written
//!   `pt_<id>.<secret>`: stored as `admin_token` resources holding only the
//!   secret's SHA-256, a role (with a team for a team role) or a user whose
//!   roles it carries, and an optional expiry. Shown once, when made.
//!
//! Digests are compared in constant time (`subtle`).

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;

/// The digest of the admin token.
pub(crate) struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    pub(crate) fn from_secret(secret: &str) -> AdminToken {
        AdminToken {
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    pub(crate) fn matches(&self, given: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        d.ct_eq(&self.digest).into()
    }

    /// The token from the environment, else from (or newly into) `state_dir`.
    pub(crate) fn load(state_dir: &Path) -> std::io::Result<AdminToken> {
        if let Ok(t) = std::env::var("PORTICO_ADMIN_TOKEN") {
            if !t.trim().is_empty() {
                return Ok(AdminToken::from_secret(t.trim()));
            }
        }
        let path = state_dir.join("admin-token");
        if let Ok(t) = std::fs::read_to_string(&path) {
            return Ok(AdminToken::from_secret(t.trim()));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
        let secret = hex::encode(raw);
        std::fs::create_dir_all(state_dir)?;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(secret.as_bytes())?;
        log::warn!(
            "admin API: a new admin token was written to {} (mode 0600)",
            path.display()
        );
        Ok(AdminToken::from_secret(&secret))
    }
}

/// A new random secret: 32 bytes from the OS, as hex.
pub(crate) fn new_secret() -> Result<String, String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    Ok(hex::encode(raw))
}

/// The SHA-256 of a secret, as hex.
pub(crate) fn digest_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `pt_<id>.<secret>` split into its id and secret.
pub(crate) fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("pt_")?;
    let (id, secret) = rest.split_once('.')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` hashes to the stored hex digest (constant time).
pub(crate) fn secret_matches(secret: &str, stored_hex: &str) -> bool {
    let Ok(stored) = hex::decode(stored_hex) else {
        return false;
    };
    let d: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    stored.len() == 32 && bool::from(d.ct_eq(stored.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_and_match() {
        assert_eq!(split_token("pt_abc.s3cret"), Some(("abc", "s3cret")));
        for bad in ["abc.s3cret", "pt_.x", "pt_abc.", "pt_abc"] {
            assert_eq!(split_token(bad), None, "{bad}");
        }
        let d = digest_hex("s3cret");
        assert!(secret_matches("s3cret", &d));
        assert!(!secret_matches("s3cret!", &d));
        assert!(!secret_matches("s3cret", "zz"));
        assert!(AdminToken::from_secret("a").matches("a"));
    }
}
