//! Store mode's config: the process's own file (its `server` section, which
//! names the store) and the store's resources, compiled as one config by the
//! same compiler as a file ([`crate::store::document`]). When the store
//! cannot be read, the last config compiled from it (kept in
//! `server.state_dir`) is used instead and the process says so; a store
//! that can be read again is picked up by the watcher
//! ([`super::store_watch`]).

use crate::config::{ConfigError, ConfigIssue};
use crate::store::{document, release, Store};
use std::path::{Path, PathBuf};

/// What a config file says about store mode.
#[derive(Debug, Clone)]
pub(crate) struct StoreMode {
    pub url: String,
    pub state_dir: PathBuf,
}

/// The store part of a compiled config, kept to start from.
fn last_good(state_dir: &Path) -> PathBuf {
    state_dir.join("last-good.yaml")
}

fn issue(path: &Path, key: &str, message: String) -> ConfigError {
    ConfigError {
        issues: vec![ConfigIssue {
            file: path.display().to_string(),
            line: 1,
            col: 1,
            path: key.into(),
            message,
        }],
    }
}

/// The store mode the file's `server.store` asks for, if any.
pub(crate) fn mode_of(text: &str) -> Option<StoreMode> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let server = v.get("server")?;
    let url = server.get("store")?.as_str()?.to_string();
    let state_dir = server
        .get("state_dir")
        .and_then(|d| d.as_str())
        .map_or_else(|| PathBuf::from("/var/lib/portico"), PathBuf::from);
    Some(StoreMode { url, state_dir })
}

/// Reads the store: its revision and its config as YAML ([`super::aside`]).
pub(crate) fn read_store(url: &str) -> Result<(i64, String), String> {
    let url = url.to_string();
    super::aside::on_a_thread(move || async move {
        let store = Store::open(&url).await.map_err(|e| e.to_string())?;
        let revision = store.revision().await.map_err(|e| e.to_string())?;
        let all = store.all().await.map_err(|e| e.to_string())?;
        let yaml = serde_yaml::to_string(&release::served(&all)).map_err(|e| e.to_string())?;
        Ok((revision, yaml))
    })
}

/// Refuses a store-mode file that declares a section the store owns.
pub(crate) fn only_server(path: &Path, file_text: &str) -> Result<(), ConfigError> {
    let file: serde_yaml::Value = serde_yaml::from_str(file_text).unwrap_or(serde_yaml::Value::Null);
    for key in document::SECTIONS {
        if file.get(*key).is_some() {
            return Err(issue(
                path,
                key,
                format!("in store mode `{key}` lives in the store: move it there with `portico import`"),
            ));
        }
    }
    Ok(())
}

/// The config text to compile for `path` in store mode: the file, then the
/// store's sections (or the last good copy of them when the store cannot be
/// read). Then the store part, to keep once it compiled, and the store's
/// revision it is (None: the last good copy).
pub(crate) fn config_text(
    path: &Path,
    file_text: &str,
    mode: &StoreMode,
) -> Result<(String, String, Option<i64>), ConfigError> {
    only_server(path, file_text)?;
    let mut read_revision = None;
    let (origin, store_part) = match read_store(&mode.url) {
        Ok((revision, yaml)) => {
            crate::telemetry::metrics::METRICS.store_up.set(1);
            read_revision = Some(revision);
            (format!("the store at revision {revision}"), yaml)
        }
        Err(e) => {
            let kept = last_good(&mode.state_dir);
            match std::fs::read_to_string(&kept) {
                Ok(text) => {
                    log::warn!(
                        "store unreachable ({e}); serving the last config compiled from it, {}",
                        kept.display()
                    );
                    crate::telemetry::metrics::METRICS.store_up.set(0);
                    (format!("{} (the store is unreachable)", kept.display()), text)
                }
                Err(_) => {
                    return Err(issue(
                        path,
                        "server.store",
                        format!(
                            "cannot read the store ({e}), and no last good config at {}",
                            kept.display()
                        ),
                    ))
                }
            }
        }
    };
    let text = merge(file_text, &origin, &store_part);
    Ok((text, store_part, read_revision))
}

/// The file's text followed by the store's sections.
pub(crate) fn merge(file_text: &str, origin: &str, store_part: &str) -> String {
    let store_part = if store_part.trim() == "{}" { "" } else { store_part };
    format!("{}\n# --- from {origin} ---\n{store_part}", file_text.trim_end())
}

/// Keeps the store part of a config that compiled, to start from when the
/// store is unreachable (written whole, then renamed into place).
pub(crate) fn remember(mode: &StoreMode, store_part: &str) {
    let kept = last_good(&mode.state_dir);
    let tmp = mode.state_dir.join("last-good.yaml.tmp");
    let written = std::fs::create_dir_all(&mode.state_dir)
        .and_then(|()| std::fs::write(&tmp, store_part))
        .and_then(|()| std::fs::rename(&tmp, &kept));
    if let Err(e) = written {
        log::warn!("cannot keep the last good config at {}: {e}", kept.display());
    }
}
