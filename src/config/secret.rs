//! Secrets named in the config rather than written in it: an environment
//! variable or a file (a systemd credential, a Kubernetes secret mount). They
//! are read when the config loads, so a reload picks up a rotated secret.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a secret comes from: exactly one of `env` or `file`.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of an environment variable holding the secret.
    pub env: Option<String>,
    /// A file holding the secret; one trailing newline is ignored. Relative to the config file.
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Reads the secret; relative files are resolved against `base_dir`.
    /// Errors name the source but never the secret.
    pub fn read(&self, base_dir: &Path) -> Result<String, String> {
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?,
            (None, Some(f)) => {
                let path = if f.is_absolute() { f.clone() } else { base_dir.join(f) };
                let mut s =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                s
            }
            _ => return Err("give exactly one of `env` or `file`".into()),
        };
        if value.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(value)
    }
}
