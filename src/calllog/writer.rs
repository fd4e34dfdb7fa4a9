//! The call log's writer: one thread with its own single-threaded tokio
//! runtime (the database driver is async), which drains the queue every
//! [`TICK`] in batches of up to [`MAX_BATCH`], writes each in one
//! transaction, and runs retention between batches. While the database
//! cannot be opened, records wait in the bounded queue and the writer tries
//! again, soon at first and then every [`REOPEN_AFTER`]; a batch whose
//! write failed is kept and written once the database opens again, under
//! the same batch id, so that one whose COMMIT was applied but not
//! answered is not written twice ([`super::db`]). So a
//! database that is busy or restarting for a moment loses nothing, and one
//! that is down loses what does not fit in the queue, counted in
//! `portico_call_log_dropped_total`, never held without bound.

use super::db::CallWriter;
use super::retention::Retention;
use crate::store::redacted;
use crate::telemetry::call::CallRecord;
use crate::telemetry::metrics::METRICS;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the writer drains the queue.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// How often once the process drains (an upgrade or a shutdown began): the
/// process may exit at any moment, so little is left waiting.
const TICK_WHILE_STOPPING: Duration = Duration::from_millis(10);
/// Most records written in one transaction.
pub(crate) const MAX_BATCH: usize = 20_000;
/// Longest run of retention steps between two batches.
const RETENTION_SLICE: Duration = Duration::from_millis(50);
/// The first wait before opening a database that failed again; each
/// failure doubles it, up to [`REOPEN_AFTER`].
const REOPEN_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before opening a database that failed again.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// What the writer needs.
pub(crate) struct WriterConfig {
    pub url: String,
    pub retention: Retention,
    /// Whether the process is stopping (it drains).
    pub stopping: fn() -> bool,
}

/// Now, in unix milliseconds.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn drain(queue: &ArrayQueue<Arc<CallRecord>>, into: &mut Vec<Arc<CallRecord>>) {
    while into.len() < MAX_BATCH {
        match queue.pop() {
            Some(r) => into.push(r),
            None => break,
        }
    }
}

fn drop_all(queue: &ArrayQueue<Arc<CallRecord>>) {
    let mut n = 0u64;
    while queue.pop().is_some() {
        n += 1;
    }
    METRICS.call_log_dropped_total.inc_by(n);
}

/// Runs until every request-side handle is gone and the queue is empty.
pub(crate) fn run(queue: Arc<ArrayQueue<Arc<CallRecord>>>, cfg: WriterConfig) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("call log: cannot start its writer: {e}");
            return;
        }
    };
    rt.block_on(write_loop(queue, cfg));
}

async fn write_loop(queue: Arc<ArrayQueue<Arc<CallRecord>>>, cfg: WriterConfig) {
    let mut db: Option<CallWriter> = None;
    // When the last open failed, and how long to wait from then.
    let mut failed_at: Option<Instant> = None;
    let mut reopen_after = REOPEN_FIRST;
    let mut retention_due = Instant::now();
    let mut batch = Vec::with_capacity(4096);
    // The batch failed once and is kept to be written again.
    let mut held = false;
    // The batch's id: new for each batch, the same when it is written again.
    let mut batch_id = String::new();
    loop {
        let last = Arc::strong_count(&queue) == 1;
        if db.is_none() && failed_at.is_none_or(|t| t.elapsed() >= reopen_after) {
            match CallWriter::open(&cfg.url).await {
                Ok(d) => {
                    if failed_at.take().is_some() {
                        log::info!("call log: {} is open again", redacted(&cfg.url));
                    }
                    reopen_after = REOPEN_FIRST;
                    db = Some(d);
                }
                Err(e) => {
                    if failed_at.is_some() {
                        reopen_after = (reopen_after * 2).min(REOPEN_AFTER);
                    }
                    log::error!(
                        "call log: cannot open {}: {e}; trying again in {} ms",
                        redacted(&cfg.url),
                        reopen_after.as_millis()
                    );
                    failed_at = Some(Instant::now());
                }
            }
        }
        let Some(d) = &mut db else {
            // The records wait in the queue; what does not fit is dropped
            // and counted as it arrives ([`super::CallLog::record`]).
            if last {
                if held {
                    METRICS.call_log_dropped_total.inc_by(batch.len() as u64);
                }
                drop_all(&queue);
                return;
            }
            tokio::time::sleep(TICK).await;
            continue;
        };
        // A held batch is written again as it was, alone: were records
        // added to it, a batch found written before would lose them.
        if !held {
            batch.clear();
            drain(&queue, &mut batch);
            batch_id = ulid::Ulid::new().to_string();
        }
        if !batch.is_empty() {
            match d.write(&batch_id, &batch).await {
                Ok(kept) => {
                    METRICS.call_log_written_total.inc_by(kept as u64);
                    held = false;
                }
                // A batch that fails once (the connection was lost, the
                // server restarts) is written again once the database
                // opens; one that fails again after that is dropped, so a
                // batch the database refuses cannot stop the log.
                Err(e) if !held => {
                    log::warn!(
                        "call log: a batch of {} records was not written: {e}; it is kept to be written again",
                        batch.len()
                    );
                    held = true;
                    db = None;
                    failed_at = Some(Instant::now());
                    continue;
                }
                Err(e) => {
                    log::error!(
                        "call log: a batch of {} records was not written again: {e}; it is dropped",
                        batch.len()
                    );
                    METRICS.call_log_dropped_total.inc_by(batch.len() as u64);
                    held = false;
                    db = None;
                    failed_at = Some(Instant::now());
                    continue;
                }
            }
        }
        // Retention's steps, for at most RETENTION_SLICE between batches.
        let started = Instant::now();
        while Instant::now() >= retention_due && started.elapsed() < RETENTION_SLICE {
            match d.db.retain_step(&cfg.retention, now_ms()).await {
                Ok(s) if s.more => {}
                Ok(_) => retention_due = Instant::now() + cfg.retention.interval,
                Err(e) => {
                    log::warn!("call log: retention failed: {e}");
                    retention_due = Instant::now() + cfg.retention.interval;
                }
            }
        }
        if last && queue.is_empty() {
            return;
        }
        if batch.len() < MAX_BATCH {
            let tick = if (cfg.stopping)() { TICK_WHILE_STOPPING } else { TICK };
            tokio::time::sleep(tick).await;
        }
    }
}
