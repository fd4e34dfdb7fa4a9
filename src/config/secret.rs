//! Secrets in the config. [`SecretRef`] names one rather than writing it: an
//! environment variable or a file (a systemd credential, a Kubernetes secret
//! mount), read when the config loads, so a reload picks up a rotated
//! secret. [`Secret`], which the gateway needs back in the clear (a provider
//! key, an HMAC secret, a client secret), may also be sealed: store mode
//! keeps a secret given to it in the clear (`value`, through the admin API
//! or `portico import`) only encrypted ([`super::sealed`]).
//!
//! Consumer API keys stay [`SecretRef`]s: the gateway only compares them,
//! so the store keeps their SHA-256 instead (`crate::store::secrets`).

use super::sealed;
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
            (None, Some(f)) => read_file(f, base_dir)?,
            _ => return Err("give exactly one of `env` or `file`".into()),
        };
        non_empty(value)
    }
}

fn read_file(f: &Path, base_dir: &Path) -> Result<String, String> {
    let path = if f.is_absolute() {
        f.to_path_buf()
    } else {
        base_dir.join(f)
    };
    let mut s = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

fn non_empty(value: String) -> Result<String, String> {
    if value.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(value)
}

/// A secret the gateway uses in the clear: exactly one of `env`, `file`,
/// `value` (the secret itself: only as input to the admin API and `portico
/// import`, which seal it; refused in a config file) or `sealed` (with its
/// `fingerprint`, as the store keeps it).
#[derive(Deserialize, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Name of an environment variable holding the secret.
    pub env: Option<String>,
    /// A file holding the secret; one trailing newline is ignored. Relative to the config file.
    pub file: Option<PathBuf>,
    /// The secret in the clear, to be sealed on its way into the store.
    pub value: Option<String>,
    /// The secret sealed under the process's secrets key (`v1:...`).
    pub sealed: Option<String>,
    /// `sha256:` and 16 hex digits of the secret's SHA-256, beside `sealed`.
    pub fingerprint: Option<String>,
}

// Never the secret, even in a debug print of the whole config.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Secret");
        if let Some(env) = &self.env {
            d.field("env", env);
        }
        if let Some(file) = &self.file {
            d.field("file", file);
        }
        if self.value.is_some() {
            d.field("value", &sealed::REDACTED);
        }
        if self.sealed.is_some() {
            d.field("sealed", &sealed::REDACTED);
        }
        if let Some(fp) = &self.fingerprint {
            d.field("fingerprint", fp);
        }
        d.finish()
    }
}

impl Secret {
    /// Reads the secret: from the environment or a file (relative to
    /// `base_dir`), as given, or opened with the process's secrets key.
    /// Errors name the source but never the secret.
    pub fn read(&self, base_dir: &Path) -> Result<String, String> {
        if self.fingerprint.is_some() && self.sealed.is_none() {
            return Err("`fingerprint` goes only beside `sealed`".into());
        }
        let value = match (&self.env, &self.file, &self.value, &self.sealed) {
            (Some(var), None, None, None) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
            }
            (None, Some(f), None, None) => read_file(f, base_dir)?,
            (None, None, Some(v), None) => v.clone(),
            (None, None, None, Some(s)) => self.open(s)?,
            _ => return Err("give exactly one of `env`, `file`, `value` or `sealed`".into()),
        };
        non_empty(value)
    }

    fn open(&self, s: &str) -> Result<String, String> {
        let fp = self.fingerprint.as_deref().unwrap_or("none");
        if s == sealed::REDACTED {
            return Err(format!(
                "a redacted secret (fingerprint {fp}), as the admin API shows one, cannot be read: \
                 give the secret again, or keep the stored one by writing it to the resource it came from"
            ));
        }
        let key = sealed::installed().ok_or(
            "a sealed secret needs the secrets key: set PORTICO_SECRETS_KEY or server.secrets_key_file \
             (store mode keeps one in state_dir/secrets-key)",
        )?;
        let secret = sealed::open(key, s).map_err(|e| format!("{e} (fingerprint {fp})"))?;
        match &self.fingerprint {
            Some(fp) if *fp != sealed::fingerprint(&secret) => Err(format!(
                "the sealed secret opens but is not the one its fingerprint {fp} names"
            )),
            _ => Ok(secret),
        }
    }

    /// Whether this is a secret written in the clear (`value`).
    pub fn is_clear(&self) -> bool {
        self.value.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_secret(secret: &str) -> Secret {
        let key = sealed::test_key();
        Secret {
            sealed: Some(sealed::seal(key, secret).unwrap()),
            fingerprint: Some(sealed::fingerprint(secret)),
            ..Secret::default()
        }
    }

    #[test]
    fn every_form_reads() {
        let dir = Path::new("/");
        let s = |yaml: &str| serde_yaml::from_str::<Secret>(yaml).unwrap();
        assert_eq!(s("value: sk-1").read(dir).unwrap(), "sk-1");
        assert_eq!(sealed_secret("sk-2").read(dir).unwrap(), "sk-2");
        assert!(s("env: PORTICO_TEST_UNSET_VAR")
            .read(dir)
            .unwrap_err()
            .contains("not set"));
        assert!(s("{value: a, env: B}").read(dir).unwrap_err().contains("exactly one"));
        assert!(s("{value: a, fingerprint: x}")
            .read(dir)
            .unwrap_err()
            .contains("beside"));
        assert!(s("value: ''").read(dir).unwrap_err().contains("empty"));
        assert!(serde_yaml::from_str::<Secret>("{key: a}").is_err());
    }

    #[test]
    fn a_sealed_secret_that_does_not_open_is_an_error_without_the_secret() {
        let dir = Path::new("/");
        let mut s = sealed_secret("sk-test-SECRET123");
        let mut other = sealed::seal(&sealed::SecretsKey::from_bytes([9; 32]), "sk-test-SECRET123").unwrap();
        std::mem::swap(s.sealed.as_mut().unwrap(), &mut other);
        let e = s.read(dir).unwrap_err();
        assert!(
            e.contains("does not open") && e.contains("sha256:") && !e.contains("SECRET"),
            "{e}"
        );
        let mut s = sealed_secret("sk-a");
        s.fingerprint = Some(sealed::fingerprint("sk-b"));
        assert!(s.read(dir).unwrap_err().contains("not the one"));
        s.sealed = Some(sealed::REDACTED.into());
        assert!(s.read(dir).unwrap_err().contains("redacted"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret {
            value: Some("sk-test-SECRET123".into()),
            ..Secret::default()
        };
        let sealed = sealed_secret("sk-test-SECRET123");
        for shown in [format!("{s:?}"), format!("{sealed:?}")] {
            assert!(!shown.contains("SECRET") && !shown.contains("v1:"), "{shown}");
        }
    }
}
