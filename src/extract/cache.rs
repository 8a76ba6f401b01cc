//! The extracted-tree cache under `$DIB_IMAGE_CACHE/extract-image`: one directory per
//! image, named by the SHA-256 of the image's bytes, holding the tree's tarball, the
//! image's os-release and what was mounted. An entry is made in a work directory next to
//! it and renamed into place whole, so a reader never sees one half-written; a work
//! directory a killed extraction left (with its mounts and loop device) is removed by the
//! next one.
//!
//! Hashing a large image on every phase would cost seconds each time, so the hash of a file
//! is remembered by its device, inode, size, modification and change times (`by-file/`):
//! any write to the file changes its change time, which nothing can set back.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use std::process::Command;

use crate::engine::cmd::{self, Interrupted};
use crate::engine::sys;

/// The tarball's name in an entry.
pub const TREE: &str = "tree.tar.zst";
/// The image's os-release in an entry (absent when the image has none).
pub const OS_RELEASE: &str = "os-release";
/// What was mounted where, one line each, in an entry.
pub const LAYOUT: &str = "layout";

/// Work directories are named `.work-<pid>-<random>`.
const WORK_PREFIX: &str = ".work-";

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    /// The cache inside `image_cache` (`DIB_IMAGE_CACHE`).
    #[must_use]
    pub fn new(image_cache: &Path) -> Self {
        Self {
            dir: image_cache.join("extract-image"),
        }
    }

    /// The entry of the image whose hash is `hash`.
    #[must_use]
    pub fn entry(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// The entry, if it is complete (it is renamed into place only when it is).
    #[must_use]
    pub fn lookup(&self, hash: &str) -> Option<PathBuf> {
        let entry = self.entry(hash);
        entry.join(TREE).is_file().then_some(entry)
    }

    /// A fresh work directory in the cache (same filesystem as the entries, so the finished
    /// entry is renamed, not copied). Removes the work directories of extractions that
    /// are gone and left nothing mounted.
    pub fn work_dir(&self) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        self.remove_abandoned();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{WORK_PREFIX}{}-", std::process::id()))
            .tempdir_in(&self.dir)
            .with_context(|| format!("creating a work directory in {}", self.dir.display()))?
            .keep();
        // Mount points are compared with /proc/self/mountinfo, which has canonical paths.
        Ok(fs::canonicalize(&dir).unwrap_or(dir))
    }

    fn remove_abandoned(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(WORK_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            if alive {
                continue;
            }
            // Killed outright (SIGKILL): its mounts and the loop device of its converted
            // image are still there. Best effort throughout: another extraction may be
            // cleaning up the same directory.
            let path = fs::canonicalize(e.path()).unwrap_or_else(|_| e.path());
            let left = sys::mount::sweep(&path);
            detach_recorded_loop(&path);
            if left.is_empty() && sys::mount::mounts_below(&path).is_empty() {
                fs::remove_dir_all(&path).ok();
            }
        }
    }

    /// Renames the finished `staged` entry into place as `hash`. When another extraction
    /// of the same image got there first, its entry is kept and `staged` removed.
    pub fn publish(&self, staged: &Path, hash: &str) -> Result<PathBuf> {
        let entry = self.entry(hash);
        match fs::rename(staged, &entry) {
            Ok(()) => Ok(entry),
            Err(_) if self.lookup(hash).is_some() => {
                fs::remove_dir_all(staged).ok();
                Ok(entry)
            }
            Err(e) => Err(e)
                .with_context(|| format!("renaming {} to {}", staged.display(), entry.display())),
        }
    }

    /// The hash remembered for `image` in this state, if any.
    #[must_use]
    pub fn remembered_hash(&self, image: &Path, meta: &fs::Metadata) -> Option<String> {
        let text = fs::read_to_string(self.memo(image, meta)).ok()?;
        let hash = text.trim();
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_owned())
    }

    /// Remembers `hash` for `image` in this state (best effort: it only saves time).
    pub fn remember_hash(&self, image: &Path, meta: &fs::Metadata, hash: &str) {
        let memo = self.memo(image, meta);
        let Some(dir) = memo.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        let partial = dir.join(format!(
            ".{}.{}",
            memo.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        if fs::write(&partial, format!("{hash}\n")).is_ok() && fs::rename(&partial, &memo).is_err()
        {
            fs::remove_file(&partial).ok();
        }
    }

    fn memo(&self, image: &Path, meta: &fs::Metadata) -> PathBuf {
        let key = format!(
            "{}\0{}:{}:{}:{}.{}:{}.{}",
            image.display(),
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        self.dir
            .join("by-file")
            .join(hex(&Sha256::digest(key.as_bytes())))
    }
}

/// Where a work directory records its loop device: the device and its backing file, a line
/// each.
pub const LOOP_RECORD: &str = "loop";

/// Detaches the loop device the work directory `dir` recorded, with its partition devices,
/// if it is still attached to the same file (best effort).
fn detach_recorded_loop(dir: &Path) {
    let Ok(record) = fs::read_to_string(dir.join(LOOP_RECORD)) else {
        return;
    };
    let mut lines = record.lines();
    let (Some(dev), Some(file)) = (lines.next(), lines.next()) else {
        return;
    };
    let Some(name) = dev.strip_prefix("/dev/") else {
        return;
    };
    let backing =
        fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).unwrap_or_default();
    if backing.trim_end_matches('\n') == file {
        cmd::best_effort(
            Command::new("partx").args(["-d", dev]),
            &mut std::io::sink(),
        );
        cmd::best_effort(
            Command::new("losetup").args(["-d", dev]),
            &mut std::io::sink(),
        );
    }
}

/// The SHA-256 of `path`'s bytes, in hex. Checks `stop` between reads.
///
/// # Errors
/// The file cannot be read, or `stop` was raised ([`Interrupted`]).
pub fn hash_file(path: &Path, stop: &AtomicBool) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The key of an overlay whose own bytes hash to `own` on a backing image keyed `below`.
#[must_use]
pub fn combine(own: &str, below: &str) -> String {
    hex(&Sha256::digest(format!("{own} on {below}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_content_s_and_is_remembered_per_file_state() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("disk.raw");
        fs::write(&image, b"abc").unwrap();
        let stop = AtomicBool::new(false);
        let hash = hash_file(&image, &stop).unwrap();
        assert_eq!(
            hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let cache = Cache::new(&tmp.path().join("cache"));
        let meta = fs::metadata(&image).unwrap();
        assert_eq!(cache.remembered_hash(&image, &meta), None);
        cache.remember_hash(&image, &meta, &hash);
        assert_eq!(cache.remembered_hash(&image, &meta), Some(hash.clone()));
        // Any write changes the file's state: the memo no longer applies.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&image, b"abd").unwrap();
        let meta = fs::metadata(&image).unwrap();
        assert_eq!(cache.remembered_hash(&image, &meta), None);
        stop.store(true, Ordering::SeqCst);
        assert!(hash_file(&image, &stop).unwrap_err().is::<Interrupted>());
    }

    #[test]
    fn an_entry_is_seen_only_once_published_and_the_first_one_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let hash = "0".repeat(64);
        assert_eq!(cache.lookup(&hash), None);
        let first = cache.work_dir().unwrap();
        let second = cache.work_dir().unwrap();
        for (dir, text) in [(&first, "first"), (&second, "second")] {
            fs::create_dir(dir.join("entry")).unwrap();
            fs::write(dir.join("entry").join(TREE), text).unwrap();
        }
        // A half-made entry (no tarball yet) is not an entry.
        fs::create_dir(cache.entry(&hash)).unwrap();
        assert_eq!(cache.lookup(&hash), None);
        fs::remove_dir(cache.entry(&hash)).unwrap();
        let entry = cache.publish(&first.join("entry"), &hash).unwrap();
        assert_eq!(cache.lookup(&hash), Some(entry.clone()));
        let again = cache.publish(&second.join("entry"), &hash).unwrap();
        assert_eq!(again, entry);
        assert_eq!(fs::read_to_string(entry.join(TREE)).unwrap(), "first");
        assert!(!second.join("entry").exists());
    }

    #[test]
    fn work_directories_of_dead_extractions_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        fs::create_dir_all(&cache.dir).unwrap();
        // No process has pid 2^22 + 1 (above the kernel's limit).
        let dead = cache.dir.join(".work-4194305-abc");
        fs::create_dir(&dead).unwrap();
        let ours = cache.work_dir().unwrap();
        assert!(!dead.exists());
        // Our own (alive) one stays when the next is made.
        cache.work_dir().unwrap();
        assert!(ours.exists());
    }
}
