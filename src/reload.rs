//! Config reload (SIGHUP, `portico reload`, `systemctl reload`) and the
//! process-control side of graceful upgrades (`portico upgrade`).
//!
//! A reload compiles the file into a new Snapshot next to the running one and
//! swaps it in atomically; requests in flight keep the Snapshot they started
//! with. Listeners are sockets owned by Pingora: a reload cannot rebind them,
//! so a change there is reported as needing `portico upgrade` while the rest
//! of the new config is applied.

use crate::runtime::{SharedSnapshot, Snapshot};
use crate::server::load_snapshot;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The outcome of one reload.
#[derive(Debug)]
pub enum ReloadOutcome {
    Applied { listeners_changed: bool },
    Rejected(String),
}

/// Re-reads `path`; on success swaps the new snapshot in.
pub fn reload(path: &Path, shared: &SharedSnapshot) -> ReloadOutcome {
    let current = shared.load_full();
    match load_snapshot(path, Some(&current)) {
        Ok((_, mut next)) => {
            let listeners_changed = listener_key(&next) != listener_key(&current);
            if listeners_changed {
                log::warn!(
                    "reload: listener changes in {} need `portico upgrade`; the running listeners stay as they are",
                    path.display()
                );
            }
            // The running sockets are what they are until an upgrade.
            next.listeners = current.listeners.clone();
            shared.store(Arc::new(next));
            // Drop the label sets of targets the new config no longer has.
            METRICS.target_healthy.reset();
            crate::upstream::health::publish_health(&shared.load());
            METRICS.config_reloads_total.with_label_values(&["ok"]).inc();
            log::info!("reload: applied {}", path.display());
            ReloadOutcome::Applied { listeners_changed }
        }
        Err(e) => {
            METRICS.config_reloads_total.with_label_values(&["error"]).inc();
            for issue in &e.issues {
                log::error!("reload rejected, old config keeps serving: {issue}");
            }
            ReloadOutcome::Rejected(e.to_string())
        }
    }
}

fn listener_key(s: &Snapshot) -> Vec<(String, bool, bool, bool)> {
    let mut v: Vec<_> = s
        .listeners
        .iter()
        .map(|l| (l.address.clone(), l.tls.is_some(), l.http2, l.h2c))
        .collect();
    v.sort();
    v
}

/// Listens for SIGHUP (reload), SIGUSR1 (reopen the access log) and SIGUSR2
/// (start a graceful binary upgrade).
pub struct SignalHandler {
    pub config: PathBuf,
    pub snapshot: SharedSnapshot,
    pub access_log: Option<AccessLog>,
    pub upgrade_sock: String,
}

#[async_trait]
impl BackgroundService for SignalHandler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) else {
            log::error!("cannot listen for SIGHUP/SIGUSR1/SIGUSR2; reload and upgrade by signal are unavailable");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let path = self.config.clone();
                    let shared = self.snapshot.clone();
                    // Compiling reads files and resolves names: keep it off the worker threads.
                    let _ = tokio::task::spawn_blocking(move || reload(&path, &shared)).await;
                }
                _ = usr2.recv() => {
                    let path = self.config.clone();
                    let sock = self.upgrade_sock.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        crate::upgrade::hand_over(&path, &sock, std::time::Duration::from_secs(30))
                    })
                    .await;
                    match done {
                        Ok(Ok(pid)) => log::info!("upgrade: pid {pid} takes over; draining this process"),
                        Ok(Err(e)) => log::error!("upgrade aborted, this process keeps serving: {e}"),
                        Err(e) => log::error!("upgrade aborted: {e}"),
                    }
                }
                _ = usr1.recv() => {
                    if let Some(log) = &self.access_log {
                        log.reopen();
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Reads a pid file.
pub fn read_pid(pid_file: &str) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| format!("cannot read pid file {pid_file}: {e}"))?;
    text.trim()
        .parse::<i32>()
        .map_err(|_| format!("pid file {pid_file} does not hold a pid"))
}

/// True while a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

pub fn send(pid: i32, sig: nix::sys::signal::Signal) -> Result<(), String> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| format!("cannot signal pid {pid}: {e}"))
}

/// Writes this process's pid (after taking over in an upgrade, too).
pub fn write_pid_file(pid_file: &str) {
    if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
        log::error!("cannot write pid file {pid_file}: {e}");
    }
}
