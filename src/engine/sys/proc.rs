//! Running a command inside the image root: chroot and chdir in the child, just before exec.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Makes `cmd` run with `root` as its root directory and `/` as its working directory.
pub fn chroot(cmd: &mut Command, root: &Path) {
    let root = root.to_path_buf();
    // SAFETY: the closure runs in the forked child before exec and only calls chroot(2) and
    // chdir(2), which are async-signal-safe; `root` was allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::chroot(&root).map_err(std::io::Error::from)?;
            nix::unistd::chdir("/").map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

/// Makes `cmd`'s process get SIGKILL when the thread that started it ends, so a tool
/// (tar, qemu-img) does not run on, holding a mount busy, after its caller was killed
/// outright (SIGKILL, which no handler sees).
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// Whether this process runs as root.
#[must_use]
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Sends SIGTERM to process group `pgid` (a phase runner started in its own group), so an
/// interrupt reaches every process of the hook. A group already gone is fine.
pub fn terminate_group(pgid: u32) {
    signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
}

/// Kills what is left of a process group that did not stop on SIGTERM.
pub fn kill_group(pgid: u32) {
    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
}

fn signal_group(pgid: u32, signal: nix::sys::signal::Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(raw), signal).ok();
}
