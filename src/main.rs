//! The `dibkit` binary: parse the command line, run, map the outcome to an exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Called through a symlink named disk-image-create or diskimage-builder: the drop-in.
    let mut argv = std::env::args_os();
    if let Some(name) = argv.next().as_ref().and_then(dibkit::cli::dropin::by_name) {
        return dibkit::cli::run_dropin(name, argv.collect());
    }
    dibkit::cli::run(dibkit::cli::parse())
}
