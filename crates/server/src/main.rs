//! `kuryr-server`: the Kuryr libnetwork daemon (Docker network + IPAM plugin `kuryr`).
//!
//! The command line is [`kuryr_libnetwork::cli`]; this file runs the chosen subcommand.

mod commands;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kuryr_libnetwork::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.as_ref().unwrap_or(&Command::Serve) {
        Command::Version => {
            commands::version::run();
            Ok(())
        }
        Command::Man => print(&cli::man_page()),
        Command::Completions { shell } => print(&cli::completions(*shell)),
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

/// Writes generated text to stdout; a closed pipe is an error, not a panic.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
