//! Builds that were killed without a chance to clean up (nodepool's build timeout sends
//! SIGKILL) leave mounts, loop devices and partition devices behind. Every build registers
//! its build directory under [`REGISTRY`] and holds a lock on the entry while it runs; the
//! next build on the machine finds entries whose lock is free (their build is dead) and
//! releases what those builds attached, and only that: mounts below their build directory,
//! loop devices whose backing file is in it (with their partition devices), processes still
//! running in it; then removes the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::cmd;
use super::sys::{lock, mount, proc};

/// Where running builds register (a tmpfs: entries do not outlive a reboot, which also ends
/// every mount and loop device).
pub const REGISTRY: &str = "/run/dibkit/builds";

/// The prefix of every build directory's name.
pub const BUILD_DIR_PREFIX: &str = "dibkit_build.";

/// This build's entry in the registry, locked while the build runs.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
    _lock: lock::Lock,
}

impl Registration {
    /// Registers the build directory `build` (before anything is mounted in it). The entry
    /// is written and locked under a temporary name, then renamed into place, so no other
    /// run ever sees it unlocked.
    ///
    /// # Errors
    /// The registry cannot be written or the entry locked.
    pub fn new(build: &Path) -> Result<Self> {
        Self::new_in(Path::new(REGISTRY), build)
    }

    fn new_in(registry: &Path, build: &Path) -> Result<Self> {
        fs::create_dir_all(registry).with_context(|| format!("creating {}", registry.display()))?;
        let name = build
            .file_name()
            .context("the build directory has a name")?
            .to_string_lossy()
            .into_owned();
        let tmp = registry.join(format!(".{name}.{}", std::process::id()));
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        writeln!(f, "{}\n{}", std::process::id(), build.display())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(f);
        let held = lock::try_lock(&tmp, lock::Mode::Exclusive)?
            .ok_or_else(|| anyhow::anyhow!("locking {}: held by another process", tmp.display()))?;
        let path = registry.join(&name);
        fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(Self { path, _lock: held })
    }

    /// The build released everything: the entry goes (a build whose teardown failed keeps
    /// it, so the next run releases what is left once this process is gone).
    pub fn finish(self) {
        fs::remove_file(&self.path).ok();
    }
}

/// What was released for one dead build.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub build_dir: PathBuf,
    /// The dead build's process id, as it registered.
    pub pid: String,
    pub killed: Vec<i32>,
    pub unmounted: Vec<PathBuf>,
    /// Loop devices detached, each with its partition devices removed.
    pub loops: Vec<(String, Vec<String>)>,
    pub removed: bool,
    /// What could not be released.
    pub problems: Vec<String>,
}

impl std::fmt::Display for Released {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "released what dibkit build {} (no longer running) left in {}:",
            self.pid,
            self.build_dir.display()
        )?;
        let mut parts = Vec::new();
        if !self.killed.is_empty() {
            parts.push(format!("killed processes {:?}", self.killed));
        }
        if !self.unmounted.is_empty() {
            let list: Vec<String> = self
                .unmounted
                .iter()
                .map(|m| m.display().to_string())
                .collect();
            parts.push(format!("unmounted {}", list.join(", ")));
        }
        for (dev, parts_of) in &self.loops {
            if parts_of.is_empty() {
                parts.push(format!("detached {dev}"));
            } else {
                parts.push(format!(
                    "detached {dev} and its partitions {}",
                    parts_of.join(", ")
                ));
            }
        }
        if self.removed {
            parts.push("removed the directory".to_owned());
        }
        parts.extend(self.problems.iter().map(|p| format!("could not: {p}")));
        if parts.is_empty() {
            parts.push("nothing was left".to_owned());
        }
        write!(f, " {}", parts.join("; "))
    }
}

/// Loop devices with their backing files and partition devices (from /sys/block).
fn loop_devices() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.trim_end_matches('\n');
        let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
        let mut parts: Vec<String> = fs::read_dir(e.path())
            .map(|d| {
                d.flatten()
                    .map(|p| p.file_name().to_string_lossy().into_owned())
                    .filter(|p| p.starts_with(&format!("{name}p")))
                    .map(|p| format!("/dev/{p}"))
                    .collect()
            })
            .unwrap_or_default();
        parts.sort();
        out.push((format!("/dev/{name}"), PathBuf::from(backing), parts));
    }
    out.sort();
    out
}

