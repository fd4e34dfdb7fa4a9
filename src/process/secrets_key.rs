//! The process's secrets key, which seals and opens the secrets store mode
//! keeps ([`crate::config::sealed`]). It comes from, in this order:
//!
//! 1. `PORTICO_SECRETS_KEY` (64 hex digits or base64);
//! 2. `server.secrets_key_file` (hex, base64 or 32 raw bytes; 0600);
//! 3. in store mode, `state_dir/secrets-key`, which `portico run` creates at
//!    the first start (32 random bytes from the OS, written as hex, 0600)
//!    and names in the log.
//!
//! It is installed once, before the first compile, and kept for the life of
//! the process: a new key takes a restart or `portico upgrade`. `portico
//! check` reads it but never creates one. Back the key up with the store:
//! without it, the sealed secrets in the store (and in its backups) cannot
//! be read.

use crate::config::sealed::{self, SecretsKey};
use crate::config::{LoadedConfig, ServerConfig};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The variable that holds the key.
pub(crate) const ENV: &str = "PORTICO_SECRETS_KEY";

/// The key's file in `state_dir`.
fn state_key(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets-key")
}

fn read_key_file(path: &Path) -> Result<SecretsKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the secrets key {}: {e}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!("the secrets key {} can be read by others: chmod 600 it", path.display());
        }
    }
    SecretsKey::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The key `server` names (the environment first), if any; in store mode
/// (`store_mode`) the one in `state_dir`, created when `create`.
fn find(server: &ServerConfig, base_dir: &Path, store_mode: bool, create: bool) -> Result<Option<SecretsKey>, String> {
    if let Ok(text) = std::env::var(ENV) {
        if !text.trim().is_empty() {
            return SecretsKey::parse(text.as_bytes())
                .map(Some)
                .map_err(|e| format!("{ENV}: {e}"));
        }
    }
    if let Some(f) = &server.secrets_key_file {
        let path = if f.is_absolute() { f.clone() } else { base_dir.join(f) };
        return read_key_file(&path).map(Some);
    }
    if !store_mode {
        return Ok(None);
    }
    let path = state_key(&server.state_dir);
    if path.exists() {
        return read_key_file(&path).map(Some);
    }
    if !create {
        return Ok(None);
    }
    let key = SecretsKey::random()?;
    let written = std::fs::create_dir_all(&server.state_dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(key.to_hex().as_bytes())
    });
    written.map_err(|e| format!("cannot write a new secrets key to {}: {e}", path.display()))?;
    log::warn!(
        "a new secrets key was written to {} (mode 0600): back it up with the store; \
         the secrets sealed in the store cannot be read without it",
        path.display()
    );
    Ok(Some(key))
}

/// Installs the key a config names before it is compiled; nothing once a
/// key is installed, and nothing created. Errors are the config's
/// (`server.secrets_key_file`).
pub(crate) fn install(loaded: &LoadedConfig) -> Result<(), String> {
    if sealed::installed().is_some() {
        return Ok(());
    }
    let server = &loaded.config.server;
    if let Some(key) = find(server, &config_dir(&loaded.path), server.store.is_some(), false)? {
        sealed::install(key);
    }
    Ok(())
}

/// The server section of the config file at `path`, when it parses.
fn server_of(path: &Path) -> Option<ServerConfig> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    serde_yaml::from_value(v.get("server")?.clone()).ok()
}

fn config_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// At `portico run`: in store mode with no key anywhere, creates the one in
/// `state_dir`, before the config is loaded (which installs it). A file
/// that does not parse is left to loading to report; a key that cannot be
/// written is logged, and what needs it (a sealed secret to open, a clear
/// one to seal) is refused where it is.
pub(crate) fn create_at_start(path: &Path) {
    if let Some(server) = server_of(path).filter(|s| s.store.is_some()) {
        if let Err(e) = find(&server, &config_dir(path), true, true) {
            log::warn!("secrets key: {e}");
        }
    }
}

/// For `portico import` of the file at `path`, whose secrets are sealed on
/// their way into the store: the key a store-mode node with the file's
/// `server` section would use (its `state_dir`, `/var/lib/portico` by
/// default), installed; when there is none, created there if `create`
/// (the file has secrets to seal), else None (compiling then says which
/// sealed secrets cannot be opened).
pub(crate) fn for_import(path: &Path, create: bool) -> Result<Option<&'static SecretsKey>, String> {
    if sealed::installed().is_none() {
        let server = server_of(path).unwrap_or_default();
        if let Some(key) = find(&server, &config_dir(path), true, create)? {
            sealed::install(key);
        }
    }
    Ok(sealed::installed())
}
