//! How an admin write reaches the data plane: the candidate config (the
//! store's sections with the write applied) is compiled with the process's
//! file before anything is written, and once written it is swapped in
//! before the write returns, so the next request is served by it.

use crate::serve::admin_api::{Applier, Candidate, Problem};
use crate::serve::listeners::ListenerSpec;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::metrics::METRICS;
use std::path::PathBuf;
use std::sync::Arc;

/// Compiles and applies candidates for the admin API.
pub(crate) struct StoreApplier {
    pub config: PathBuf,
    pub snapshot: SharedSnapshot,
    pub listeners: Vec<ListenerSpec>,
    /// The store revision the running config was compiled from, shared
    /// with the watcher (so it does not compile a write a second time) and
    /// SIGHUP; swaps go through it, so none puts an older revision back,
    /// and so does the last good config.
    pub applied: Arc<super::reload::StoreRevision>,
}

fn problems(e: crate::config::ConfigError) -> Vec<Problem> {
    e.issues
        .into_iter()
        .map(|i| Problem {
            path: i.path,
            message: i.message,
        })
        .collect()
}

/// A compiled candidate and the document it was compiled from.
struct Checked {
    snapshot: crate::snapshot::Snapshot,
    store_doc: serde_json::Value,
}

impl StoreApplier {
    /// Keeps the applied config as the last good one, off the write's path
    /// (writing it out is slow for a large store); a later revision is never
    /// overwritten by an earlier one.
    fn remember(&self, store_doc: serde_json::Value, revision: i64) {
        let Some(mode) = std::fs::read_to_string(&self.config)
            .ok()
            .and_then(|t| super::store_mode::mode_of(&t))
        else {
            return;
        };
        let applied = Arc::clone(&self.applied);
        std::thread::spawn(move || {
            crate::serve::admin_api::write::background_priority();
            if let Ok(text) = serde_yaml::to_string(&store_doc) {
                applied.remember(&mode, &text, revision);
            }
        });
    }
}

impl Applier for StoreApplier {
    fn check(&self, store_doc: serde_json::Value) -> Result<Candidate, Vec<Problem>> {
        let current = self.snapshot.load_full();
        let next = super::load::load_candidate(&self.config, Some(&current), &store_doc).map_err(problems)?;
        if crate::serve::listeners::listeners_differ(&next.listeners, &self.listeners) {
            log::warn!("admin write: listener changes need `portico upgrade`");
        }
        Ok(Candidate(Box::new(Checked {
            snapshot: next.snapshot,
            store_doc,
        })))
    }

    fn apply(&self, candidate: Candidate, revision: i64) {
        let Ok(checked) = candidate.0.downcast::<Checked>() else {
            log::error!("admin write: not a checked candidate; the watcher will compile revision {revision}");
            return;
        };
        let Checked { snapshot, store_doc } = *checked;
        if !self.applied.swap_in(&self.snapshot, snapshot, Some(revision)) {
            log::info!("admin write: revision {revision} not applied, a newer config already serves");
            return;
        }
        self.remember(store_doc, revision);
        super::reload::swapped_in(&self.snapshot);
        METRICS.config_reloads_total.with_label_values(&["ok"]).inc();
    }
}
