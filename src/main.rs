//! The `portico` command line: run, check, reload, upgrade, version.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// mimalloc: a fast, well-kept allocator that holds up under many worker threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "portico", version, about = "An API and AI gateway on Pingora")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway.
    Run {
        /// Config file.
        #[arg(short, long, default_value = "/etc/portico/portico.yaml")]
        config: PathBuf,
        /// Take over the listening sockets of a running Portico (graceful upgrade).
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a config file and exit: 0 when good, 1 with messages when not.
    Check {
        #[arg(short, long, default_value = "/etc/portico/portico.yaml")]
        config: PathBuf,
    },
    /// Check the config, then tell the running instance (pid file) to reload it (SIGHUP).
    Reload {
        #[arg(short, long, default_value = "/etc/portico/portico.yaml")]
        config: PathBuf,
    },
    /// Replace the running instance with this binary without dropping requests.
    Upgrade {
        #[arg(short, long, default_value = "/etc/portico/portico.yaml")]
        config: PathBuf,
        /// How long to wait for the new process to take over.
        #[arg(long, default_value = "60s", value_parser = portico::config::units::parse_duration)]
        timeout: std::time::Duration,
        /// The binary to start; default: the file now at the path the running
        /// instance was started from.
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let outcome = match Cli::parse().command {
        Command::Run { config, upgrade } => portico::process::run::run(portico::process::run::RunOptions {
            config: &config,
            upgrade,
        })
        .map(|()| String::new())
        .map_err(|e| {
            let e = e.to_string();
            // A replacement started by an upgrade tells its parent why.
            portico::process::upgrade::report_start_failure(&e);
            e
        }),
        Command::Check { config } => checked(&config).map(|_| format!("{}: ok", config.display())),
        Command::Reload { config } => reload(&config),
        Command::Upgrade {
            config,
            timeout,
            binary,
        } => upgrade(&config, timeout, binary.as_deref()),
        Command::Version => Ok(format!("portico {}", env!("CARGO_PKG_VERSION"))),
    };
    match outcome {
        Ok(msg) => {
            if !msg.is_empty() {
                println!("{msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Loads and compiles the config: what `check` reports, and what `reload` and
/// `upgrade` verify before touching the running process.
fn checked(config: &Path) -> Result<portico::config::LoadedConfig, String> {
    portico::process::load::load(config, None)
        .map(|compiled| compiled.loaded)
        .map_err(|e| e.to_string())
}

fn reload(config: &Path) -> Result<String, String> {
    let loaded = checked(config)?;
    let pid = portico::process::pid_file::read_pid(loaded.pid_file()).map_err(|e| e.to_string())?;
    portico::process::pid_file::send(pid, nix::sys::signal::Signal::SIGHUP).map_err(|e| e.to_string())?;
    Ok(format!("reload signalled to pid {pid}"))
}

fn upgrade(config: &Path, timeout: std::time::Duration, binary: Option<&Path>) -> Result<String, String> {
    let loaded = checked(config)?;
    let (old, new) =
        portico::process::upgrade::request(loaded.pid_file(), timeout, binary).map_err(|e| e.to_string())?;
    Ok(format!(
        "upgraded: pid {new} took over from pid {old}, which drains and exits"
    ))
}
