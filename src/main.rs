//! The `dibkit` binary: parse the command line, run, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dibkit::cli::Cli::parse();
    dibkit::cli::run(cli)
}
