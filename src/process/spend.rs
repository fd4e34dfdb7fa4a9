//! AI budget spend that survives restarts, upgrades and crashes: the
//! budgets' windows ([`crate::ai::spend`]) are read back from a database
//! before the process serves, and a background task writes what changed
//! every second and once more when shutdown begins, so a crash loses at
//! most about a second of spend.
//!
//! The database is the store in store mode (its `spend` table), and in file
//! mode a SQLite file, `spend.db` in `server.state_dir`, through the same
//! [`Store`] code. Requests never wait on it: they only touch the budgets'
//! atomics, and this task reads those. When the database cannot be opened
//! or written, the process says so once, counts each failure in
//! `portico_spend_flush_errors_total` and keeps serving with the spend in
//! memory; once it can write again, what was spent meanwhile is added.
//!
//! Each write adds the deltas since the last one and reads the totals back
//! into the budgets, so processes sharing a database (nodes on one
//! PostgreSQL, an old and a new process during an upgrade) converge on the
//! sum of what they spent.

use crate::ai::budget::Budgets;
use crate::ai::spend::{SpendEntry, SpendTotal};
use crate::config::ServerConfig;
use crate::snapshot::SharedSnapshot;
use crate::store::spend::SpendRow;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::time::Duration;

/// How often spend is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often once shutdown began: calls that finish during the grace period
/// are still charged, and the runtime may stop at any moment.
const FLUSH_EVERY_WHILE_STOPPING: Duration = Duration::from_millis(250);
/// The longest a start waits for the spend database before serving.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows not written for this long belong to windows that are over.
const FORGET_AFTER_DAYS: i64 = 40;

/// Where spend is kept, and how the logs name it (a store URL may hold a
/// password).
#[derive(Debug, Clone)]
struct SpendDb {
    url: String,
    name: String,
    /// A directory to create first (file mode).
    dir: Option<std::path::PathBuf>,
}

impl SpendDb {
    fn of(server: &ServerConfig) -> SpendDb {
        match &server.store {
            Some(url) => SpendDb {
                url: url.clone(),
                name: "the store".into(),
                dir: None,
            },
            None => {
                let file = server.state_dir.join("spend.db");
                SpendDb {
                    url: format!("sqlite://{}", file.display()),
                    name: file.display().to_string(),
                    dir: Some(server.state_dir.clone()),
                }
            }
        }
    }

    async fn open(&self) -> Result<Store, StoreError> {
        if let Some(dir) = &self.dir {
            // Store::open reports the failure to create the file itself.
            let _ = std::fs::create_dir_all(dir);
        }
        Store::open(&self.url).await
    }
}

fn totals(rows: Vec<SpendRow>) -> Vec<SpendTotal> {
    rows.into_iter()
        .map(|r| SpendTotal {
            key: r.budget_key,
            period: r.period,
            window: u64::try_from(r.window).unwrap_or(0),
            amount: u64::try_from(r.amount).unwrap_or(0),
        })
        .collect()
}

fn deltas(read: &[SpendEntry]) -> Vec<SpendRow> {
    read.iter()
        .filter(|e| e.delta > 0)
        .map(|e| SpendRow {
            budget_key: e.key.clone(),
            period: e.period.to_string(),
            window: i64::try_from(e.window).unwrap_or(i64::MAX),
            amount: i64::try_from(e.delta).unwrap_or(i64::MAX),
        })
        .collect()
}

/// Writes what `budgets` spent since the last sync and reads every total back.
async fn sync(store: &Store, budgets: &Budgets) -> Result<(), StoreError> {
    let read = budgets.pending();
    let deltas = deltas(&read);
    if !deltas.is_empty() {
        store.add_spend(&deltas).await?;
        budgets.written(&read);
    }
    let rows = store.spend().await?;
    budgets.settle(&read, &totals(rows));
    Ok(())
}

/// Reads the stored spend into `budgets` (before serving).
async fn restore(db: &SpendDb, budgets: &Budgets) -> Result<usize, StoreError> {
    let store = db.open().await?;
    store.forget_spend_older_than(FORGET_AFTER_DAYS).await?;
    let rows = totals(store.spend().await?);
    budgets.restore(&rows);
    Ok(rows.len())
}

/// The background task that keeps spend in its database.
pub(crate) struct SpendKeeper {
    db: SpendDb,
    snapshot: SharedSnapshot,
}

impl SpendKeeper {
    /// Reads the stored spend into the budgets `snapshot` serves now, waiting
    /// at most a few seconds (on a thread of its own, so that it works with
    /// or without a runtime), and returns the task that keeps it.
    pub(crate) fn start(server: &ServerConfig, snapshot: &SharedSnapshot) -> SpendKeeper {
        let db = SpendDb::of(server);
        let current = snapshot.load_full();
        if let Some(ai) = current.ai.clone().filter(|ai| !ai.budgets.pending().is_empty()) {
            let restoring = db.clone();
            let read = super::aside::on_a_thread(move || async move {
                match tokio::time::timeout(RESTORE_TIMEOUT, restore(&restoring, &ai.budgets)).await {
                    Ok(Ok(n)) => Ok(n),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {RESTORE_TIMEOUT:?}")),
                }
            });
            match read {
                Ok(n) => log::info!("budget spend: {n} window(s) read from {}", db.name),
                Err(e) => log::warn!(
                    "budget spend: cannot read {} ({e}); budgets count from zero until it can be written",
                    db.name
                ),
            }
        }
        SpendKeeper {
            db,
            snapshot: snapshot.clone(),
        }
    }

    /// One sync of the budgets served now; `failing` remembers whether the
    /// last one failed, so that a failure is logged once.
    async fn flush(&self, store: &mut Option<Store>, failing: &mut bool) {
        let current = self.snapshot.load_full();
        let Some(ai) = current.ai.as_ref() else {
            return;
        };
        if ai.budgets.pending().is_empty() {
            return;
        }
        let result = match store {
            Some(s) => sync(s, &ai.budgets).await,
            None => match self.db.open().await {
                Ok(s) => sync(store.insert(s), &ai.budgets).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) if *failing => {
                log::info!("budget spend: written to {} again", self.db.name);
                *failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                METRICS.spend_flush_errors_total.inc();
                if !*failing {
                    log::warn!(
                        "budget spend: cannot write to {} ({e}); kept in memory and retried every second",
                        self.db.name
                    );
                }
                *failing = true;
                // Reconnect next time.
                *store = None;
            }
        }
    }
}

#[async_trait]
impl BackgroundService for SpendKeeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut store = None;
        let mut failing = false;
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            if stopping {
                tick.tick().await;
            } else {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => {
                        // Written at once, then more often until the
                        // runtime stops.
                        stopping = true;
                        tick = tokio::time::interval(FLUSH_EVERY_WHILE_STOPPING);
                        tick.tick().await;
                    }
                }
            }
            self.flush(&mut store, &mut failing).await;
        }
    }
}
