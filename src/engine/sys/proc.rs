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

/// Lowers the calling thread's CPU priority to the least (nice 19), so work it does in
/// the background (copying a cached disk image while root.d runs) takes only the CPU the
/// build's hooks leave. On Linux the nice value is per thread. Best effort: a failure
/// leaves the priority as it was.
pub fn background_thread() {
    // gettid through nix (the raw syscall): glibc's wrapper needs glibc 2.30.
    #[allow(clippy::cast_sign_loss)]
    let tid = nix::unistd::gettid().as_raw() as nix::libc::id_t;
    // SAFETY: setpriority(2) takes plain integers and touches no memory.
    unsafe {
        nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, 19);
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
