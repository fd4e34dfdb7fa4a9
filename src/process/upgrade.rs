//! Graceful binary upgrade (Pingora's socket handover), nginx-style: the
//! running process is asked with SIGUSR2 (`portico upgrade` sends it) and
//! starts its own replacement, so under systemd the new process lives in the
//! service's cgroup and reports its MAINPID.
//!
//! 1. the old process starts `BINARY run --upgrade -c FILE`; the new process
//!    listens on the upgrade socket, waiting for the listening sockets;
//! 2. only once the new process is alive and listening there does the old one
//!    raise SIGQUIT on itself (the known trap: telling the old process to quit
//!    while its replacement has died leaves nobody serving);
//! 3. Pingora hands the sockets over; the old process drains for
//!    `grace_period` and exits; the new one writes the pid file.
//!
//! BINARY is what an upgrade is for: the file now at the path this process
//! was started from (a package manager or `make install` replaces that file,
//! so `/proc/self/exe` names a deleted one), or the one `portico upgrade
//! --binary PATH` names. The command talks to the running process through
//! two files beside the pid file: `PID_FILE.upgrade` (the binary asked for)
//! and `PID_FILE.upgrade-failed` (why the replacement did not take over:
//! its exit status and the first lines of its error), so a failed upgrade is
//! reported at once, with its reason, instead of after the whole timeout.

use super::error::ProcessError;
use super::pid_file::{alive, read_pid, send};
use nix::sys::signal::Signal;
use once_cell::sync::OnceCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable through which a replacement reports why it
/// could not start: `main` writes its start-up error to the file it names.
pub const REPORT_ENV: &str = "PORTICO_UPGRADE_REPORT";

/// How many lines of the replacement's error a report keeps.
const REPORT_LINES: usize = 20;

/// The path this process was started from, made absolute at start.
static STARTED_AS: OnceCell<PathBuf> = OnceCell::new();

/// Remembers the path this process was started from (`argv[0]`, made
/// absolute against the working directory or found on `PATH`), for the next
/// upgrade. Called once at start.
pub(crate) fn remember_binary() {
    let Some(arg0) = std::env::args_os().next().map(PathBuf::from) else {
        return;
    };
    let resolved = if arg0.components().count() > 1 {
        std::env::current_dir().map(|d| d.join(&arg0)).ok()
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&arg0))
                .find(|candidate| candidate.is_file())
        })
    };
    if let Some(path) = resolved {
        let _ = STARTED_AS.set(path);
    }
}

/// Where `portico upgrade` asks for a binary.
fn request_file(pid_file: &str) -> PathBuf {
    PathBuf::from(format!("{pid_file}.upgrade"))
}

/// Where the running process says why an upgrade failed (and, with `.new`
/// appended, where its replacement leaves its own error).
fn report_file(pid_file: &str) -> PathBuf {
    PathBuf::from(format!("{pid_file}.upgrade-failed"))
}

/// The binary to start: the one asked for, else the file at the path this
/// process was started from, else the running one.
fn replacement(pid_file: &str) -> PathBuf {
    let asked = std::fs::read_to_string(request_file(pid_file)).ok();
    let _ = std::fs::remove_file(request_file(pid_file));
    match asked.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => STARTED_AS
            .get()
            .cloned()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("portico")),
    }
}

/// In the running process: starts the replacement and, once it is ready to
/// take the sockets, begins the handover. Errors leave this process serving
/// and are written where `portico upgrade` looks for them.
pub(crate) fn hand_over(
    config: &Path,
    upgrade_sock: &str,
    pid_file: &str,
    timeout: Duration,
) -> Result<u32, ProcessError> {
    let report = report_file(pid_file);
    let _ = std::fs::remove_file(&report);
    // The replacement's own words go to a file of their own, so the command
    // only ever reads the whole report.
    let own_words = PathBuf::from(format!("{}.new", report.display()));
    let _ = std::fs::remove_file(&own_words);
    let outcome = start_replacement(config, upgrade_sock, &replacement(pid_file), &own_words, timeout);
    let _ = std::fs::remove_file(&own_words);
    if let Err(e) = &outcome {
        if let Err(write) = std::fs::write(&report, e.to_string()) {
            log::warn!("cannot write {}: {write}", report.display());
        }
    }
    outcome
}

fn start_replacement(
    config: &Path,
    upgrade_sock: &str,
    binary: &Path,
    report: &Path,
    timeout: Duration,
) -> Result<u32, ProcessError> {
    // A stale socket file from an earlier attempt would look like readiness.
    let _ = std::fs::remove_file(upgrade_sock);
    let mut child = Command::new(binary)
        .arg("run")
        .arg("--upgrade")
        .arg("-c")
        .arg(config)
        .env(REPORT_ENV, report)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
    let exited = |status| ProcessError::ReplacementExited {
        binary: binary.display().to_string(),
        status,
        output: std::fs::read_to_string(report).unwrap_or_default(),
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(exited(status));
        }
        if Path::new(upgrade_sock).exists() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProcessError::TimedOut(format!(
                "the new process ({}) did not open {upgrade_sock} in time",
                binary.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Last look right before the point of no return.
    if let Ok(Some(status)) = child.try_wait() {
        return Err(exited(status));
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

/// In a replacement that failed to start: leaves the first lines of its
/// error where the process that started it reads them.
pub fn report_start_failure(error: &str) {
    let Some(path) = std::env::var_os(REPORT_ENV) else {
        return;
    };
    let text: Vec<&str> = error.lines().take(REPORT_LINES).collect();
    let _ = std::fs::write(path, text.join("\n"));
}

/// `portico upgrade`: asks the running instance to upgrade (to `binary`, or
/// to the file at the path it was started from) and waits until a new
/// process has written the pid file. Returns (old pid, new pid); fails as
/// soon as the running instance reports that its replacement did not start.
pub fn request(pid_file: &str, timeout: Duration, binary: Option<&Path>) -> Result<(i32, i32), ProcessError> {
    let old = read_pid(pid_file)?;
    if !alive(old) {
        return Err(ProcessError::NotRunning {
            pid: old,
            path: pid_file.to_string(),
        });
    }
    let report = report_file(pid_file);
    let _ = std::fs::remove_file(&report);
    let asked = match binary {
        Some(b) => std::path::absolute(b)
            .map_err(|source| ProcessError::Spawn {
                binary: b.display().to_string(),
                source,
            })?
            .display()
            .to_string(),
        None => String::new(),
    };
    std::fs::write(request_file(pid_file), asked)
        .map_err(|e| ProcessError::Startup(format!("cannot write {}: {e}", request_file(pid_file).display())))?;
    send(old, Signal::SIGUSR2)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(new) = read_pid(pid_file) {
            if new != old && alive(new) {
                return Ok((old, new));
            }
        }
        if let Ok(reason) = std::fs::read_to_string(&report) {
            if !reason.is_empty() {
                let _ = std::fs::remove_file(&report);
                return Err(ProcessError::UpgradeFailed(format!(
                    "{reason}\npid {old} keeps serving"
                )));
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
