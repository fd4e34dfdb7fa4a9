//! Loading a config file for the process: parsed and validated
//! ([`crate::config`]), compiled into a snapshot ([`crate::snapshot`]) and
//! into listeners ([`crate::serve::listeners`]), with every problem of all
//! three reported together. `portico check`, start-up and reload all come here.

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
    let (loaded, problems) = config::load_lenient(path)?;
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
