//! The admin token: `PORTICO_ADMIN_TOKEN` when set, else the one in
//! `state_dir/admin-token`, created at first start (32 random bytes from the
//! OS, written 0600) with its path logged. Only its SHA-256 is kept in
//! memory, compared in constant time.

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
