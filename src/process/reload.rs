//! Config reload (SIGHUP, `portico reload`, `systemctl reload`).
//!
//! A reload compiles the file into a new Snapshot next to the running one and
//! swaps it in atomically; requests in flight keep the Snapshot they started
//! with. Listeners are sockets owned by Pingora: a reload cannot rebind them,
//! so a change there is reported as needing `portico upgrade` while the rest
//! of the new config is applied.

use super::load::{load, Compiled};
use crate::config::{ConfigError, ConfigIssue};
use crate::serve::listeners::{listeners_differ, ListenerSpec};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::telemetry::metrics::METRICS;
use std::path::Path;
use std::sync::Arc;

/// A reload that was applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    /// The file's listeners differ from the running ones, which stay until
    /// `portico upgrade`.
    pub(crate) listeners_changed: bool,
}

/// Re-reads `path`; on success swaps the new snapshot in. `running` are the
/// listeners this process serves. On failure the old config keeps serving
/// and the error lists every problem.
pub(crate) fn reload(path: &Path, shared: &SharedSnapshot, running: &[ListenerSpec]) -> Result<Applied, ConfigError> {
    let current = shared.load_full();
    match load(path, Some(&current)).and_then(|next| refuse_accidental_emptying(next, &current)) {
        Ok(next) => {
            let listeners_changed = listeners_differ(&next.listeners, running);
            shared.store(Arc::new(next.snapshot));
            // Drop the label sets of targets the new config no longer has.
            METRICS.target_healthy.reset();
            crate::upstream::health::publish_health(shared.load().pools.values());
            METRICS.config_reloads_total.with_label_values(&["ok"]).inc();
            Ok(Applied { listeners_changed })
        }
        Err(e) => {
            METRICS.config_reloads_total.with_label_values(&["error"]).inc();
            Err(e)
        }
    }
}

/// A reload that would leave no route of a config that had some is refused,
/// unless the file says so with `routes: []`: a config cut short while it
/// was written (a half-saved file, an editor's truncation) must not turn the
/// gateway into a wall of 404s.
fn refuse_accidental_emptying(next: Compiled, current: &Snapshot) -> Result<Compiled, ConfigError> {
    let emptied = next.snapshot.routes.is_empty() && !current.routes.is_empty();
    if !emptied || next.loaded.declares("routes") {
        return Ok(next);
    }
    Err(ConfigError {
        issues: vec![ConfigIssue {
            file: next.loaded.file.clone(),
            line: 1,
            col: 1,
            path: "routes".into(),
            message: "the file has no routes, which would remove every route; write `routes: []` to mean it".into(),
        }],
    })
}
