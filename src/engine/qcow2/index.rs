//! The cluster index: what a compressed qcow2 write leaves for the next one. For each data
//! cluster it wrote, the SHA-256 of the cluster's raw 64 KiB and how it was stored (its
//! compressed bytes, kept in the index file itself, or "as it is"); the next write of an image
//! copies those bytes for every cluster whose digest it finds instead of compressing it again.
//! Compression is deterministic (the same bytes, level and window give the same output), so
//! an image written with reuse is byte for byte the one written without.
//!
//! The index lives in the cache store (`$DIB_IMAGE_CACHE/dibkit-clusters`, [`Store`]): one
//! entry per output path, in two slots (`LINEAGE-a`, `LINEAGE-b`) so a write reads the previous
//! build's slot (held shared) while it makes the other (held exclusively, written under a
//! temporary name, published by [`Store::commit`]); the slot read is then removed, so one
//! entry per image stays, and only for the [`MAX_ENTRIES`] most recently used images. An output path with no entry yet reads the most recently used entry
//! of any image (a renamed output, a variant of an image): a digest either matches or not,
//! so any index is safe to read.
//!
//! File layout (little-endian): the compressed clusters, packed; the table (per cluster the
//! digest, the offset and the length, 0 for a cluster stored as it is); a footer (the table's
//! offset, its record count, the format and the writer's parameters, a magic). An index of
//! another format or other parameters is not read.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::cache::{Held, Kind, Store, tree};
use crate::engine::sys::lock::{self, Mode};

/// A cluster's SHA-256.
pub type Digest = [u8; 32];

const MAGIC: &[u8; 8] = b"dibkitCI";
const FORMAT: u32 = 1;
/// digest, offset (u64), length (u32).
const RECORD: usize = 32 + 8 + 4;
/// table offset (u64), record count (u64), format and the three parameters (u32), magic.
const FOOTER: usize = 8 + 8 + 4 * 4 + 8;

/// The store's directory below the image cache.
pub const DIR: &str = "dibkit-clusters";

/// The indexes kept (one per output path), most recently used first; the size limit applies
/// too.
pub const MAX_ENTRIES: usize = 4;

/// The digest of one raw cluster.
#[must_use]
pub fn digest(cluster: &[u8]) -> Digest {
    Sha256::digest(cluster).into()
}

/// How a previous write stored a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// Compressed, `len` bytes at `offset` in the index file.
    Compressed { offset: u64, len: u32 },
    /// As it is (compression did not shrink it).
    Plain,
}

/// A previous write's index, open for reading.
#[derive(Debug)]
pub struct Index {
    file: File,
    map: HashMap<Digest, Loc>,
}

