//! Advisory locks (flock) and the processes still running in a directory: what tells a
//! running build from a dead one, and stops what a dead one left running.

use std::fs::File;
use std::path::Path;

/// An exclusive flock on an open file, held until it is dropped (or the process dies).
pub type Held = nix::fcntl::Flock<File>;

/// Takes an exclusive lock on `file` without waiting; the file back when another process
/// holds it.
pub fn try_exclusive(file: File) -> Result<Held, File> {
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(f, _)| f)
}

/// Kills (SIGKILL) every process whose root directory or working directory is at or below
/// `dir` (the hooks a killed build left running in its chroot), and returns their ids.
#[must_use]
pub fn kill_processes_in(dir: &Path) -> Vec<i32> {
    let mut killed = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return killed;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == me) {
            continue;
        }
        let inside = ["root", "cwd"]
            .iter()
            .any(|l| std::fs::read_link(e.path().join(l)).is_ok_and(|t| t.starts_with(dir)));
        if inside
            && nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        {
            killed.push(pid);
        }
    }
    killed
}
