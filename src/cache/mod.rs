//! The cache store every dibkit cache is kept in (the debootstrap element's tree tarballs,
//! the build's per-phase trees): a directory of named entries with
//! - atomic entries: an entry is written under a temporary name in `.tmp/` and renamed into
//!   place once complete and synced, so a reader sees a whole entry or none; what a writer
//!   that died left in `.tmp/` is removed by the next [`Store::sweep`];
//! - a lock per entry (`.locks/NAME.lock`, `flock`): a writer holds it exclusively while it
//!   makes the entry, readers hold it shared while they read, so two builds that need the same
//!   entry make it once (the second waits, then reads it) and eviction never removes an entry
//!   in use; the hook scripts take the same locks with `flock(1)`;
//! - a size limit: after each commit the least recently used entries go until the store is
//!   within it (last use is the entry's access time, set on each use; its modification time
//!   stays the time it was made, which the debootstrap cache's maximum age reads).

pub mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::engine::sys::lock::{self, Lock, Mode};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file (a tarball); directories beside the entries are not entries.
    Files,
    /// A directory of files.
    Dirs,
}

/// The temporaries directory, the lock directory.
const TMP: &str = ".tmp";
const LOCKS: &str = ".locks";

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    kind: Kind,
    /// The size limit, in bytes.
    max_bytes: u64,
}

/// A held entry lock, and for which entry.
#[derive(Debug)]
pub struct Held {
    name: String,
    mode: Mode,
    _lock: Lock,
}

impl Held {
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An entry removed to keep the store within its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub name: String,
    pub bytes: u64,
}

/// Whether `name` may name an entry: not hidden, one path component.
fn valid(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && name != ".."
        && !name.contains('\0')
}

/// The bytes under `path` (a file, or a directory's files); symlinks count as themselves.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path).map_or(0, |rd| {
        rd.filter_map(Result::ok).map(|e| size_of(&e.path())).sum()
    })
}

