//! The command line: one file per subcommand, each with its `Args` and `run`. This module and
//! its children are the only code that writes to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod boot;
pub mod build;
pub mod debootstrap;
pub mod lint;
pub mod new;
pub mod order;
pub mod packages;
pub mod progress;
pub mod request;
pub mod run_hook;
pub mod upload;

/// Tools for diskimage-builder element authors.
#[derive(Debug, Parser)]
#[command(name = "dibkit", version, about, help_expected = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve elements as dib does and show, phase by phase, which script runs when.
    ///
    /// Exit status: 0 the set resolves and would run; 1 it cannot (missing element, provides
    /// conflict, no operating system, duplicate hooks); 2 usage or I/O error.
    Order(order::Args),
    /// Lint elements: every dib-lint check plus the traps dib never reports.
    ///
    /// Exit status: 0 clean (or warnings only); 1 findings at error level; 2 usage,
    /// configuration or I/O error.
    Lint(lint::Args),
    /// Build the elements in a chroot, as disk-image-create does, and export the root
    /// filesystem (as root).
    ///
    /// Exit status: 0 built; 1 the elements do not resolve or the plan cannot run; 2 usage
    /// or I/O error; 3 a hook failed; 4 the host is not ready (not root, missing tools, too
    /// little space, output exists); 5 the build machinery failed; 130 interrupted. Mounts,
    /// the build directory and partial outputs are removed on every path out.
    Build(build::Args),
    /// Show what package-installs installs and removes in each phase, after every rule and
    /// pkg-map (the engine of the package-installs and pkg-map elements).
    ///
    /// Exit status: 0 resolved; 1 the set or its package-installs files make dib fail;
    /// 2 usage or I/O error.
    Packages(packages::Args),
    /// Boot an image in QEMU and wait for its login prompt on the serial console.
    ///
    /// Exit status: 0 booted; 1 the pattern did not appear in time (the last console lines
    /// are shown); 2 usage error or QEMU/OVMF missing.
    Boot(boot::Args),
    /// Upload a disk image to OpenStack Glance, as openstacksdk does, checked: the format is
    /// read from the content, an image with the same hashes under the name is not sent again,
    /// and a failed upload leaves no image behind.
    ///
    /// Exit status: 0 uploaded (active, hashes checked) or already there; 1 refused (format
    /// contradicts --disk-format, the name is taken, Glance refused the image); 2 usage,
    /// configuration or I/O error; 6 the cloud refused the credentials; 7 the cloud failed
    /// (server error, connection lost, time limit, stored image differs); 130 interrupted.
    Upload(upload::Args),
    /// Create a new element that passes `dibkit lint` from the first commit.
    ///
    /// Exit status: 0 created; 2 bad name, unknown phase, existing path or unreadable
    /// template (nothing is written then).
    New(new::Args),
    /// Internal: run a phase script for the script that calls it (a call declared in an
    /// element's `hook-calls`) and record the run in the build's status.
    #[command(hide = true)]
    RunHook(run_hook::Args),
    /// Internal: the debootstrap element's local index, `.deb` list and cache key.
    #[command(hide = true)]
    Debootstrap(debootstrap::Args),
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn choice(self) -> anstream::ColorChoice {
        match self {
            Color::Auto => anstream::ColorChoice::Auto,
            Color::Always => anstream::ColorChoice::Always,
            Color::Never => anstream::ColorChoice::Never,
        }
    }
}

pub use crate::error::Failure;

/// Runs the parsed command line and returns the process exit status.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Order(args) => order::run(&args),
        Command::Boot(args) => boot::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::New(args) => new::run(&args),
        Command::Upload(args) => upload::run(&args),
        Command::Packages(args) => packages::run(&args),
        Command::RunHook(args) => run_hook::run(&args),
        Command::Debootstrap(args) => debootstrap::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let mut err = anstream::AutoStream::auto(std::io::stderr()).lock();
            let red = anstyle::Style::new()
                .bold()
                .fg_color(Some(anstyle::AnsiColor::Red.into()));
            let cyan = anstyle::Style::new()
                .bold()
                .fg_color(Some(anstyle::AnsiColor::Cyan.into()));
            let _ = writeln!(err, "{red}error{red:#}: {}", failure.message);
            for note in &failure.notes {
                let _ = writeln!(err, "  {cyan}note{cyan:#}: {note}");
            }
            if let Some(hint) = &failure.hint {
                let _ = writeln!(err, "  {cyan}help{cyan:#}: {hint}");
            }
            ExitCode::from(failure.code)
        }
    }
}
