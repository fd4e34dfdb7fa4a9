//! `portico import` and `portico export`: a whole declarative config into
//! the store, and out of it, in the YAML file's shape
//! ([`crate::store::document`]), so GitOps and the store are one format.
//!
//! An import is compiled first, exactly as `portico check` compiles the file;
//! a config with any problem is refused with `check`'s messages and nothing
//! is written. It then replaces every resource in one transaction. The
//! file's `server` section is not stored: it belongs to each node's own file.
//!
//! Secrets: an import may give them in the clear (`value`), which `check`
//! refuses in a config file; they are sealed before anything is stored, and
//! an export keeps them sealed ([`crate::store::secrets`]).

use super::ProcessError;
use crate::store::{document, secrets, Store};
use std::path::Path;

fn runtime() -> Result<tokio::runtime::Runtime, ProcessError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProcessError::Store(format!("cannot start the runtime: {e}")))
}

fn store_error(e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Store(e.to_string())
}

/// The config file at `file` as JSON.
fn document_of(file: &Path) -> Result<serde_json::Value, ProcessError> {
    let text = std::fs::read_to_string(file).map_err(|e| store_error(format!("{}: {e}", file.display())))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).map_err(store_error)?;
    serde_json::to_value(yaml).map_err(|e| store_error(format!("{}: {e}", file.display())))
}

/// Imports the config `file` into the store at `url`; what was imported.
/// Its secrets in the clear are sealed first ([`crate::store::secrets`])
/// under the secrets key a node with the file's `server` section would use
/// ([`super::secrets_key::for_import`]).
pub fn import(file: &Path, url: &str, actor: &str) -> Result<String, ProcessError> {
    // The key first, so that sealed secrets open when the file is compiled.
    let key = match document_of(file) {
        Ok(mut doc) if secrets::needs_key(&doc) => {
            let clear = !crate::config::secret_slots::clear(&mut doc).is_empty();
            super::secrets_key::for_import(file, clear).map_err(store_error)?
        }
        _ => None,
    };
    super::load::load_for_import(file)?;
    let mut doc = document_of(file)?;
    if let Some(key) = key {
        secrets::seal_document(&mut doc, key).map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|(path, e)| format!("{}: {path}: {e}", file.display()))
                .collect();
            store_error(lines.join("\n"))
        })?;
    }
    let (resources, had_server) =
        document::to_resources(&doc).map_err(|e| store_error(format!("{}: {e}", file.display())))?;
    let rev = runtime()?.block_on(async {
        let store = Store::open(url).await?;
        store.replace_all(&resources, actor).await
    });
    let rev = rev.map_err(store_error)?;
    let mut msg = format!(
        "imported {} resources from {} (store revision {rev})",
        resources.len(),
        file.display()
    );
    if had_server {
        msg.push_str("; its `server` section stays in each node's own file");
    }
    Ok(msg)
}

/// The store's config as YAML. Sealed secrets stay sealed (only the
/// secrets key opens them), so the export imports again into a store served
/// with the same key: a backup.
pub fn export(url: &str) -> Result<String, ProcessError> {
    let (resources, rev) = runtime()?
        .block_on(async {
            let store = Store::open(url).await?;
            Ok::<_, crate::store::StoreError>((store.all().await?, store.revision().await?))
        })
        .map_err(store_error)?;
    let doc = document::from_resources(&resources);
    let yaml = serde_yaml::to_string(&doc).map_err(store_error)?;
    Ok(format!(
        "# Exported from the store at revision {rev}. `server` lives in each node's own file.\n{yaml}"
    ))
}
