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

/// C's `pow`, for the one caller in the binary: indicatif's rate estimate. Defined here (musl's
/// algorithm, from the `libm` crate), the linker needs nothing from libm.so.6 and drops it,
/// so the dynamic loader does not open and relocate it at every start (about 0.08 ms, some 3%
/// of a `dibkit order`).
#[allow(unsafe_code)] // `no_mangle` is an unsafe attribute: this is the C symbol `pow`.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
