//! Graceful binary upgrade (Pingora's socket handover), nginx-style: the
//! running process is asked with SIGUSR2 (`portico upgrade` sends it) and
//! starts its own replacement, so under systemd the new process lives in the
//! service's cgroup and reports its MAINPID.
//!
//! 1. the old process starts `portico run --upgrade -c FILE`; the new process
//!    listens on the upgrade socket, waiting for the listening sockets;
//! 2. only once the new process is alive and listening there does the old one
//!    raise SIGQUIT on itself (the known trap: telling the old process to quit
//!    while its replacement has died leaves nobody serving);
//! 3. Pingora hands the sockets over; the old process drains for
//!    `grace_period` and exits; the new one writes the pid file.

use super::error::ProcessError;
use super::pid_file::{alive, read_pid, send};
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// In the running process: starts the replacement and, once it is ready to
/// take the sockets, begins the handover. Errors leave this process serving.
pub fn hand_over(config: &Path, upgrade_sock: &str, timeout: Duration) -> Result<u32, ProcessError> {
    let exe = std::env::current_exe().map_err(|source| ProcessError::Spawn {
        binary: "the running binary".into(),
        source,
    })?;
    // A stale socket file from an earlier attempt would look like readiness.
    let _ = std::fs::remove_file(upgrade_sock);
    let mut child = Command::new(&exe)
        .arg("run")
        .arg("--upgrade")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            binary: exe.display().to_string(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ProcessError::ReplacementExited { status });
        }
        if Path::new(upgrade_sock).exists() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProcessError::TimedOut(format!(
                "the new process did not open {upgrade_sock} in time"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Last look right before the point of no return.
    if let Ok(Some(status)) = child.try_wait() {
        return Err(ProcessError::ReplacementExited { status });
    }
    let pid = child.id();
    // Reap the child if this process outlives it; it is re-parented when we exit.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    crate::serve::drain::start_draining();
    if let Err(e) = send(std::process::id() as i32, Signal::SIGQUIT) {
        crate::serve::drain::stop_draining();
        return Err(e);
    }
    Ok(pid)
}

/// `portico upgrade`: asks the running instance to upgrade and waits until a
/// new process has written the pid file. Returns (old pid, new pid).
pub fn request(pid_file: &str, timeout: Duration) -> Result<(i32, i32), ProcessError> {
    let old = read_pid(pid_file)?;
    if !alive(old) {
        return Err(ProcessError::NotRunning {
            pid: old,
            path: pid_file.to_string(),
        });
    }
    send(old, Signal::SIGUSR2)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(new) = read_pid(pid_file) {
            if new != old && alive(new) {
                return Ok((old, new));
            }
        }
        if Instant::now() > deadline {
            return Err(ProcessError::TimedOut(format!(
                "no new process took over within {timeout:?}; see the log of pid {old}, which keeps serving"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
