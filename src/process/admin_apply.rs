//! How an admin write reaches the data plane: the candidate config (the
//! store's sections with the write applied) is compiled with the process's
//! file before anything is written, and once written it is swapped in
//! before the write returns, so the next request is served by it.

use crate::serve::admin_api::{Applier, Candidate, Problem};
use crate::serve::listeners::ListenerSpec;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::metrics::METRICS;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Compiles and applies candidates for the admin API.
pub(crate) struct StoreApplier {
    pub config: PathBuf,
    pub snapshot: SharedSnapshot,
    pub listeners: Vec<ListenerSpec>,
    /// The store revision the running config was compiled from, shared
    /// with the watcher so it does not compile a write a second time.
    pub applied: Arc<AtomicI64>,
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

impl Applier for StoreApplier {
    fn check(&self, store_part: &str) -> Result<Candidate, Vec<Problem>> {
        let current = self.snapshot.load_full();
        let next = super::load::load_candidate(&self.config, Some(&current), store_part).map_err(problems)?;
        if crate::serve::listeners::listeners_differ(&next.listeners, &self.listeners) {
            log::warn!("admin write: listener changes need `portico upgrade`");
        }
        Ok(Candidate(Box::new(next.snapshot)))
    }

    fn apply(&self, candidate: Candidate, revision: i64) {
        let Ok(snapshot) = candidate.0.downcast::<crate::snapshot::Snapshot>() else {
            log::error!("admin write: not a snapshot; the watcher will compile revision {revision}");
            return;
        };
        self.snapshot.store(Arc::from(snapshot));
        self.applied.store(revision, Ordering::Release);
        METRICS.target_healthy.reset();
        crate::upstream::health::publish_health(self.snapshot.load().pools.values());
        METRICS.config_reloads_total.with_label_values(&["ok"]).inc();
    }
}
