//! Mount system calls: mount, bind, unmount (retrying while busy), and a sweep that removes
//! anything still mounted below the build directory (elements may mount things themselves,
//! as dib's do). The engine's ledger records what it mounted.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Mounts a filesystem of `fstype` (`proc`, `sysfs`, `devpts`) on `target`.
pub fn filesystem(fstype: &str, target: &Path, data: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    mount(
        Some(fstype),
        target,
        Some(fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        data,
    )
    .with_context(|| format!("mounting {fstype} on {}", target.display()))
}

/// Bind-mounts `source` on `target`, read-only if asked. When the mount is made but cannot
/// be made read-only, it is undone before the error returns.
pub fn bind(source: &Path, target: &Path, read_only: bool) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} on {}", source.display(), target.display()))?;
    make_private(target);
    if read_only {
        let remount = mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .with_context(|| format!("making {} read-only", target.display()));
        if let Err(e) = remount {
            return Err(match unmount(target) {
                Ok(()) => e,
                Err(u) => e.context(format!("{u:#}")),
            });
        }
    }
    Ok(())
}

/// Mounts a tmpfs on `dir` (mode 0700; at most `size`, in tmpfs' own syntax such as `2G`,
/// when given), private to this mount namespace. Not in the ledger: it holds everything
/// else, and [`sweep`] of the build directory releases it last.
pub fn tmpfs(dir: &Path, size: Option<&str>) -> Result<()> {
    let data = match size {
        Some(s) => format!("mode=0700,size={s}"),
        None => "mode=0700".to_owned(),
    };
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .with_context(|| format!("mounting a tmpfs on {}", dir.display()))?;
    make_private(dir);
    Ok(())
}

/// Keeps the mount on `target` out of the host's shared propagation group (best effort).
fn make_private(target: &Path) {
    // Best effort: a mount that stays shared still works, it only propagates.
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ok();
}

/// Unmounts `target`, retrying while it is busy, then detaching it lazily.
pub fn unmount(target: &Path) -> Result<()> {
    for _ in 0..20 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) => sleep(Duration::from_millis(100)),
            Err(e) => return Err(e).with_context(|| format!("unmounting {}", target.display())),
        }
    }
    umount2(target, MntFlags::MNT_DETACH)
        .with_context(|| format!("unmounting {} (still busy after 2 s)", target.display()))
}

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. Paths are
/// compared as bytes, so a non-UTF-8 or non-ASCII build directory is matched too.
#[must_use]
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .split(|b| *b == b'\n')
        .filter_map(|l| l.split(|b| *b == b' ').nth(4))
        .map(|m| PathBuf::from(OsString::from_vec(unescape(m))))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits; every other
/// byte (UTF-8 included) is as it is.
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let octal = s
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if s[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            _ => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

/// Unmounts everything below `dir` (deepest first). Returns what could not be unmounted.
#[must_use]
pub fn sweep(dir: &Path) -> Vec<PathBuf> {
    sweep_except(dir, |_| false)
}

/// [`sweep`], leaving the mounts `keep` says to keep.
#[must_use]
pub fn sweep_except(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for m in mounts_below(dir) {
        if keep(&m) {
            continue;
        }
        if unmount(&m).is_err() {
            left.push(m);
        }
    }
    left
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_unescape() {
        assert_eq!(super::unescape(br"/a\040b"), b"/a b");
        assert_eq!(super::unescape(b"/plain"), b"/plain");
        assert_eq!(
            super::unescape("/tmp/bu\u{e9}ld\\134x".as_bytes()),
            "/tmp/bu\u{e9}ld\\x".as_bytes()
        );
    }
}