impl Index {
    /// Reads the index at `path`, made with `params` (cluster bits, zlib level, window bits).
    ///
    /// # Errors
    /// The file cannot be read, or is not an index of this format and these parameters.
    pub fn open(path: &Path, params: [u32; 3]) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let bad = || format!("{} is not a cluster index dibkit can use", path.display());
        let size = file.metadata()?.len();
        if size < FOOTER as u64 {
            bail!(bad());
        }
        let mut footer = [0_u8; FOOTER];
        file.read_exact_at(&mut footer, size - FOOTER as u64)?;
        let word =
            |i: usize| u32::from_le_bytes(footer[16 + 4 * i..20 + 4 * i].try_into().unwrap());
        let table_offset = u64::from_le_bytes(footer[..8].try_into().unwrap());
        let count = u64::from_le_bytes(footer[8..16].try_into().unwrap());
        if &footer[FOOTER - 8..] != MAGIC
            || word(0) != FORMAT
            || [word(1), word(2), word(3)] != params
            || count
                .checked_mul(RECORD as u64)
                .and_then(|t| t.checked_add(table_offset))
                != Some(size - FOOTER as u64)
        {
            bail!(bad());
        }
        let mut table = vec![0_u8; usize::try_from(count)? * RECORD];
        file.read_exact_at(&mut table, table_offset)?;
        let mut map = HashMap::with_capacity(table.len() / RECORD);
        for r in table.chunks_exact(RECORD) {
            let digest: Digest = r[..32].try_into().unwrap();
            let offset = u64::from_le_bytes(r[32..40].try_into().unwrap());
            let len = u32::from_le_bytes(r[40..].try_into().unwrap());
            let loc = if len == 0 {
                Loc::Plain
            } else {
                // A compressed cluster is smaller than a cluster and lies before the table.
                if u64::from(len) >= 1 << params[0] || offset + u64::from(len) > table_offset {
                    bail!(bad());
                }
                Loc::Compressed { offset, len }
            };
            map.insert(digest, loc);
        }
        Ok(Self { file, map })
    }

    /// How the cluster with `digest` was stored, if it was.
    #[must_use]
    pub fn find(&self, digest: &Digest) -> Option<Loc> {
        self.map.get(digest).copied()
    }

    /// The compressed bytes at `offset`.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>> {
        let mut bytes = vec![0_u8; len as usize];
        self.file
            .read_exact_at(&mut bytes, offset)
            .context("reading the cluster index")?;
        Ok(bytes)
    }

    /// The clusters it knows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An index being written, cluster by cluster, in the order the image stores them.
pub struct Recorder {
    w: BufWriter<File>,
    path: PathBuf,
    pos: u64,
    seen: HashSet<Digest>,
    table: Vec<u8>,
}

