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
}

/// Loads and compiles a config file: the same checks `portico check` runs.
/// State of `previous` carries over where settings are unchanged.
pub fn load(path: &Path, previous: Option<&Snapshot>) -> Result<Compiled, ConfigError> {
    // Validation and compiling both report, so one problem hides no other.
    let file_text = std::fs::read_to_string(path).ok();
    let store = file_text.as_deref().and_then(super::store_mode::mode_of);
    let (loaded, problems, store_part) = match (&store, &file_text) {
        (Some(mode), Some(text)) => {
            let (merged, part, last_good) = super::store_mode::config_text(path, text, mode)?;
            let (loaded, problems) = config::parse_lenient_at(&merged, path)?;
            (loaded, problems, Some((part, last_good)))
        }
        _ => {
            let (loaded, problems) = config::load_lenient(path)?;
            (loaded, problems, None)
        }
    };
    let compiled = compile(loaded, problems, previous)?;
    if let (Some(mode), Some((part, last_good))) = (&store, &store_part) {
        super::store_mode::remember(mode, part);
        crate::telemetry::metrics::METRICS
            .config_from_last_good
            .set(i64::from(*last_good));
    }
    Ok(compiled)
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
    let listeners = compile_listeners(&loaded, &mut issues);
    let snapshot = Snapshot::compile(&loaded, previous, &mut issues);
    issues.finish()?;
    Ok(Compiled {
        loaded,
        snapshot,
        listeners,
    })
}

/// Compiles the process's file in store mode with `store_part` (the store's
/// sections as YAML) instead of what the store holds now: what an admin
/// write would make, checked before it is written.
pub(crate) fn load_candidate(
    path: &Path,
    previous: Option<&Snapshot>,
    store_part: &str,
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
    let merged = super::store_mode::merge(&file_text, "an admin write", store_part);
    let (loaded, problems) = config::parse_lenient_at(&merged, path)?;
    compile(loaded, problems, previous)
}