fn remove(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

impl Store {
    /// The store in `dir` (made when absent) with a limit of `max_bytes`.
    ///
    /// # Errors
    /// The directories cannot be made.
    pub fn open(dir: &Path, kind: Kind, max_bytes: u64) -> Result<Self> {
        for d in [dir.to_path_buf(), dir.join(TMP), dir.join(LOCKS)] {
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            kind,
            max_bytes,
        })
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where entry `name` is (whether or not it exists).
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The lock file of entry `name`.
    #[must_use]
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.dir.join(LOCKS).join(format!("{name}.lock"))
    }

    /// Where temporaries are written (`NAME.SUFFIX`, the suffix without a dot).
    #[must_use]
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join(TMP)
    }

    fn check(name: &str) -> Result<()> {
        if valid(name) {
            Ok(())
        } else {
            bail!("`{name}` cannot name a cache entry")
        }
    }

    /// Waits for entry `name`'s lock.
    ///
    /// # Errors
    /// A bad name, or the lock cannot be taken.
    pub fn lock(&self, name: &str, mode: Mode) -> Result<Held> {
        Self::check(name)?;
        Ok(Held {
            name: name.to_owned(),
            mode,
            _lock: lock::lock(&self.lock_path(name), mode)?,
        })
    }

    /// Entry `name`'s lock if nobody holds it now; `None` when someone does.
    ///
    /// # Errors
    /// A bad name, or the lock cannot be taken for another reason.
    pub fn try_lock(&self, name: &str, mode: Mode) -> Result<Option<Held>> {
        Self::check(name)?;
        Ok(lock::try_lock(&self.lock_path(name), mode)?.map(|l| Held {
            name: name.to_owned(),
            mode,
            _lock: l,
        }))
    }

    /// Whether the entry exists (a reader should hold its lock).
    #[must_use]
    pub fn exists(&self, held: &Held) -> bool {
        let Ok(meta) = fs::symlink_metadata(self.path(&held.name)) else {
            return false;
        };
        match self.kind {
            Kind::Files => meta.is_file(),
            Kind::Dirs => meta.is_dir(),
        }
    }

    /// Entry `name`, held shared for reading and marked used; `None` when there is none.
    ///
    /// # Errors
    /// The lock cannot be taken.
    pub fn get(&self, name: &str) -> Result<Option<(PathBuf, Held)>> {
        let held = self.lock(name, Mode::Shared)?;
        if !self.exists(&held) {
            return Ok(None);
        }
        let path = self.path(name);
        mark_used(&path);
        Ok(Some((path, held)))
    }

    /// A fresh temporary for entry `held` (held exclusively): a path for a file, an empty
    /// directory for a directory entry.
    ///
    /// # Errors
    /// The lock is shared, or the directory cannot be made.
    pub fn begin(&self, held: &Held) -> Result<PathBuf> {
        if held.mode != Mode::Exclusive {
            bail!(
                "writing cache entry {} needs its lock exclusively",
                held.name
            );
        }
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self
            .tmp_dir()
            .join(format!("{}.{}-{nanos}", held.name, std::process::id()));
        if self.kind == Kind::Dirs {
            fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        }
        Ok(tmp)
    }

    /// Makes the complete temporary `tmp` entry `held`: synced to disk, then renamed into
    /// place (replacing an older entry of that name), marked used; then the store is brought
    /// within its limit, keeping this entry. Returns what was evicted.
    ///
    /// # Errors
    /// The lock is shared, or the sync or rename fails.
    pub fn commit(&self, held: &Held, tmp: &Path) -> Result<Vec<Evicted>> {
        if held.mode != Mode::Exclusive {
            bail!(
                "writing cache entry {} needs its lock exclusively",
                held.name
            );
        }
        self.install(&held.name, tmp)
    }

    /// [`Store::commit`] for a writer that holds entry `name`'s lock itself, as the
    /// debootstrap hook does with `flock(1)` on the file [`Store::lock_path`] names.
    ///
    /// # Errors
    /// A bad name, or the sync or rename fails.
    pub fn publish(&self, name: &str, tmp: &Path) -> Result<Vec<Evicted>> {
        Self::check(name)?;
        self.install(name, tmp)
    }

    fn install(&self, name: &str, tmp: &Path) -> Result<Vec<Evicted>> {
        sync_tree(tmp)?;
        let path = self.path(name);
        if self.kind == Kind::Dirs && path.exists() {
            // rename(2) does not replace a non-empty directory: the old one goes first
            // (readers hold the lock shared, so none is reading it).
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::rename(tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        if let Ok(d) = fs::File::open(&self.dir) {
            d.sync_all().ok();
        }
        mark_used(&path);
        self.evict(Some(name))
    }

    /// The entries, with their size and last use, least recently used first.
    #[must_use]
    pub fn entries(&self) -> Vec<(String, u64, SystemTime)> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, u64, SystemTime)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let meta = e.metadata().ok()?;
                let kind_ok = match self.kind {
                    Kind::Files => meta.is_file(),
                    Kind::Dirs => meta.is_dir(),
                };
                (valid(&name) && kind_ok).then(|| {
                    let used = meta.accessed().or_else(|_| meta.modified()).ok()?;
                    Some((name, size_of(&e.path()), used))
                })?
            })
            .collect();
        out.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Removes least recently used entries until the store is within its limit; entries
    /// in use (locked) and `keep` stay.
    ///
    /// # Errors
    /// An entry cannot be removed.
    pub fn evict(&self, keep: Option<&str>) -> Result<Vec<Evicted>> {
        let entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        let mut evicted = Vec::new();
        for (name, bytes, _) in entries {
            if total <= self.max_bytes {
                break;
            }
            if Some(name.as_str()) == keep {
                continue;
            }
            let Some(_held) = lock::try_lock(&self.lock_path(&name), Mode::Exclusive)? else {
                continue;
            };
            let path = self.path(&name);
            remove(&path).with_context(|| format!("evicting {}", path.display()))?;
            total = total.saturating_sub(bytes);
            evicted.push(Evicted { name, bytes });
        }
        Ok(evicted)
    }

    /// Removes what writers that died left in the temporaries directory: a temporary whose
    /// entry nobody holds locked has no writer any more. Returns what was removed.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn sweep(&self) -> Result<Vec<PathBuf>> {
        let dir = self.tmp_dir();
        let rd = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        let mut removed = Vec::new();
        for e in rd.filter_map(Result::ok) {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some((name, _suffix)) = file.rsplit_once('.') else {
                continue;
            };
            if !valid(name) {
                continue;
            }
            if lock::try_lock(&self.lock_path(name), Mode::Exclusive)?.is_some() {
                let p = e.path();
                if remove(&p).is_ok() {
                    removed.push(p);
                }
            }
        }
        Ok(removed)
    }
}

/// Marks `path` used now (its access time; its modification time is kept).
pub fn mark_used(path: &Path) {
    if let Ok(f) = fs::File::open(path) {
        f.set_times(fs::FileTimes::new().set_accessed(SystemTime::now()))
            .ok();
    }
}

