//! The one ledger of what a build attached to the host: mounts and loop devices, newest
//! last, each owned by the chroot (proc, sys, dev, the hooks bind) or by the disk image (its
//! filesystems and loop device). Releasing walks it backwards, so a mount never outlives
//! what it sits on; dropping the ledger releases whatever is left (best effort).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::cmd;
use super::sys::mount;

/// Who made an entry, and so when it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The chroot's mounts: released when the tree moves into the image and after cleanup.d.
    Chroot,
    /// The disk image's filesystems and devices: released before the image is converted.
    Image,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Mount(PathBuf),
    /// A loop device; `partitions` when partx added partition devices for it.
    Loop {
        dev: String,
        partitions: bool,
    },
}

/// Mounts and loop devices of this build.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Vec<(Owner, Entry)>,
}

impl Ledger {
    /// Mounts a filesystem of `fstype` (`proc`, `sysfs`) on `target`.
    pub fn mount_fs(&mut self, owner: Owner, fstype: &str, target: &Path) -> Result<()> {
        mount::filesystem(fstype, target, None)?;
        self.mounted(owner, target);
        Ok(())
    }

    /// Bind-mounts `source` on `target`, read-only if asked.
    pub fn bind(&mut self, owner: Owner, source: &Path, target: &Path, ro: bool) -> Result<()> {
        mount::bind(source, target, ro)?;
        self.mounted(owner, target);
        Ok(())
    }

    /// Unmounts one of the ledger's mounts before its owner's release (the hooks bind between
    /// phases).
    pub fn unmount(&mut self, target: &Path) -> Result<()> {
        mount::unmount(target)?;
        self.entries
            .retain(|(_, e)| !matches!(e, Entry::Mount(m) if m == target));
        Ok(())
    }

    /// Records a mount made by a host tool (`mount -t ext4 ...`).
    pub fn mounted(&mut self, owner: Owner, target: &Path) {
        self.entries
            .push((owner, Entry::Mount(target.to_path_buf())));
    }

    /// Records an attached loop device.
    pub fn attached(&mut self, owner: Owner, dev: &str) {
        self.entries.push((
            owner,
            Entry::Loop {
                dev: dev.to_owned(),
                partitions: false,
            },
        ));
    }

    /// Records that partx added partition devices for loop device `dev`.
    pub fn partitioned(&mut self, dev: &str) {
        for (_, e) in &mut self.entries {
            if let Entry::Loop { dev: d, partitions } = e {
                if d == dev {
                    *partitions = true;
                }
            }
        }
    }

    /// Whether `path` is a mount `owner` made.
    #[must_use]
    pub fn owns_mount(&self, owner: Owner, path: &Path) -> bool {
        self.entries
            .iter()
            .any(|(o, e)| *o == owner && matches!(e, Entry::Mount(m) if m == path))
    }

    /// The mount points `owner` made, oldest first.
    #[must_use]
    pub fn mounts(&self, owner: Owner) -> Vec<PathBuf> {
        self.entries
            .iter()
            .filter_map(|(o, e)| match e {
                Entry::Mount(m) if *o == owner => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// Releases `owner`'s entries, newest first: unmounts, removes partition devices (best
    /// effort, logged), detaches loop devices. Keeps going after a failure and returns the
    /// first.
    pub fn release(&mut self, owner: Owner, log: &mut dyn Write) -> Result<()> {
        self.release_where(|o| o == owner, log)
    }

    /// Releases everything, newest first.
    pub fn release_all(&mut self, log: &mut dyn Write) -> Result<()> {
        self.release_where(|_| true, log)
    }

    fn release_where(&mut self, which: impl Fn(Owner) -> bool, log: &mut dyn Write) -> Result<()> {
        let mut first: Option<anyhow::Error> = None;
        let mut kept = Vec::new();
        while let Some((owner, entry)) = self.entries.pop() {
            if !which(owner) {
                kept.push((owner, entry));
                continue;
            }
            let done = match &entry {
                Entry::Mount(target) => mount::unmount(target),
                Entry::Loop { dev, partitions } => {
                    if *partitions {
                        cmd::best_effort(Command::new("partx").args(["-d", dev]), log);
                    }
                    cmd::run(Command::new("losetup").args(["-d", dev])).map(|_| ())
                }
            };
            if let Err(e) = done {
                first.get_or_insert(e);
            }
        }
        kept.reverse();
        self.entries = kept;
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // The build's own teardown released everything on the normal paths; this is for a
        // panic. Nowhere to report to.
        self.release_all(&mut std::io::sink()).ok();
    }
}
