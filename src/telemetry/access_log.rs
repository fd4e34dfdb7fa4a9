//! JSON access log: one line per request, written by a dedicated thread.
//! The request path only does a non-blocking `try_send` on a bounded channel
//! (std's mpsc, array-backed when bounded); when the writer falls behind, the
//! line is dropped and counted in `portico_access_log_dropped_total`, so a slow
//! disk never slows requests. SIGUSR1 asks the writer to reopen its file
//! (logrotate's copytruncate-free rotation).

use super::metrics::METRICS;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One request, as logged.
#[derive(Debug, Serialize, Default)]
pub struct AccessRecord {
    pub time: String,
    pub request_id: String,
    pub client_ip: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub route: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    File(PathBuf),
}

/// The request side of the log: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<AccessRecord>,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Starts the writer thread. Fails when the file cannot be opened.
    pub fn start(sink: Sink, capacity: usize) -> std::io::Result<AccessLog> {
        let out = open(&sink)?;
        let (tx, rx) = sync_channel(capacity.max(1));
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        std::thread::Builder::new()
            .name("portico-access-log".into())
            .spawn(move || writer(rx, sink, out, flag))?;
        Ok(AccessLog { tx, reopen })
    }

    /// Queues a record; drops it (and counts the drop) when the queue is full.
    pub fn log(&self, rec: AccessRecord) {
        match self.tx.try_send(rec) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                METRICS.access_log_dropped_total.inc();
            }
        }
    }

    /// Asks the writer to reopen its file (on SIGUSR1).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }
}

fn open(sink: &Sink) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match sink {
        Sink::Stdout => Box::new(std::io::stdout()),
        Sink::File(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?) as Box<dyn Write + Send>,
    })
}

fn writer(rx: Receiver<AccessRecord>, sink: Sink, out: Box<dyn Write + Send>, reopen: Arc<AtomicBool>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(rec) => {
                write_line(&mut out, &rec);
                // Drain what is queued, then flush once.
                while let Ok(rec) = rx.try_recv() {
                    write_line(&mut out, &rec);
                }
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
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

fn write_line(out: &mut impl Write, rec: &AccessRecord) {
    if let Ok(mut line) = serde_json::to_vec(rec) {
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            log::error!("access log write failed: {e}");
        }
    }
}
