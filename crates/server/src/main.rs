//! `kuryr-server`: the Kuryr libnetwork daemon (Docker network + IPAM plugin `kuryr`).
//!
//! `kuryr-server [--config-file F]... [--config-dir D]... [serve|check-config|version]`, with the
//! oslo-style flags of the Python `kuryr-server` so existing unit files keep working.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kuryr-server",
    about = "Kuryr libnetwork: Docker networking on OpenStack Neutron"
)]
pub struct Cli {
    /// A kuryr.conf file; repeat to layer several (later ones win).
    #[arg(long = "config-file", value_name = "FILE", global = true)]
    pub config_files: Vec<PathBuf>,
    /// A directory of `*.conf` files read after the files, alphabetically.
    #[arg(long = "config-dir", value_name = "DIR", global = true)]
    pub config_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the plugin API (the default).
    Serve,
    /// Check the configuration and that Neutron answers; exit 1 when broken.
    CheckConfig,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Version => {
            commands::version::run();
            Ok(())
        }
        Command::CheckConfig => {
            commands::runtime().and_then(|rt| rt.block_on(commands::check_config::run(&cli)))
        }
        Command::Serve => {
            commands::runtime().and_then(|rt| rt.block_on(commands::serve::run(&cli)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kuryr-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
