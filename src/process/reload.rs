//! Config reload (SIGHUP, `portico reload`, `systemctl reload`).
//!
//! A reload compiles the file into a new Snapshot next to the running one and
//! swaps it in atomically; requests in flight keep the Snapshot they started
//! with. Listeners are sockets owned by Pingora: a reload cannot rebind them,
//! so a change there is reported as needing `portico upgrade` while the rest
//! of the new config is applied.

use super::load::{load, Compiled};
use super::store_mode::StoreMode;
use crate::config::{ConfigError, ConfigIssue};
use crate::serve::listeners::{listeners_differ, ListenerSpec};
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::telemetry::metrics::METRICS;
use std::path::Path;
use std::sync::Arc;

/// A reload that compiled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    /// The file's listeners differ from the running ones, which stay until
    /// `portico upgrade`.
    pub(crate) listeners_changed: bool,
    /// Not swapped in: compiled from an older store revision than the
    /// running config's (an admin write applied its newer one meanwhile),
    /// or, for the store watcher, from the last good copy.
    pub(crate) superseded: bool,
}

/// In store mode, the store revision the running config was compiled from
/// (-1: not known, and in file mode), and the one way a compiled config is
/// swapped in: under its lock, and never one compiled from an older
/// revision than the running one's. The admin API's writes, the store
/// watcher and SIGHUP all apply store revisions; without the check, a
/// reload that read the store just before an admin write could swap its
/// older config in after the write's, and the watcher, seeing the newest
/// revision applied, would never correct it.
/// The last good config (`state_dir/last-good.yaml`) is kept the same
/// way: never overwritten by an older revision's.
#[derive(Debug)]
pub(crate) struct StoreRevision {
    applied: std::sync::Mutex<i64>,
    /// The revision last kept as the last good config.
    kept: std::sync::Mutex<i64>,
}

fn lock(m: &std::sync::Mutex<i64>) -> std::sync::MutexGuard<'_, i64> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StoreRevision {
    pub(crate) fn new(revision: Option<i64>) -> StoreRevision {
        StoreRevision {
            applied: std::sync::Mutex::new(revision.unwrap_or(-1)),
            kept: std::sync::Mutex::new(-1),
        }
    }

    /// The revision the running config was compiled from.
    pub(crate) fn get(&self) -> i64 {
        *lock(&self.applied)
    }

    /// Marks `revision` as handled (one that failed to compile is not tried
    /// again until the store moves), never lowering the mark.
    pub(crate) fn mark(&self, revision: i64) {
        let mut applied = lock(&self.applied);
        *applied = (*applied).max(revision);
    }

    /// Keeps `store_part`, compiled from store `revision`, as the last good
    /// config, unless a newer revision's is kept already.
    pub(crate) fn remember(&self, mode: &StoreMode, store_part: &str, revision: i64) {
        let mut kept = lock(&self.kept);
        if *kept >= revision {
            return;
        }
        super::store_mode::remember(mode, store_part);
        *kept = revision;
    }

    /// Swaps `snapshot`, compiled from store revision `revision` (None: not
    /// from the store), in unless the running config is from a newer
    /// revision; says whether it did.
    pub(crate) fn swap_in(&self, shared: &SharedSnapshot, snapshot: Snapshot, revision: Option<i64>) -> bool {
        let mut applied = lock(&self.applied);
        if let Some(r) = revision {
            if r < *applied {
                return false;
            }
            *applied = r;
        }
        shared.store(Arc::new(snapshot));
        true
    }
}

/// Who asks for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// SIGHUP (`portico reload`, `systemctl reload`).
    Signal,
    /// The store watcher, on a new store revision. A config compiled from
    /// the last good copy (the store could not be read just now) is not
    /// swapped in for it, since the running one is at least as new.
    StoreWatcher,
}

