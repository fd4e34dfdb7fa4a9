//! What can stop a process command: `run` at start-up, `reload` and
//! `upgrade` reaching the running process, and the handover itself. A typed
//! error, because callers tell these apart: an upgrade whose new process died
//! reports its exit status, one that timed out leaves the old process serving.

use std::process::ExitStatus;

/// A process command failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The config file did not load; the message lists every problem.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened, read or written, or the config does
    /// not fit it.
    #[error("{0}")]
    Store(String),
    /// The pid file could not be read.
    #[error("cannot read pid file {path}: {source}")]
    PidFileUnreadable {
        /// The pid file's path.
        path: String,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The pid file holds no pid.
    #[error("pid file {path} does not hold a pid")]
    PidFileInvalid {
        /// The pid file's path.
        path: String,
    },
    /// No process has the pid the pid file names.
    #[error("no running portico with pid {pid} (from {path})")]
    NotRunning {
        /// The pid read.
        pid: i32,
        /// The pid file's path.
        path: String,
    },
    /// A signal could not be sent.
    #[error("cannot signal pid {pid}: {source}")]
    Signal {
        /// The process signalled.
        pid: i32,
        /// Why the signal was refused.
        source: nix::Error,
    },
    /// The replacement process could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary started.
        binary: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The replacement process exited before it took over.
    #[error("the new process ({binary}) exited ({status}) before taking over{}", lines(output))]
    ReplacementExited {
        /// The binary started.
        binary: String,
        /// Its exit status.
        status: ExitStatus,
        /// The first lines of its error, when it reported one.
        output: String,
    },
    /// The running process reported that its replacement did not take over.
    #[error("upgrade failed: {0}")]
    UpgradeFailed(String),
    /// Waiting for the replacement ran out of time.
    #[error("{0}")]
    TimedOut(String),
    /// Start-up failed (a file, a thread, TLS settings).
    #[error("{0}")]
    Startup(String),
}

/// `: ` and the replacement's own error lines, when there are any.
fn lines(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!(":\n{output}")
    }
}
