//! The command line: one file per subcommand, each with its `Args` and `run`. This module and
//! its children are the only code that writes to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub mod boot;
pub mod build;
pub mod debootstrap;
pub mod dropin;
pub mod extract_image;
pub mod images;
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
    Build(Box<build::Args>),
    /// Show what package-installs installs and removes in each phase, after every rule and
    /// pkg-map (the engine of the package-installs and pkg-map elements).
    ///
    /// Exit status: 0 resolved; 1 the set or its package-installs files make dib fail;
    /// 2 usage or I/O error.
    Packages(packages::Args),
    /// Boot an image in QEMU as a cloud would and wait for its login prompt on the serial
    /// console; optionally with an OpenStack config drive, a grown disk, an SSH login and
    /// commands run there.
    ///
    /// Exit status: 0 booted (and logged in, and every command succeeded); 1 the pattern did
    /// not appear in time (the last console lines are shown), no SSH login worked, or a
    /// command failed; 2 usage error or QEMU/OVMF missing.
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
    /// diskimage-builder 3.43's disk-image-create, as a drop-in for nodepool and Zuul: the
    /// same options, parsed as dib parses them (also when dibkit is run through a symlink
    /// named `disk-image-create`).
    ///
    /// Exit status: as `dibkit build`; 1 for an option dib refuses, as dib.
    #[command(name = "disk-image-create", disable_help_flag = true)]
    DiskImageCreate(DropInArgs),
    /// diskimage-builder's YAML image-file command, as a drop-in (`dibkit build --file`; also
    /// through a symlink named `diskimage-builder`).
    ///
    /// Exit status: as `dibkit build --file`.
    #[command(name = "diskimage-builder", disable_help_flag = true)]
    DiskimageBuilder(DropInArgs),
    /// Internal: run a phase script for the script that calls it (a call declared in an
    /// element's `hook-calls`) and record the run in the build's status.
    #[command(hide = true)]
    RunHook(run_hook::Args),
    /// Internal: the debootstrap element's local index, `.deb` list and cache key.
    #[command(hide = true)]
    Debootstrap(debootstrap::Args),
    /// Internal: extract a qcow2 or raw image into a root tree, or print its os-release
    /// (the local-image element and the image-based OS elements call it).
    ///
    /// Exit status: 0 done; 1 the image is refused (LVM, LUKS, RAID, no root filesystem, no
    /// os-release); 2 usage error or unreadable image; 4 not root; 5 a host tool failed;
    /// 130 interrupted. Nothing stays mounted or attached on any path out.
    #[command(hide = true)]
    ExtractImage(extract_image::Args),
}

/// The drop-ins' arguments, parsed by `dropin.rs` as dib parses them.
#[derive(Debug, clap::Args)]
pub struct DropInArgs {
    /// dib's options and elements (`--help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
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

/// Parses the process's command line.
///
/// A `dibkit order ...` line is first parsed against that subcommand alone: clap builds the
/// arguments of every subcommand before it parses, which costs about as much as a small
/// `order` run's own work. Help, `--version`, any error and every other command go through
/// the full parser, so what users see is unchanged.
#[must_use]
pub fn parse() -> Cli {
    use clap::{Args as _, FromArgMatches as _};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "order") {
        let only_order = clap::Command::new("dibkit")
            .subcommand(order::Args::augment_args(clap::Command::new("order")));
        if let Ok(cli) = only_order
            .try_get_matches_from(&argv)
            .map_err(|_| ())
            .and_then(|m| Cli::from_arg_matches(&m).map_err(|_| ()))
        {
            return cli;
        }
    }
    Cli::parse_from(argv)
}

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
        Command::DiskImageCreate(args) => dropin::disk_image_create(&args.args),
        Command::DiskimageBuilder(args) => dropin::diskimage_builder(&args.args),
        Command::ExtractImage(args) => extract_image::run(&args),
    };
    finish(result)
}

/// Runs dibkit called by the name of a drop-in (`disk-image-create`, `diskimage-builder`:
/// see [`dropin::by_name`]) with `argv` after the program name.
#[must_use]
pub fn run_dropin(name: &str, argv: Vec<std::ffi::OsString>) -> ExitCode {
    let words: Result<Vec<String>, _> = argv
        .into_iter()
        .map(std::ffi::OsString::into_string)
        .collect();
    let result = match words {
        Err(bad) => Err(Failure::usage(
            format!(
                "{name}: argument {} is not valid UTF-8",
                bad.to_string_lossy()
            ),
            None,
        )),
        Ok(w) if name == "diskimage-builder" => dropin::diskimage_builder(&w),
        Ok(w) => dropin::disk_image_create(&w),
    };
    finish(result)
}

/// Maps a command's outcome to the exit status, printing a failure.
fn finish(result: Result<u8, Failure>) -> ExitCode {
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
