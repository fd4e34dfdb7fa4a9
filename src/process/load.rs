//! Loading a config file for the process: parsed and validated
//! ([`crate::config`]), compiled into a snapshot ([`crate::snapshot`]) and
//! into listeners ([`crate::serve::listeners`]), with every problem of all
//! three reported together. `portico check`, start-up and reload all come here.
//! In store mode the config is the file's `server` section and the store's
//! resources ([`super::store_mode`]).

use crate::config::{self, ConfigError, LoadedConfig};
use crate::serve::listeners::{compile_listeners, ListenerSpec};
use crate::snapshot::Snapshot;
use std::path::Path;

/// A config file, compiled.
pub struct Compiled {
    /// The file as parsed.
    pub loaded: LoadedConfig,
    /// What requests are served with.
    pub(crate) snapshot: Snapshot,
    /// What the process listens on.
    pub(crate) listeners: Vec<ListenerSpec>,
    /// In store mode, the store revision compiled (None: the last good copy, or file mode).
    pub(crate) store_revision: Option<i64>,
    /// In store mode, the store's sections as compiled from the store, to
    /// keep as the last good config once this config is swapped in (none
    /// when it was compiled from the last good copy, and in file mode).
    pub(crate) last_good: Option<(super::store_mode::StoreMode, String)>,
}

/// Loads and compiles a config file: the same checks `portico check` runs.
/// State of `previous` carries over where settings are unchanged.
pub fn load(path: &Path, previous: Option<&Snapshot>) -> Result<Compiled, ConfigError> {
    load_with(path, previous, false)
}

/// As [`load`], for `portico import`: secrets written in the clear are
/// accepted, since the import seals them before they are stored.
pub(crate) fn load_for_import(path: &Path) -> Result<Compiled, ConfigError> {
    load_with(path, None, true)
}

fn load_with(path: &Path, previous: Option<&Snapshot>, clear_ok: bool) -> Result<Compiled, ConfigError> {
    // Validation and compiling both report, so one problem hides no other.
    let file_text = std::fs::read_to_string(path).ok();
    let store = file_text.as_deref().and_then(super::store_mode::mode_of);
    let (loaded, mut problems, store_part, text, revision) = match (&store, &file_text) {
        (Some(mode), Some(text)) => {
            let (merged, part, revision) = super::store_mode::config_text(path, text, mode)?;
            let (loaded, problems) = config::parse_lenient_at(&merged, path)?;
            (loaded, problems, Some(part), merged, revision)
        }
        _ => {
            let (loaded, problems) = config::load_lenient(path)?;
            (loaded, problems, None, file_text.unwrap_or_default(), None)
        }
    };
    if !clear_ok {
        problems.extend(clear_secrets(&loaded, &text));
    }
    if store.is_none() && !clear_ok {
        // Not for an import (`clear_ok`): it takes the file into a store.
        problems.extend(config::file_mode_issues(&loaded));
    }
    let mut compiled = compile(loaded, problems, previous)?;
    compiled.store_revision = revision;
    if let (Some(mode), Some(part)) = (store, store_part) {
        // No revision: the store could not be read, and the last good copy was compiled.
        crate::telemetry::metrics::METRICS
            .config_from_last_good
            .set(i64::from(revision.is_none()));
        compiled.last_good = revision.map(|_| (mode, part));
    }
    Ok(compiled)
}

/// A config file never holds a secret in the clear: `value` is for the
/// admin API and `portico import`, which seal it on its way into the store.
fn clear_secrets(loaded: &LoadedConfig, text: &str) -> Vec<config::ConfigIssue> {
    // A `value` key is written somewhere, or there is nothing to look for
    // (this saves a second parse of a large file).
    if !text.contains("value") {
        return Vec::new();
    }
    let Ok(mut doc) = serde_yaml::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut issues = loaded.issues();
    for path in config::secret_slots::clear(&mut doc) {
        issues.add(
            format!("{path}.value"),
            "a secret in the clear: name it with `env` or `file` in a config file \
             (`value` is for the admin API and `portico import`, which seal it)",
        );
    }
    issues.finish().err().map(|e| e.issues).unwrap_or_default()
}

/// Compiles a parsed config into a snapshot and listeners, with the
/// validation problems found while parsing reported beside compiling's.
fn compile(
    loaded: LoadedConfig,
    problems: Vec<config::ConfigIssue>,
    previous: Option<&Snapshot>,
) -> Result<Compiled, ConfigError> {
    let mut issues = loaded.issues();
    issues.extend(problems);
    if let Err(e) = super::secrets_key::install(&loaded) {
        issues.add("server.secrets_key_file", e);
    }
    let listeners = compile_listeners(&loaded, &mut issues);
    let snapshot = Snapshot::compile(&loaded, previous, &mut issues);
    issues.finish()?;
    Ok(Compiled {
        loaded,
        snapshot,
        listeners,
        store_revision: None,
        last_good: None,
    })
}

/// Compiles the process's file in store mode with `store_doc` (the store's
/// sections as a config document) instead of what the store holds now: what
/// an admin write would make, checked before it is written. The document is
/// read as it is, with no YAML text made or parsed; only when it does not
/// deserialize is it written out and parsed as YAML, for every problem,
/// located.
pub(crate) fn load_candidate(
    path: &Path,
    previous: Option<&Snapshot>,
    store_doc: &serde_json::Value,
) -> Result<Compiled, ConfigError> {
    let file_text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        issues: vec![config::ConfigIssue {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            path: String::new(),
            message: format!("cannot read config: {e}"),
        }],
    })?;
    super::store_mode::only_server(path, &file_text)?;
    let server = serde_yaml::from_str::<serde_json::Value>(&file_text)
        .ok()
        .and_then(|mut v| v.get_mut("server").map(serde_json::Value::take));
    let mut doc = store_doc.clone();
    if let (Some(server), Some(o)) = (server, doc.as_object_mut()) {
        o.insert("server".into(), server);
    }
    let clear = config::secret_slots::clear(&mut doc);
    if let Some((loaded, mut problems)) = config::parse_value_at(doc, path) {
        let mut issues = loaded.issues();
        for p in clear {
            issues.add(
                format!("{p}.value"),
                "a secret in the clear must be sealed before it is compiled",
            );
        }
        problems.extend(issues.finish().err().map(|e| e.issues).unwrap_or_default());
        return compile(loaded, problems, previous);
    }
    let store_part = serde_yaml::to_string(store_doc).unwrap_or_default();
    let merged = super::store_mode::merge(&file_text, "an admin write", &store_part);
    let (loaded, mut problems) = config::parse_lenient_at(&merged, path)?;
    problems.extend(clear_secrets(&loaded, &merged));
    compile(loaded, problems, previous)
}