/// Releases what the dead build of `build_dir` left.
fn release(build_dir: &Path, pid: &str) -> Released {
    let mut r = Released {
        build_dir: build_dir.to_path_buf(),
        pid: pid.to_owned(),
        ..Released::default()
    };
    r.killed = proc::kill_processes_in(build_dir);
    if !r.killed.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // The image's filesystems and the chroot's mounts first; the build directory's own tmpfs
    // mounts hold the loop devices' backing files, so they go after the loop devices.
    let holders = [build_dir.to_path_buf(), build_dir.join("image")];
    for m in mount::mounts_below(build_dir) {
        if holders.contains(&m) {
            continue;
        }
        match mount::unmount(&m) {
            Ok(()) => r.unmounted.push(m),
            Err(e) => r.problems.push(format!("{e:#}")),
        }
    }
    for (dev, backing, parts) in loop_devices() {
        if !backing.starts_with(build_dir) {
            continue;
        }
        if !parts.is_empty() {
            cmd::best_effort(
                Command::new("partx").args(["-d", &dev]),
                &mut std::io::sink(),
            );
        }
        match cmd::run(Command::new("losetup").args(["-d", &dev])) {
            Ok(_) => r.loops.push((dev, parts)),
            Err(e) => r.problems.push(format!("{e:#}")),
        }
    }
    for m in mount::mounts_below(build_dir) {
        match mount::unmount(&m) {
            Ok(()) => r.unmounted.push(m),
            Err(e) => r.problems.push(format!("{e:#}")),
        }
    }
    if build_dir.exists() {
        if mount::mounts_below(build_dir).is_empty() {
            match fs::remove_dir_all(build_dir) {
                Ok(()) => r.removed = true,
                Err(e) => r
                    .problems
                    .push(format!("removing {}: {e}", build_dir.display())),
            }
        } else {
            r.problems.push(format!(
                "left {} in place: something is still mounted in it",
                build_dir.display()
            ));
        }
    }
    r
}

/// Finds the builds registered under [`REGISTRY`] that are no longer running and releases
/// what each left. Running builds (their entry is locked) are not touched.
#[must_use]
pub fn release_dead() -> Vec<Released> {
    release_dead_in(Path::new(REGISTRY))
}

fn release_dead_in(registry: &Path) -> Vec<Released> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(registry) else {
        return out;
    };
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(BUILD_DIR_PREFIX)
        })
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names {
        let Ok(Some(held)) = lock::try_lock(&path, lock::Mode::Exclusive) else {
            continue; // A running build (or an entry another run removed a moment ago).
        };
        // Another run may have released it and removed the entry a moment ago.
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        let pid = lines.next().unwrap_or_default().to_owned();
        let dir = PathBuf::from(lines.next().unwrap_or_default());
        let is_build_dir = dir.is_absolute()
            && dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(BUILD_DIR_PREFIX));
        if is_build_dir {
            let r = release(&dir, &pid);
            if r.problems.is_empty() {
                fs::remove_file(&path).ok();
            }
            out.push(r);
        } else {
            fs::remove_file(&path).ok();
        }
        drop(held);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_build_is_left_alone_and_a_dead_one_released() {
        let tmp = tempfile::tempdir().unwrap();
        let registry = tmp.path().join("registry");
        let live = tmp.path().join("dibkit_build.live");
        let dead = tmp.path().join("dibkit_build.dead");
        fs::create_dir_all(live.join("mnt")).unwrap();
        fs::create_dir_all(dead.join("mnt/etc")).unwrap();
        let running = Registration::new_in(&registry, &live).unwrap();
        // A dead build: its entry exists, nobody holds its lock.
        drop(Registration::new_in(&registry, &dead).unwrap());
        let released = release_dead_in(&registry);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].build_dir, dead);
        assert!(released[0].removed);
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(registry.join("dibkit_build.live").exists());
        assert!(!registry.join("dibkit_build.dead").exists());
        assert!(released[0].to_string().contains("removed the directory"));
        running.finish();
        assert!(!registry.join("dibkit_build.live").exists());
    }
}
