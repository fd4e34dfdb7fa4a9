//! The `portico` command line: run, check, reload, upgrade, import, export, admin, version.

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
    /// Import a whole config file into the store (compiled first; nothing is written if it has problems).
    Import {
        /// The config file to import.
        file: PathBuf,
        /// The store: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PORTICO_STORE")]
        store: String,
        /// Who imports, for the audit log.
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// Print the store's config as YAML, in the config file's shape.
    Export {
        /// The store: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PORTICO_STORE")]
        store: String,
    },
    /// Call the admin API: tokens, subscriptions, credentials, resources, import and export.
    Admin {
        #[command(flatten)]
        conn: portico::process::admin_cli::Connection,
        #[command(subcommand)]
        command: portico::process::admin_cli::AdminCommand,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,sqlx=warn")).init();
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
        Command::Import { file, store, actor } => {
            portico::process::store_io::import(&file, &store, &actor).map_err(|e| e.to_string())
        }
        Command::Export { store } => portico::process::store_io::export(&store).map_err(|e| e.to_string()),
        Command::Admin { conn, command } => {
            portico::process::admin_cli::run(&conn, &command).map_err(|e| e.to_string())
        }
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
