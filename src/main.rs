//! The `portico` command line: run, check, version.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, upgrade } => {
            let opts = portico::server::RunOptions {
                config: &config,
                upgrade,
            };
            if let Err(e) = portico::server::run(opts) {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Command::Check { config } => match portico::server::load_snapshot(&config, None) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Reload { config } => match portico::config::load(&config) {
            Ok(loaded) => {
                if let Err(e) = portico::server::load_snapshot(&config, None) {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
                let pid_file = &loaded.config.server.pid_file;
                let sent = portico::reload::read_pid(pid_file)
                    .and_then(|pid| portico::reload::send(pid, nix::sys::signal::Signal::SIGHUP).map(|_| pid));
                match sent {
                    Ok(pid) => {
                        println!("reload signalled to pid {pid}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Upgrade { config, timeout } => {
            let loaded = match portico::server::load_snapshot(&config, None) {
                Ok((loaded, _)) => loaded,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            match portico::upgrade::request(&loaded.config.server.pid_file, timeout) {
                Ok((old, new)) => {
                    println!("upgraded: pid {new} took over from pid {old}, which drains and exits");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Version => {
            println!("portico {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