/// Syncs a file, or a directory's files, to disk.
fn sync_tree(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        // One syncfs for the whole tree rather than a file at a time.
        let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        nix::unistd::syncfs(&f).with_context(|| format!("syncing {}", path.display()))?;
    } else if meta.is_file() {
        fs::File::open(path)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store(dir: &Path, kind: Kind, max: u64) -> Store {
        Store::open(dir, kind, max).unwrap()
    }

    fn write_entry(s: &Store, name: &str, bytes: usize) {
        let held = s.lock(name, Mode::Exclusive).unwrap();
        let tmp = s.begin(&held).unwrap();
        fs::write(&tmp, vec![b'x'; bytes]).unwrap();
        s.commit(&held, &tmp).unwrap();
    }

    /// An entry appears only when committed: the temporary is never its name, and a shared
    /// lock is not enough to write.
    #[test]
    fn an_entry_is_there_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Kind::Files, 1 << 20);
        let held = s.lock("a.tar.zst", Mode::Exclusive).unwrap();
        let tmp = s.begin(&held).unwrap();
        fs::write(&tmp, "half").unwrap();
        assert!(!s.exists(&held));
        assert!(tmp.starts_with(s.tmp_dir()));
        s.commit(&held, &tmp).unwrap();
        assert!(s.exists(&held));
        assert!(!tmp.exists());
        drop(held);
        let (path, shared) = s.get("a.tar.zst").unwrap().unwrap();
        assert_eq!(fs::read_to_string(path).unwrap(), "half");
        assert!(s.begin(&shared).is_err(), "a reader cannot write");
        assert!(s.get("b").unwrap().is_none());
        assert!(s.lock("../x", Mode::Shared).is_err());
        assert!(s.lock(".tmp", Mode::Shared).is_err());
    }

    /// Over the limit, the least recently used entries go; one in use stays.
    #[test]
    fn eviction_takes_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Kind::Files, 2500);
        for name in ["a", "b", "c"] {
            write_entry(&s, name, 1000);
            std::thread::sleep(Duration::from_millis(20));
        }
        // Three entries of 1000 bytes in 2500: the first, a, went when c came.
        let names: Vec<String> = s.entries().into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["b", "c"]);
        // b used now: c is the least recently used.
        drop(s.get("b").unwrap().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        // c in use: it stays, and b (the next) goes in its place.
        let reading_c = s.get("c").unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        write_entry(&s, "d", 1000);
        let names: Vec<String> = s.entries().into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["c", "d"], "c was in use");
        drop(reading_c);
        // A directory beside file entries is not an entry.
        fs::create_dir(dir.path().join("debs-debian")).unwrap();
        fs::write(dir.path().join("debs-debian/x.deb"), vec![0; 5000]).unwrap();
        assert!(s.evict(None).unwrap().is_empty());
        assert!(dir.path().join("debs-debian/x.deb").exists());
    }

    /// An entry bigger than the limit is kept until the next one comes.
    #[test]
    fn the_entry_just_written_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Kind::Dirs, 10);
        let held = s.lock("tree", Mode::Exclusive).unwrap();
        let tmp = s.begin(&held).unwrap();
        fs::write(tmp.join("f"), vec![0; 100]).unwrap();
        assert!(s.commit(&held, &tmp).unwrap().is_empty());
        drop(held);
        let held = s.lock("tree2", Mode::Exclusive).unwrap();
        let tmp = s.begin(&held).unwrap();
        fs::write(tmp.join("f"), vec![0; 100]).unwrap();
        let evicted = s.commit(&held, &tmp).unwrap();
        assert_eq!(
            evicted,
            [Evicted {
                name: "tree".into(),
                bytes: 100
            }]
        );
        // A directory entry is replaced whole.
        let tmp = s.begin(&held).unwrap();
        fs::write(tmp.join("g"), "new").unwrap();
        s.commit(&held, &tmp).unwrap();
        assert!(!s.path("tree2").join("f").exists());
        assert!(s.path("tree2").join("g").exists());
    }

    /// A temporary whose writer is gone (its lock free) is swept; a live writer's is not.
    #[test]
    fn sweep_removes_only_dead_writers_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Kind::Files, 1 << 20);
        let live = s.lock("live.tar.zst", Mode::Exclusive).unwrap();
        let live_tmp = s.begin(&live).unwrap();
        fs::write(&live_tmp, "writing").unwrap();
        let dead_tmp = s.tmp_dir().join("dead.tar.zst.AbC123");
        fs::write(&dead_tmp, "left by a killed writer").unwrap();
        let removed = s.sweep().unwrap();
        assert_eq!(removed, [dead_tmp]);
        assert!(live_tmp.exists());
        assert!(!s.path("dead.tar.zst").exists());
    }

    /// Two writers of one entry: the second waits for the first, then finds the entry made
    /// and does not make it again.
    #[test]
    fn concurrent_writers_make_an_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), Kind::Files, 1 << 20);
        let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                let made = made.clone();
                std::thread::spawn(move || {
                    let held = s.lock("base", Mode::Exclusive).unwrap();
                    if !s.exists(&held) {
                        made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let tmp = s.begin(&held).unwrap();
                        std::thread::sleep(Duration::from_millis(50));
                        fs::write(&tmp, "tree").unwrap();
                        s.commit(&held, &tmp).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
