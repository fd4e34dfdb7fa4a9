//! The call log: a record of every call in its own database, with rollups
//! made as the records arrive, retention enforced by the gateway, and the
//! queries the admin API answers (DESIGN.md, "Call log").
//!
//! The request path builds the record once ([`crate::telemetry::call`]) and
//! pushes it onto a bounded lock-free queue ([`CallLog::record`]): when the
//! writer falls behind, the record is dropped and counted in
//! `portico_call_log_dropped_total`, so a slow disk never slows a request.
//! One writer thread ([`writer`]) writes batches ([`db`]), sums the rollups
//! ([`rollup`]) and deletes what retention says ([`retention`]). A route's
//! sampling and capture are compiled at load ([`policy`], [`capture`]).
//! [`query`] and [`analytics`] read it: raw records for the log page, the
//! rollups for everything over time.

pub(crate) mod analytics;
pub(crate) mod capture;
pub(crate) mod db;
pub(crate) mod plan;
pub(crate) mod policy;
pub(crate) mod query;
pub(crate) mod retention;
pub(crate) mod rollup;
pub(crate) mod schema;
mod sqlite;
mod writer;

use crate::config::{CallLogConfig, ServerConfig};
use crate::telemetry::call::CallRecord;
use crate::telemetry::metrics::METRICS;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// The request side of the call log: cheap to clone, never blocks.
#[derive(Clone)]
pub(crate) struct CallLog {
    queue: Arc<ArrayQueue<Arc<CallRecord>>>,
}

impl CallLog {
    /// Starts the writer thread for `cfg` (the database is opened there,
    /// so a database that is down does not stop the gateway from starting).
    /// Once `stopping` says so, the writer writes every 10 ms, not 100.
    pub(crate) fn start(
        server: &ServerConfig,
        cfg: &CallLogConfig,
        stopping: fn() -> bool,
    ) -> std::io::Result<CallLog> {
        let queue = Arc::new(ArrayQueue::new(cfg.buffer.max(1)));
        let writer_cfg = writer::WriterConfig {
            url: server.call_log_url(cfg),
            retention: (&cfg.retention).into(),
            stopping,
        };
        let q = queue.clone();
        std::thread::Builder::new()
            .name("portico-call-log".into())
            .spawn(move || writer::run(q, writer_cfg))?;
        Ok(CallLog { queue })
    }

    /// Queues a record; drops it (and counts the drop) when the queue is full.
    pub(crate) fn record(&self, rec: Arc<CallRecord>) {
        if self.queue.push(rec).is_err() {
            METRICS.call_log_dropped_total.inc();
        }
    }
}

/// The query side of the call log, for the admin API: the database is
/// opened on first use (with a few readers; SQLite's WAL lets them read
/// while the writer writes).
pub(crate) struct CallReader {
    url: String,
    pub(crate) retention: retention::Retention,
    db: tokio::sync::OnceCell<db::CallDb>,
}

impl CallReader {
    pub(crate) fn new(server: &ServerConfig, cfg: &CallLogConfig) -> CallReader {
        CallReader {
            url: server.call_log_url(cfg),
            retention: (&cfg.retention).into(),
            db: tokio::sync::OnceCell::new(),
        }
    }

    /// The database, opened once.
    pub(crate) async fn db(&self) -> Result<&db::CallDb, crate::store::StoreError> {
        self.db.get_or_try_init(|| db::CallDb::open(&self.url, 4)).await
    }
}

#[cfg(test)]
mod tests;