impl Recorder {
    /// A new index file at `path`.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            w: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            pos: 0,
            seen: HashSet::new(),
            table: Vec::new(),
        })
    }

    fn record(&mut self, digest: Digest, offset: u64, len: u32) {
        self.table.extend(digest);
        self.table.extend(offset.to_le_bytes());
        self.table.extend(len.to_le_bytes());
    }

    /// A cluster stored compressed as `bytes` (a digest already recorded is not again).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn compressed(&mut self, digest: Digest, bytes: &[u8]) -> Result<()> {
        if !self.seen.insert(digest) {
            return Ok(());
        }
        self.w
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.record(digest, self.pos, u32::try_from(bytes.len())?);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// A cluster stored as it is.
    pub fn plain(&mut self, digest: Digest) {
        if self.seen.insert(digest) {
            self.record(digest, 0, 0);
        }
    }

    /// Writes the table and the footer.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn finish(mut self, params: [u32; 3]) -> Result<()> {
        let count = (self.table.len() / RECORD) as u64;
        let mut tail = std::mem::take(&mut self.table);
        tail.extend(self.pos.to_le_bytes());
        tail.extend(count.to_le_bytes());
        for w in [FORMAT, params[0], params[1], params[2]] {
            tail.extend(w.to_le_bytes());
        }
        tail.extend(MAGIC);
        self.w
            .write_all(&tail)
            .and_then(|()| self.w.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Where the cluster indexes are kept, and how much they may take.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's directory (`$DIB_IMAGE_CACHE/dibkit-clusters`).
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// One write's use of the store: the previous index it reads (its lock held shared) and the
/// slot it records into (held exclusively).
#[derive(Debug)]
pub struct Session {
    store: Store,
    previous: Option<(Index, Held)>,
    /// This output's older slot, removed once the new one is in place.
    stale: Option<String>,
    record: Option<(Held, PathBuf)>,
    /// What happened, for the build log.
    pub notes: Vec<String>,
}

impl Session {
    /// Opens the store for a write to `dest`: sweeps what killed writers left, opens the
    /// previous index and begins the new one. A previous index that cannot be read is
    /// skipped (and said so in the notes).
    ///
    /// # Errors
    /// The store cannot be opened or swept, or the new entry cannot be begun.
    pub fn open(config: &Config, dest: &Path, params: [u32; 3]) -> Result<Self> {
        let store = Store::open(&config.dir, Kind::Files, config.max_bytes)?;
        let mut notes: Vec<String> = store
            .sweep()?
            .into_iter()
            .map(|p| {
                format!(
                    "qcow2: removed {} (left by a build that was killed)",
                    p.display()
                )
            })
            .collect();
        let dest = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
        let lineage = tree::hex(&Sha256::digest(dest.as_os_str().as_encoded_bytes())[..8]);
        let slots = [format!("{lineage}-a"), format!("{lineage}-b")];
        // This output's newest slot; else the most recently used entry of any output.
        let made = |name: &str| {
            fs::metadata(store.path(name))
                .and_then(|m| m.modified())
                .ok()
        };
        let own = slots
            .iter()
            .filter_map(|s| Some((made(s)?, s.clone())))
            .max()
            .map(|(_, s)| s);
        let candidate = own
            .clone()
            .or_else(|| store.entries().pop().map(|(name, _, _)| name));
        let mut previous = None;
        if let Some(name) = candidate {
            if let Some((path, held)) = store.get(&name)? {
                match Index::open(&path, params) {
                    Ok(index) => previous = Some((index, held)),
                    Err(e) => notes.push(format!("qcow2: not reusing clusters: {e:#}")),
                }
            }
        }
        let write = if own.as_deref() == Some(slots[0].as_str()) {
            &slots[1]
        } else {
            &slots[0]
        };
        let record = if let Some(held) = store.try_lock(write, Mode::Exclusive)? {
            let tmp = store.begin(&held)?;
            Some((held, tmp))
        } else {
            notes.push(format!(
                "qcow2: not recording this image's clusters: another build is writing {write}"
            ));
            None
        };
        Ok(Self {
            store,
            previous,
            stale: own,
            record,
            notes,
        })
    }

    /// The previous index, if one could be read.
    #[must_use]
    pub fn previous(&self) -> Option<&Index> {
        self.previous.as_ref().map(|(i, _)| i)
    }

    /// Where this write's index goes (a temporary in the store), if it is recorded.
    #[must_use]
    pub fn record_path(&self) -> Option<&Path> {
        self.record.as_ref().map(|(_, p)| p.as_path())
    }

    /// Publishes the new index, removes this output's previous one (unless another build
    /// reads it), and keeps the store within its limit; says what it evicted in the notes.
    ///
    /// # Errors
    /// The entry cannot be published.
    pub fn commit(mut self) -> Result<Vec<String>> {
        self.previous = None; // releases the shared lock
        let Some((held, tmp)) = self.record.take() else {
            return Ok(self.notes);
        };
        for e in self.store.commit(&held, &tmp)? {
            self.notes.push(format!(
                "qcow2: evicted cluster index {} ({} MiB) to stay within the cache limit",
                e.name,
                e.bytes >> 20
            ));
        }
        let mut old: Vec<String> = self
            .stale
            .into_iter()
            .filter(|s| s != held.name())
            .collect();
        // Beyond the most recently used MAX_ENTRIES, entries go too (outputs written once to a
        // temporary directory would otherwise fill the store up to its size limit).
        let entries = self.store.entries();
        let over = entries.len().saturating_sub(MAX_ENTRIES);
        old.extend(
            entries
                .into_iter()
                .take(over)
                .map(|e| e.0)
                .filter(|n| n != held.name()),
        );
        for name in old {
            if let Some(_l) = lock::try_lock(&self.store.lock_path(&name), Mode::Exclusive)? {
                fs::remove_file(self.store.path(&name)).ok();
            }
        }
        Ok(self.notes)
    }

    /// Drops the unfinished new index (the write failed).
    pub fn abandon(mut self) {
        if let Some((_held, tmp)) = self.record.take() {
            fs::remove_file(tmp).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::super::{INDEX_PARAMS, Reuse, tests::disk, write_reusing};
    use super::*;

    /// A write to `dest` through a session; returns the clusters it reused and the notes.
    fn build(config: &Config, raw: &Path, dest: &Path) -> (u64, Vec<String>) {
        let session = Session::open(config, dest, INDEX_PARAMS).unwrap();
        let reuse = Reuse {
            previous: session.previous(),
            record: session.record_path(),
        };
        let w = write_reusing(raw, dest, 2, &AtomicBool::new(false), 3, reuse).unwrap();
        (w.reused, session.commit().unwrap())
    }

    fn names(config: &Config) -> Vec<String> {
        let store = Store::open(&config.dir, Kind::Files, config.max_bytes).unwrap();
        let mut names: Vec<String> = store.entries().into_iter().map(|e| e.0).collect();
        names.sort();
        names
    }

    /// Each output keeps one index, which its next write reads and replaces; an output with
    /// none reads the most recent one of another output.
    #[test]
    fn each_output_keeps_its_latest_index() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        disk(&raw);
        let config = Config {
            dir: dir.path().join("cache").join(DIR),
            max_bytes: 1 << 30,
        };
        let (vm, other) = (dir.path().join("vm.qcow2"), dir.path().join("other.qcow2"));
        assert_eq!(build(&config, &raw, &vm).0, 0);
        let first = names(&config);
        assert_eq!(first.len(), 1);
        assert!(first[0].ends_with("-a"), "{first:?}");
        let (reused, _) = build(&config, &raw, &vm);
        assert!(reused > 20, "{reused}");
        let second = names(&config);
        assert_eq!(
            second,
            [first[0].replace("-a", "-b")],
            "the older slot is gone"
        );
        assert!(
            build(&config, &raw, &other).0 > 20,
            "another output's index"
        );
        assert_eq!(names(&config).len(), 2);
        // Many outputs: only the most recent few keep an index.
        for i in 0..MAX_ENTRIES {
            build(&config, &raw, &dir.path().join(format!("tmp{i}.qcow2")));
        }
        assert_eq!(names(&config).len(), MAX_ENTRIES);
        assert!(build(&config, &raw, &vm).0 > 20);
        assert!(build(&config, &raw, &other).0 > 20);
        // A reader of the previous index holds it shared: a second writer of the same
        // output records nothing rather than wait.
        let reading = Session::open(&config, &vm, INDEX_PARAMS).unwrap();
        assert!(reading.previous().is_some());
        let writing = Session::open(&config, &vm, INDEX_PARAMS).unwrap();
        assert!(writing.record_path().is_none());
        assert!(
            writing.notes[0].contains("another build is writing"),
            "{:?}",
            writing.notes
        );
        writing.abandon();
        reading.abandon();
        assert_eq!(
            names(&config).len(),
            MAX_ENTRIES,
            "abandoned writes publish nothing"
        );
    }

    /// What a killed writer left is swept by the next write; an index that is not one is
    /// skipped with a note, and replaced.
    #[test]
    fn dead_writers_and_bad_indexes_are_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        disk(&raw);
        let config = Config {
            dir: dir.path().join(DIR),
            max_bytes: 1 << 30,
        };
        let dest = dir.path().join("vm.qcow2");
        build(&config, &raw, &dest);
        let entry = names(&config).remove(0);
        let left = config.dir.join(".tmp").join(format!("{entry}.123-456"));
        fs::write(&left, "half an index").unwrap();
        fs::write(config.dir.join(&entry), "not an index").unwrap();
        let (reused, notes) = build(&config, &raw, &dest);
        assert_eq!(reused, 0);
        assert!(!left.exists());
        assert!(
            notes
                .iter()
                .any(|n| n.contains("left by a build that was killed")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("not a cluster index")),
            "{notes:?}"
        );
        assert_eq!(names(&config), [entry.replace("-a", "-b")]);
        assert!(build(&config, &raw, &dest).0 > 20);
    }
}
