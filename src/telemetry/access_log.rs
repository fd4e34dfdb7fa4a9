//! JSON access log: one line per request, written by a dedicated thread.
//! The request path only pushes the record onto a bounded lock-free queue
//! (crossbeam's `ArrayQueue`); when the writer falls behind, the line is
//! dropped and counted in `portico_access_log_dropped_total`, so a slow disk
//! never slows requests. SIGUSR1 asks the writer to reopen its file
//! (logrotate's copytruncate-free rotation).
//!
//! The writer wakes on a timer (every 20 ms) and drains the queue in one
//! batch, rather than being woken per line: a wake-up per request (what a
//! channel does) cost a context switch each and halved the throughput of a
//! logged route on one core (bench/TUNING.md). The request side wakes it
//! early only when the queue is half full. Formatting (time, JSON) happens on
//! the writer thread.

use super::call::CallRecord;
use super::metrics::METRICS;
use crossbeam_queue::ArrayQueue;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the writer drains the queue.
const TICK: Duration = Duration::from_millis(20);

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sink {
    Stdout,
    File(PathBuf),
}

/// The request side of the log: cheap to clone, never blocks.
#[derive(Clone)]
pub(crate) struct AccessLog {
    queue: Arc<ArrayQueue<Arc<CallRecord>>>,
    writer: std::thread::Thread,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Starts the writer thread. Fails when the file cannot be opened.
    pub(crate) fn start(sink: Sink, capacity: usize) -> std::io::Result<AccessLog> {
        let out = open(&sink)?;
        let queue = Arc::new(ArrayQueue::new(capacity.max(1)));
        let reopen = Arc::new(AtomicBool::new(false));
        let (q, flag) = (queue.clone(), reopen.clone());
        let handle = std::thread::Builder::new()
            .name("portico-access-log".into())
            .spawn(move || writer(q, sink, out, flag))?;
        Ok(AccessLog {
            queue,
            writer: handle.thread().clone(),
            reopen,
        })
    }

    /// Queues a record; drops it (and counts the drop) when the queue is full.
    pub(crate) fn log(&self, rec: Arc<CallRecord>) {
        if self.queue.push(rec).is_err() {
            METRICS.access_log_dropped_total.inc();
        }
        if self.queue.len() * 2 >= self.queue.capacity() {
            self.writer.unpark();
        }
    }

    /// Asks the writer to reopen its file (on SIGUSR1).
    pub(crate) fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }
}

fn open(sink: &Sink) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match sink {
        Sink::Stdout => Box::new(std::io::stdout()),
        Sink::File(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?) as Box<dyn Write + Send>,
    })
}

fn writer(queue: Arc<ArrayQueue<Arc<CallRecord>>>, sink: Sink, out: Box<dyn Write + Send>, reopen: Arc<AtomicBool>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut line = Vec::with_capacity(512);
    loop {
        std::thread::park_timeout(TICK);
        if !queue.is_empty() {
            // Drain what is queued, then flush once.
            while let Some(rec) = queue.pop() {
                write_line(&mut out, &mut line, &rec);
            }
            let _ = out.flush();
        }
        if Arc::strong_count(&queue) == 1 {
            // Every request-side handle is gone.
            let _ = out.flush();
            return;
        }
        if reopen.swap(false, Ordering::Relaxed) {
            let _ = out.flush();
            match open(&sink) {
                Ok(f) => out = BufWriter::with_capacity(64 * 1024, f),
                Err(e) => log::error!("access log: cannot reopen {sink:?}: {e}"),
            }
        }
    }
}

fn write_line(out: &mut impl Write, line: &mut Vec<u8>, rec: &CallRecord) {
    line.clear();
    if serde_json::to_writer(&mut *line, rec).is_ok() {
        line.push(b'\n');
        if let Err(e) = out.write_all(line) {
            log::error!("access log write failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallRecord;

    /// Every slot of the queue is resident from the start (16,384 by
    /// default): it holds a pointer to the shared record, which is
    /// allocated once per call for both writers.
    #[test]
    fn a_record_stays_small() {
        assert_eq!(std::mem::size_of::<std::sync::Arc<CallRecord>>(), 8);
        let size = std::mem::size_of::<CallRecord>();
        assert!(size <= 400, "CallRecord is {size} bytes");
    }
}
