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
        Command::Version => {
            println!("portico {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