/// Re-reads `path`; on success swaps the new snapshot in through
/// `revision` (see [`StoreRevision`]). `running` are the listeners this
/// process serves. On failure the old config keeps serving and the error
/// lists every problem.
pub(crate) fn reload(
    path: &Path,
    shared: &SharedSnapshot,
    running: &[ListenerSpec],
    revision: &StoreRevision,
    by: By,
) -> Result<Applied, ConfigError> {
    let current = shared.load_full();
    match load(path, Some(&current)).and_then(|next| refuse_accidental_emptying(next, &current)) {
        Ok(next) => {
            let listeners_changed = listeners_differ(&next.listeners, running);
            let swapped = !(by == By::StoreWatcher && next.store_revision.is_none())
                && revision.swap_in(shared, next.snapshot, next.store_revision);
            if swapped {
                if let (Some((mode, part)), Some(rev)) = (&next.last_good, next.store_revision) {
                    revision.remember(mode, part, rev);
                }
                swapped_in(shared);
            }
            // A superseded reload compiled too; a newer config serves.
            METRICS.config_reloads_total.with_label_values(&["ok"]).inc();
            Ok(Applied {
                listeners_changed,
                superseded: !swapped,
            })
        }
        Err(e) => {
            METRICS.config_reloads_total.with_label_values(&["error"]).inc();
            Err(e)
        }
    }
}

/// After a new config is swapped in: the health gauges of its targets only
/// (the label sets of targets it no longer has are dropped).
pub(crate) fn swapped_in(shared: &SharedSnapshot) {
    METRICS.target_healthy.reset();
    crate::upstream::health::publish_health(shared.load().pools.values());
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

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;

    /// A snapshot with one fixed-response route answering `body`.
    fn snapshot(body: &str) -> Snapshot {
        let yaml = format!("routes:\n  - name: r\n    paths: [/]\n    response: {{status: 200, body: {body}}}\n");
        let loaded = crate::config::parse_str(&yaml, "test.yaml").unwrap();
        Snapshot::build(&loaded, None).unwrap()
    }

    #[test]
    fn a_config_from_an_older_store_revision_is_never_swapped_in() {
        let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot("a")));
        let applied = StoreRevision::new(Some(5));
        let before = Arc::as_ptr(&shared.load_full());
        assert!(!applied.swap_in(&shared, snapshot("old"), Some(4)));
        assert_eq!(
            Arc::as_ptr(&shared.load_full()),
            before,
            "the older one was not swapped in"
        );
        assert_eq!(applied.get(), 5);
        assert!(
            applied.swap_in(&shared, snapshot("same"), Some(5)),
            "the same revision again is fine"
        );
        assert!(applied.swap_in(&shared, snapshot("new"), Some(7)));
        assert_eq!(applied.get(), 7);
        // Not from the store (file mode, the last good copy): no revision to order by.
        let before = Arc::as_ptr(&shared.load_full());
        assert!(applied.swap_in(&shared, snapshot("file"), None));
        assert_ne!(Arc::as_ptr(&shared.load_full()), before);
        assert_eq!(applied.get(), 7);
        // A revision that did not compile is marked, never lowering the mark.
        applied.mark(6);
        assert_eq!(applied.get(), 7);
        applied.mark(9);
        assert_eq!(applied.get(), 9);
        assert_eq!(StoreRevision::new(None).get(), -1);
    }

    #[test]
    fn the_last_good_config_is_never_overwritten_by_an_older_revision() {
        let dir = std::env::temp_dir().join(format!("portico-last-good-{}", ulid::Ulid::new()));
        let mode = StoreMode {
            url: "sqlite:///unused.db".into(),
            state_dir: dir.clone(),
        };
        let kept = || std::fs::read_to_string(dir.join("last-good.yaml")).unwrap_or_default();
        let revision = StoreRevision::new(Some(1));
        revision.remember(&mode, "five", 5);
        assert_eq!(kept(), "five");
        revision.remember(&mode, "four", 4);
        assert_eq!(kept(), "five", "an older revision's is not kept");
        revision.remember(&mode, "six", 6);
        assert_eq!(kept(), "six");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
