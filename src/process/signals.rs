//! The signals a running Portico answers: SIGHUP reloads the config
//! ([`super::reload`]), SIGUSR1 reopens the access log, SIGUSR2 starts a
//! graceful binary upgrade ([`super::upgrade`]).

use crate::serve::listeners::ListenerSpec;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::access_log::AccessLog;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;

/// Listens for SIGHUP (reload), SIGUSR1 (reopen the access log) and SIGUSR2
/// (start a graceful binary upgrade).
pub(crate) struct SignalHandler {
    /// The config file a reload re-reads.
    pub config: PathBuf,
    /// The running config.
    pub snapshot: SharedSnapshot,
    /// The listeners this process serves, which a reload cannot change.
    pub listeners: Vec<ListenerSpec>,
    /// In store mode, the store revision the running config is from.
    pub applied: std::sync::Arc<super::reload::StoreRevision>,
    /// The access log to reopen.
    pub access_log: Option<AccessLog>,
    /// Where a new process waits for the listening sockets.
    pub upgrade_sock: String,
    /// The pid file, beside which `portico upgrade` leaves its request.
    pub pid_file: String,
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
                    let running = self.listeners.clone();
                    let applied = self.applied.clone();
                    // Compiling reads files and resolves names: keep it off the worker threads.
                    let outcome = tokio::task::spawn_blocking(move || {
                        let outcome = super::reload::reload(&path, &shared, &running, &applied, super::reload::By::Signal);
                        (path, outcome)
                    })
                    .await;
                    match outcome {
                        Ok((path, Ok(applied))) => {
                            if applied.listeners_changed {
                                log::warn!(
                                    "reload: listener changes in {} need `portico upgrade`; the running listeners stay as they are",
                                    path.display()
                                );
                            }
                            if applied.superseded {
                                log::info!("reload: {} compiled; a newer store revision already serves", path.display());
                            } else {
                                log::info!("reload: applied {}", path.display());
                            }
                        }
                        Ok((_, Err(e))) => {
                            for issue in &e.issues {
                                log::error!("reload rejected, old config keeps serving: {issue}");
                            }
                        }
                        Err(e) => log::error!("reload aborted: {e}"),
                    }
                }
                _ = usr2.recv() => {
                    let path = self.config.clone();
                    let sock = self.upgrade_sock.clone();
                    let pid_file = self.pid_file.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        super::upgrade::hand_over(&path, &sock, &pid_file, std::time::Duration::from_secs(30))
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
