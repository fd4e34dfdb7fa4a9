//! Store mode's watcher: polls the store's revision every second and, when
//! it moved (an admin write, an import, another node), recompiles and swaps
//! in the new config with the same reload a SIGHUP runs. A store that cannot
//! be read leaves the running config serving, counted in `portico_store_up`.

use crate::serve::listeners::ListenerSpec;
use crate::snapshot::SharedSnapshot;
use crate::store::Store;
use crate::telemetry::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;
use std::time::Duration;

/// Polls the store and reloads on a new revision.
pub(crate) struct StoreWatcher {
    /// The process's config file (its `server` section names the store).
    pub config: PathBuf,
    pub url: String,
    pub snapshot: SharedSnapshot,
    pub listeners: Vec<ListenerSpec>,
    /// The revision the running config was compiled from, shared with the
    /// admin API's writes and SIGHUP.
    pub applied: std::sync::Arc<super::reload::StoreRevision>,
}

impl StoreWatcher {
    async fn revision(&self, store: &mut Option<Store>) -> Option<i64> {
        if store.is_none() {
            *store = Store::open(&self.url).await.ok();
        }
        let rev = store.as_ref()?.revision().await;
        if rev.is_err() {
            *store = None;
        }
        rev.ok()
    }
}

#[async_trait]
impl BackgroundService for StoreWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut store: Option<Store> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let Some(rev) = self.revision(&mut store).await else {
                if METRICS.store_up.get() != 0 {
                    log::warn!("store unreachable; the running config keeps serving");
                }
                METRICS.store_up.set(0);
                continue;
            };
            METRICS.store_up.set(1);
            if self.applied.get() >= rev {
                continue;
            }
            let (path, shared, running) = (self.config.clone(), self.snapshot.clone(), self.listeners.clone());
            let applied = self.applied.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                super::reload::reload(&path, &shared, &running, &applied, super::reload::By::StoreWatcher)
            })
            .await;
            match outcome {
                Ok(Ok(a)) if a.superseded => {
                    log::info!("store revision {rev} not applied: a newer config already serves");
                }
                Ok(Ok(_)) => log::info!("store revision {rev} applied"),
                Ok(Err(e)) => {
                    for issue in &e.issues {
                        log::error!("store revision {rev} rejected, the running config keeps serving: {issue}");
                    }
                    // Not retried until the store moves again.
                    self.applied.mark(rev);
                }
                Err(e) => log::error!("store reload aborted: {e}"),
            }
        }
    }
}
