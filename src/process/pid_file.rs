//! The pid file, and signals sent to the pid it names: how `portico reload`
//! and `portico upgrade` reach the running process.

use super::error::ProcessError;

/// Reads a pid file.
pub fn read_pid(pid_file: &str) -> Result<i32, ProcessError> {
    let text = std::fs::read_to_string(pid_file).map_err(|source| ProcessError::PidFileUnreadable {
        path: pid_file.to_string(),
        source,
    })?;
    text.trim().parse::<i32>().map_err(|_| ProcessError::PidFileInvalid {
        path: pid_file.to_string(),
    })
}

/// True while a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Sends `sig` to `pid`.
pub fn send(pid: i32, sig: nix::sys::signal::Signal) -> Result<(), ProcessError> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|source| ProcessError::Signal { pid, source })
}

/// Writes this process's pid (after taking over in an upgrade, too).
pub fn write_pid_file(pid_file: &str) {
    if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
        log::error!("cannot write pid file {pid_file}: {e}");
    }
}
