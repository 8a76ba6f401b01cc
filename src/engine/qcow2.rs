//! A compressed qcow2 writer (version 3, what `qemu-img` calls `compat=1.1`).
//!
//! `qemu-img convert -c` compresses every cluster at zlib's default level, which takes most of
//! a cold `vm` build's conversion time. This writer makes the same kind of image, faster:
//! 64 KiB clusters, each compressed on its own as raw deflate with the 4 KiB window QEMU
//! itself uses for them (`windowBits = -12`, which is also what it inflates with), at a
//! lower level, on every core. Holes and all-zero clusters stay unallocated,
//! and a cluster that does not shrink is stored as it is, as `qemu-img` does.
//!
//! A write can reuse the clusters an earlier one compressed ([`index`]: SHA-256 of each raw
//! cluster to its compressed bytes, kept in the cache store), which makes the same image.
//! Reading, compressing and writing overlap: a reader thread, a worker per core, and the
//! writer, which puts the clusters in order.
//!
//! File layout: the header cluster, the data (compressed clusters packed byte by byte, plain
//! ones cluster-aligned), then the L2 tables, the L1 table, the refcount table and the refcount
//! blocks. The header is written last, so an interrupted write never looks like an image (and
//! it is written under a temporary name anyway).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use flate2::{Compress, Compression, FlushCompress, Status};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
const CLUSTER_LEN: usize = 1 << CLUSTER_BITS;
/// Eight-byte entries per L2 table (one table maps 512 MiB of the disk).
const L2_ENTRIES: u64 = CLUSTER / 8;
const L2_LEN: usize = CLUSTER_LEN / 8;
/// Refcounts are 16 bits wide (`refcount_order` 4), so one block counts 32768 clusters.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// Compressed cluster descriptors count 512-byte sectors.
const SECTOR: u64 = 512;
/// Where the "additional sectors" field starts in a compressed L2 entry.
const CSIZE_SHIFT: u32 = 62 - (CLUSTER_BITS - 8);
/// The refcount of this cluster is exactly one (set for plain clusters and tables).
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
/// QEMU compresses and inflates clusters with a 4 KiB window.
const WINDOW_BITS: u8 = 12;
/// zlib level 3: about three times as fast as qemu-img's level 6, for an image about 2%
/// larger.
pub const LEVEL: u32 = 3;
/// Clusters per batch (2 MiB): read together, handed to one worker, written together.
const BATCH: usize = 32;
/// Batch buffers: how far the reader may run ahead of the writer.
const BUFFERS: usize = 16;
/// The version 3 header without extensions (so no compression type field: zlib).
const HEADER_LEN: u32 = 104;

pub mod index;

pub use index::{Index, Recorder};

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The disk's size: the raw file's, rounded up to whole 512-byte sectors.
    pub virtual_size: u64,
    /// Clusters stored compressed, and stored as they are.
    pub compressed: u64,
    pub plain: u64,
    /// Of those, the clusters found in the previous write's index (not compressed again).
    pub reused: u64,
    /// The qcow2 file's size.
    pub file_size: u64,
}

/// How one cluster is stored.
enum Stored {
    Compressed(Vec<u8>),
    Plain,
    Zero,
}

/// The writer's parameters an index is only valid for: cluster bits, zlib level, window bits.
pub const INDEX_PARAMS: [u32; 3] = [CLUSTER_BITS, LEVEL, WINDOW_BITS as u32];

/// What a write reuses and records: the previous write's cluster index, and where to write
/// this one's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reuse<'a> {
    pub previous: Option<&'a Index>,
    pub record: Option<&'a Path>,
}

/// Writes the raw disk image `raw` as a compressed qcow2 file at `dest` (created; an existing
/// file is replaced, so callers pass a temporary name), on `threads` threads. `stop` is polled
/// between batches: once it is set, this returns an error.
pub fn write(raw: &Path, dest: &Path, threads: usize, stop: &AtomicBool) -> Result<Written> {
    write_version(raw, dest, threads, stop, 3)
}

/// [`write`], as qcow2 `version` 3 (`compat=1.1`) or 2 (`compat=0.10`, which nodepool asks
/// for): the same clusters and tables (nothing here uses a version 3 feature; unallocated
/// clusters read as zeros in both), only the header differs.
///
/// # Errors
/// As [`write`].
pub fn write_version(
    raw: &Path,
    dest: &Path,
    threads: usize,
    stop: &AtomicBool,
    version: u32,
) -> Result<Written> {
    write_reusing(raw, dest, threads, stop, version, Reuse::default())
}

/// One batch of clusters on its way from the reader to the writer.
struct Batch {
    seq: usize,
    /// Where its clusters start in the list of data clusters, and how many there are.
    first: usize,
    count: usize,
    data: Vec<u8>,
    stored: Vec<(Stored, Option<index::Digest>)>,
    reused: u64,
}

/// [`write_version`], copying the clusters `reuse.previous` has instead of compressing them,
/// and recording this image's clusters at `reuse.record` (finished only when the image is).
/// The image is the same either way.
///
/// The work is a pipeline: a reader thread reads batches of clusters, `threads` workers
/// hash, look up and compress them, and this thread writes them in order, so reading,
/// compressing and writing overlap; a bounded set of buffers keeps the reader at most a few
/// batches ahead.
///
/// # Errors
/// As [`write`]; and the index cannot be read or written.
pub fn write_reusing(
    raw: &Path,
    dest: &Path,
    threads: usize,
    stop: &AtomicBool,
    version: u32,
    reuse: Reuse<'_>,
) -> Result<Written> {
    let input = File::open(raw).with_context(|| format!("opening {}", raw.display()))?;
    let size = input
        .metadata()
        .with_context(|| format!("reading {}", raw.display()))?
        .len();
    let clusters = data_clusters(&input, size);
    // QEMU counts the disk in 512-byte sectors: a partial last sector is kept, zero-filled,
    // as qemu-img does.
    let virtual_size = size.next_multiple_of(SECTOR);
    let l1_size = virtual_size.div_ceil(CLUSTER * L2_ENTRIES);
    let file = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut image = Image {
        out: Out {
            w: BufWriter::with_capacity(1 << 20, file),
            pos: CLUSTER,
        },
        l2: vec![0_u64; usize::try_from(l1_size * L2_ENTRIES)?],
        refs: Refcounts::default(),
        recorder: reuse.record.map(Recorder::create).transpose()?,
        compressed: 0,
        plain: 0,
        reused: 0,
    };
    image.refs.add(0)?; // the header
    image.out.w.seek(SeekFrom::Start(CLUSTER))?;
    let hash = reuse.previous.is_some() || image.recorder.is_some();
    let threads = threads.clamp(1, 64);
    let batches = clusters.len().div_ceil(BATCH);

    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS.min(batches) {
        pool_tx.send(vec![0_u8; BATCH * CLUSTER_LEN]).ok();
    }
    let (work_tx, work_rx) = mpsc::sync_channel::<Batch>(BUFFERS);
    let (done_tx, done_rx) = mpsc::sync_channel::<Result<Batch>>(BUFFERS);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let clusters = &clusters;
    let input = &input;
    let written: Result<()> = std::thread::scope(|s| {
        let reader =
            s.spawn(move || read_batches(input, raw, size, clusters, &pool_rx, &work_tx, stop));
        for _ in 0..threads {
            let (jobs, done) = (Arc::clone(&work_rx), done_tx.clone());
            s.spawn(move || compress_batches(&jobs, &done, reuse.previous, hash));
        }
        drop((work_rx, done_tx));
        let mut pending: BTreeMap<usize, Batch> = BTreeMap::new();
        let mut result = Ok(());
        for seq in 0..batches {
            if stop.load(Ordering::SeqCst) {
                result = Err(anyhow!("interrupted"));
                break;
            }
            let batch = loop {
                if let Some(b) = pending.remove(&seq) {
                    break Ok(b);
                }
                match done_rx.recv() {
                    Ok(Ok(b)) => {
                        pending.insert(b.seq, b);
                    }
                    Ok(Err(e)) => break Err(e),
                    // The reader stopped: its error says why.
                    Err(_) => break Err(anyhow!("the reader stopped")),
                }
            };
            let data = batch.and_then(|b| {
                let indices = &clusters[b.first..b.first + b.count];
                image.put(b, indices)
            });
            match data {
                Ok(data) => {
                    pool_tx.send(data).ok();
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Stops the reader and the workers if this ended early.
        drop((pool_tx, done_rx));
        match (result, reader.join().expect("the reader thread panicked")) {
            (Err(_), Err(read)) => Err(read),
            (r, _) => r,
        }
    });
    written?;
    let Image {
        mut out,
        l2,
        mut refs,
        recorder,
        compressed,
        plain,
        reused,
    } = image;
    out.align()?;

    // Metadata, after the data: L2 tables (only those mapping something), the L1 table.
    let mut l1 = vec![0_u64; usize::try_from(l1_size)?];
    for (i, table) in l2.chunks(L2_LEN).enumerate() {
        if table.iter().any(|&e| e != 0) {
            refs.add(out.pos / CLUSTER)?;
            l1[i] = out.pos | COPIED;
            out.write(&be_bytes(table))?;
        }
    }
    let l1_offset = out.pos;
    for k in 0..(l1_size * 8).div_ceil(CLUSTER) {
        refs.add(l1_offset / CLUSTER + k)?;
    }
    out.write(&be_bytes(&l1))?;
    out.align()?;

    let first = out.pos / CLUSTER;
    let (table_clusters, blocks) = refcount_clusters(first);
    for host in first..first + table_clusters + blocks {
        refs.add(host)?;
    }
    let table_offset = out.pos;
    let blocks_offset = table_offset + table_clusters * CLUSTER;
    let table: Vec<u64> = (0..blocks).map(|j| blocks_offset + j * CLUSTER).collect();
    out.write(&be_bytes(&table))?;
    out.align()?;
    for j in 0..blocks {
        let block: Vec<u8> = (j * REFCOUNTS_PER_BLOCK..(j + 1) * REFCOUNTS_PER_BLOCK)
            .flat_map(|host| refs.get(host).to_be_bytes())
            .collect();
        out.write(&block)?;
    }
    let file_size = out.pos;

    let mut header = Vec::with_capacity(HEADER_LEN as usize + 8);
    header.extend(b"QFI\xfb");
    header.extend(version.to_be_bytes());
    header.extend(0_u64.to_be_bytes()); // backing file offset
    header.extend(0_u32.to_be_bytes()); // backing file name length
    header.extend(CLUSTER_BITS.to_be_bytes());
    header.extend(virtual_size.to_be_bytes());
    header.extend(0_u32.to_be_bytes()); // no encryption
    header.extend(u32::try_from(l1_size)?.to_be_bytes());
    header.extend(l1_offset.to_be_bytes());
    header.extend(table_offset.to_be_bytes());
    header.extend(u32::try_from(table_clusters)?.to_be_bytes());
    header.extend(0_u32.to_be_bytes()); // snapshots
    header.extend(0_u64.to_be_bytes()); // snapshot table offset
    if version >= 3 {
        header.extend(0_u64.to_be_bytes()); // incompatible features
        header.extend(0_u64.to_be_bytes()); // compatible features
        header.extend(0_u64.to_be_bytes()); // autoclear features
        header.extend(REFCOUNT_ORDER.to_be_bytes());
        header.extend(HEADER_LEN.to_be_bytes());
    }
    // Version 2's header is the first 72 bytes of version 3's (16-bit refcounts implied).
    header.extend([0; 8]); // end of the header extensions
    debug_assert_eq!(
        header.len(),
        if version >= 3 {
            HEADER_LEN as usize
        } else {
            72
        } + 8
    );
    let file = out
        .w
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .with_context(|| format!("writing {}", dest.display()))?;
    file.write_all_at(&header, 0)
        .with_context(|| format!("writing {}", dest.display()))?;
    if let Some(r) = recorder {
        r.finish(INDEX_PARAMS)?;
    }
    Ok(Written {
        virtual_size,
        compressed,
        plain,
        reused,
        file_size,
    })
}

/// The refcount table's clusters and the refcount blocks needed when they start at host
/// cluster `first`: every cluster before them and they themselves must be counted, so they
/// grow until they cover themselves.
fn refcount_clusters(first: u64) -> (u64, u64) {
    let mut blocks = 1_u64;
    loop {
        let table_clusters = (blocks * 8).div_ceil(CLUSTER);
        let need = (first + table_clusters + blocks).div_ceil(REFCOUNTS_PER_BLOCK);
        if need <= blocks {
            return (table_clusters, blocks);
        }
        blocks = need;
    }
}

/// The indices of the clusters that hold data, from the file's extents (`SEEK_DATA`); every
/// cluster where the file system cannot say.
fn data_clusters(file: &File, size: u64) -> Vec<u64> {
    let all = || (0..size.div_ceil(CLUSTER)).collect();
    let mut clusters: Vec<u64> = Vec::new();
    let mut offset = 0_u64;
    while offset < size {
        let (start, end) = match super::sys::fs::data_extent(file, offset) {
            Ok(Some((start, end))) => (start, end.min(size)),
            Ok(None) => break, // only a hole is left
            Err(_) => return all(),
        };
        if end <= start {
            break;
        }
        let first = start / CLUSTER;
        let first = match clusters.last() {
            Some(&last) if last >= first => last + 1,
            _ => first,
        };
        clusters.extend(first..end.div_ceil(CLUSTER));
        offset = end;
    }
    clusters
}

/// Reads the clusters batch by batch into buffers from `pool` and hands them to the
/// workers; stops when the writer is gone (the pool closed) or `stop` is set.
fn read_batches(
    input: &File,
    raw: &Path,
    size: u64,
    clusters: &[u64],
    pool: &Receiver<Vec<u8>>,
    work: &SyncSender<Batch>,
    stop: &AtomicBool,
) -> Result<()> {
    for (seq, batch) in clusters.chunks(BATCH).enumerate() {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let Ok(mut data) = pool.recv() else {
            return Ok(());
        };
        // One read per run of adjacent clusters.
        let mut i = 0;
        while i < batch.len() {
            let mut j = i + 1;
            while j < batch.len() && batch[j] == batch[j - 1] + 1 {
                j += 1;
            }
            let offset = batch[i] * CLUSTER;
            let len = usize::try_from((size - offset).min((j - i) as u64 * CLUSTER))?;
            let run = &mut data[i * CLUSTER_LEN..j * CLUSTER_LEN];
            run[len..].fill(0);
            input
                .read_exact_at(&mut run[..len], offset)
                .with_context(|| format!("reading {}", raw.display()))?;
            i = j;
        }
        let b = Batch {
            seq,
            first: seq * BATCH,
            count: batch.len(),
            data,
            stored: Vec::new(),
            reused: 0,
        };
        if work.send(b).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A worker: takes batches from `jobs` until there are none, stores each cluster (found in
/// `previous`, or compressed) and passes the batch on to the writer.
fn compress_batches(
    jobs: &Mutex<Receiver<Batch>>,
    done: &SyncSender<Result<Batch>>,
    previous: Option<&Index>,
    hash: bool,
) {
    let mut z = Compress::new_with_window_bits(Compression::new(LEVEL), false, WINDOW_BITS);
    // As qemu-img: kept compressed only when that saves at least two bytes.
    let mut out = vec![0_u8; CLUSTER_LEN - 2];
    loop {
        let job = jobs
            .lock()
            .map_err(|_| ())
            .and_then(|rx| rx.recv().map_err(|_| ()));
        let Ok(mut batch) = job else {
            return;
        };
        let mut reused = 0;
        let stored: Result<Vec<_>> = batch.data[..batch.count * CLUSTER_LEN]
            .chunks(CLUSTER_LEN)
            .map(|chunk| {
                if chunk.iter().all(|&b| b == 0) {
                    return Ok((Stored::Zero, None));
                }
                let digest = hash.then(|| index::digest(chunk));
                let found = previous
                    .zip(digest.as_ref())
                    .and_then(|(p, d)| Some((p, p.find(d)?)));
                let stored = match found {
                    Some((p, index::Loc::Compressed { offset, len })) => {
                        reused += 1;
                        Stored::Compressed(p.read(offset, len)?)
                    }
                    Some((_, index::Loc::Plain)) => {
                        reused += 1;
                        Stored::Plain
                    }
                    None => compress(&mut z, chunk, &mut out),
                };
                Ok((stored, digest))
            })
            .collect();
        let sent = match stored {
            Ok(stored) => {
                batch.stored = stored;
                batch.reused = reused;
                done.send(Ok(batch))
            }
            Err(e) => done.send(Err(e)),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Compresses one non-zero cluster with `z` into `out`.
fn compress(z: &mut Compress, chunk: &[u8], out: &mut [u8]) -> Stored {
    z.reset();
    match z.compress(chunk, out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => {
            let len = usize::try_from(z.total_out()).unwrap_or(usize::MAX);
            Stored::Compressed(out[..len].to_vec())
        }
        _ => Stored::Plain,
    }
}

/// Compresses each cluster of `data` (the unit tests' way in).
#[cfg(test)]
fn compress_all(data: &[u8]) -> Vec<Stored> {
    let mut z = Compress::new_with_window_bits(Compression::new(LEVEL), false, WINDOW_BITS);
    let mut out = vec![0_u8; CLUSTER_LEN - 2];
    data.chunks(CLUSTER_LEN)
        .map(|chunk| {
            if chunk.iter().all(|&b| b == 0) {
                Stored::Zero
            } else {
                compress(&mut z, chunk, &mut out)
            }
        })
        .collect()
}

/// The image being written: the data so far, its L2 entries and refcounts, the index being
/// recorded.
struct Image {
    out: Out,
    l2: Vec<u64>,
    refs: Refcounts,
    recorder: Option<Recorder>,
    compressed: u64,
    plain: u64,
    reused: u64,
}

impl Image {
    /// Writes the clusters of `batch` (the data clusters `indices`); returns its buffer.
    fn put(&mut self, mut batch: Batch, indices: &[u64]) -> Result<Vec<u8>> {
        let stored = std::mem::take(&mut batch.stored);
        for ((chunk, &c), (stored, digest)) in
            batch.data.chunks(CLUSTER_LEN).zip(indices).zip(stored)
        {
            let entry = &mut self.l2[usize::try_from(c)?];
            let out = &mut self.out;
            match stored {
                Stored::Zero => {}
                Stored::Compressed(bytes) => {
                    let start = out.pos;
                    let end = start + bytes.len() as u64;
                    for host in start / CLUSTER..=(end - 1) / CLUSTER {
                        self.refs.add(host)?;
                    }
                    let extra_sectors = (end - 1) / SECTOR - start / SECTOR;
                    *entry = start | COMPRESSED | (extra_sectors << CSIZE_SHIFT);
                    out.write(&bytes)?;
                    if let (Some(r), Some(d)) = (self.recorder.as_mut(), digest) {
                        r.compressed(d, &bytes)?;
                    }
                    self.compressed += 1;
                }
                Stored::Plain => {
                    out.align()?;
                    self.refs.add(out.pos / CLUSTER)?;
                    *entry = out.pos | COPIED;
                    out.write(chunk)?;
                    if let (Some(r), Some(d)) = (self.recorder.as_mut(), digest) {
                        r.plain(d);
                    }
                    self.plain += 1;
                }
            }
        }
        self.reused += batch.reused;
        Ok(batch.data)
    }
}

/// The output file and the position it has reached.
struct Out {
    w: BufWriter<File>,
    pos: u64,
}

impl Out {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.w.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Pads with zeros to the next cluster boundary.
    fn align(&mut self) -> Result<()> {
        let pad = self.pos.next_multiple_of(CLUSTER) - self.pos;
        self.write(&vec![0; usize::try_from(pad)?])
    }
}

/// One 16-bit reference count per host cluster.
#[derive(Default)]
struct Refcounts(Vec<u16>);

impl Refcounts {
    fn add(&mut self, host: u64) -> Result<()> {
        let i = usize::try_from(host)?;
        if i >= self.0.len() {
            self.0.resize(i + 1, 0);
        }
        self.0[i] = self.0[i]
            .checked_add(1)
            .context("a qcow2 cluster is shared by more than 65535 compressed clusters")?;
        Ok(())
    }

    fn get(&self, host: u64) -> u16 {
        usize::try_from(host)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(0)
    }
}

fn be_bytes(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_compressed_entry_counts_the_sectors_after_its_first() {
        // 100 bytes at 1000 end in sector 2 (bytes 1024..1535): one sector beyond the first.
        let (start, end) = (1000_u64, 1100_u64);
        let entry = start | COMPRESSED | (((end - 1) / SECTOR - start / SECTOR) << CSIZE_SHIFT);
        assert_eq!(entry & ((1 << CSIZE_SHIFT) - 1), 1000);
        assert_eq!((entry >> CSIZE_SHIFT) & 0xff, 1);
        assert_eq!(CSIZE_SHIFT, 54);
    }

    #[test]
    fn holes_are_skipped_and_data_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let file = File::create(&path).unwrap();
        file.set_len(64 * CLUSTER).unwrap();
        file.write_all_at(b"x", 3 * CLUSTER + 5).unwrap();
        file.write_all_at(&vec![1; 70_000], 10 * CLUSTER).unwrap();
        let found = data_clusters(&File::open(&path).unwrap(), 64 * CLUSTER);
        // A file system without extents reports everything as data, which is also right.
        if found.len() < 64 {
            assert_eq!(found, vec![3, 10, 11]);
        }
    }

    #[test]
    fn the_level_keeps_what_qemu_can_inflate() {
        let mut data = vec![0_u8; CLUSTER_LEN];
        for (i, b) in data.iter_mut().enumerate() {
            *b = u8::try_from((i * 7 + i / 300) % 251).unwrap();
        }
        let stored = compress_all(&data);
        let Stored::Compressed(bytes) = &stored[0] else {
            panic!("a patterned cluster compresses");
        };
        let mut z = flate2::Decompress::new_with_window_bits(false, WINDOW_BITS);
        let mut back = vec![0_u8; CLUSTER_LEN];
        let status = z
            .decompress(bytes, &mut back, flate2::FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(back, data);
    }

    /// Matches reach back at most 4 KiB, QEMU's window: 8000 random bytes repeated give
    /// deflate nothing to refer to, so the cluster is stored as it is (a 32 KiB window would
    /// shrink it to about 8 KiB).
    #[test]
    fn matches_stay_within_the_4_kib_window() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let block: Vec<u8> = (0..8000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[2]
            })
            .collect();
        let data: Vec<u8> = block.iter().copied().cycle().take(CLUSTER_LEN).collect();
        assert!(matches!(compress_all(&data)[0], Stored::Plain));
    }

    /// The refcount structures cover every cluster before them and themselves, also when
    /// they need a second block (beyond 32768 clusters, 2 GiB).
    #[test]
    fn refcounts_cover_themselves() {
        for first in [1, 5, 32_765, 32_766, 32_767, 32_768, 100_000, 40_000_000] {
            let (table, blocks) = refcount_clusters(first);
            let covered = blocks * REFCOUNTS_PER_BLOCK;
            assert!(
                covered >= first + table + blocks,
                "{first}: {table} {blocks}"
            );
            assert!(
                table * CLUSTER / 8 >= blocks,
                "{first}: the table holds every block"
            );
            // Not more than needed: one block fewer would not do.
            assert!((blocks - 1) * REFCOUNTS_PER_BLOCK < first + table + blocks - 1);
        }
        assert_eq!(refcount_clusters(32_766), (1, 1));
        assert_eq!(refcount_clusters(32_767), (1, 2));
    }

    /// A disk of 96 clusters: text (compressed), noise (stored as it is), written zeros, a
    /// hole, and a partial last cluster.
    pub(super) fn disk(path: &Path) -> Vec<u8> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed.to_le_bytes()[5]
                })
                .collect()
        };
        let size = 95 * CLUSTER_LEN + 1000;
        let mut data = vec![0_u8; size];
        for (i, chunk) in data.chunks_mut(CLUSTER_LEN).enumerate() {
            match i % 8 {
                0..=3 => {
                    let line = format!("cluster {i}: root:x:0:0:root:/root:/bin/bash\n");
                    for (b, l) in chunk.iter_mut().zip(line.bytes().cycle()) {
                        *b = l;
                    }
                }
                4 => chunk.copy_from_slice(&noise(chunk.len())),
                5 => {
                    // Half noise, half text: compressed into odd lengths.
                    let n = noise(chunk.len() / 2);
                    chunk[..n.len()].copy_from_slice(&n);
                    chunk[n.len()..].fill(b'a');
                }
                _ => {} // zeros
            }
        }
        let f = File::create(path).unwrap();
        f.set_len(size as u64).unwrap();
        // Clusters 6 and 7 of each eight stay holes; the rest is written.
        for (i, chunk) in data.chunks(CLUSTER_LEN).enumerate() {
            if i % 8 < 6 {
                f.write_all_at(chunk, (i * CLUSTER_LEN) as u64).unwrap();
            }
        }
        data
    }

    fn qemu_img(args: &[&str], paths: &[&Path]) -> bool {
        match std::process::Command::new("qemu-img")
            .args(args)
            .args(paths)
            .output()
        {
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "qemu-img {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                true
            }
            Err(_) => false, // not installed: the byte comparison still holds
        }
    }

    fn write_with(
        raw: &Path,
        dest: &Path,
        previous: Option<&Index>,
        record: Option<&Path>,
    ) -> Written {
        let reuse = Reuse { previous, record };
        write_reusing(raw, dest, 2, &AtomicBool::new(false), 3, reuse).unwrap()
    }

    /// The same raw disk written again with the first write's index: every data cluster is
    /// reused, and the image is byte for byte the one written without an index.
    #[test]
    fn a_rewrite_reuses_every_cluster_and_is_the_same_image() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        disk(&raw);
        let plain_write = dir.path().join("plain.qcow2");
        let first = write_with(&raw, &plain_write, None, None);
        assert!(first.compressed > 20 && first.plain > 5, "{first:?}");
        let recorded = dir.path().join("recorded.qcow2");
        let index = dir.path().join("index");
        assert_eq!(write_with(&raw, &recorded, None, Some(&index)), first);
        let index = Index::open(&index, INDEX_PARAMS).unwrap();
        let again = dir.path().join("again.qcow2");
        let second = write_with(&raw, &again, Some(&index), None);
        assert_eq!(second.reused, first.compressed + first.plain);
        assert_eq!(
            Written {
                reused: 0,
                ..second
            },
            first
        );
        let bytes = fs::read(&plain_write).unwrap();
        assert!(
            fs::read(&recorded).unwrap() == bytes,
            "recording changed the image"
        );
        assert!(
            fs::read(&again).unwrap() == bytes,
            "reuse changed the image"
        );
        if qemu_img(&["check"], &[&again]) {
            qemu_img(&["compare", "-f", "raw", "-F", "qcow2"], &[&raw, &again]);
        }
    }

    /// Some clusters changed, one zeroed, one hole filled: the changed ones are compressed,
    /// the rest reused, and the image is the one written without an index.
    #[test]
    fn changed_clusters_are_compressed_and_the_rest_reused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let data = disk(&raw);
        let index_path = dir.path().join("index");
        let first = write_with(
            &raw,
            &dir.path().join("first.qcow2"),
            None,
            Some(&index_path),
        );
        let f = fs::OpenOptions::new().write(true).open(&raw).unwrap();
        f.write_all_at(b"edited /etc/hostname", 2 * CLUSTER + 100)
            .unwrap(); // text
        f.write_all_at(b"edited", 12 * CLUSTER + 7).unwrap(); // noise
        f.write_all_at(&vec![0; CLUSTER_LEN], 16 * CLUSTER).unwrap(); // text, now zeros
        f.write_all_at(b"a new file", 22 * CLUSTER).unwrap(); // a hole, now data
        // A cluster moved: its old content somewhere else is still found.
        f.write_all_at(&data[..CLUSTER_LEN], 30 * CLUSTER).unwrap(); // a hole
        drop(f);
        let index = Index::open(&index_path, INDEX_PARAMS).unwrap();
        let fresh = dir.path().join("fresh.qcow2");
        let want = write_with(&raw, &fresh, None, None);
        let reusing = dir.path().join("reusing.qcow2");
        let got = write_with(&raw, &reusing, Some(&index), None);
        assert_eq!(Written { reused: 0, ..got }, want);
        // Two edited, one new: compressed; the moved one and the rest: reused.
        assert_eq!(got.reused, want.compressed + want.plain - 3, "{got:?}");
        assert_eq!(
            want.compressed + want.plain,
            first.compressed + first.plain + 1
        );
        assert!(fs::read(&reusing).unwrap() == fs::read(&fresh).unwrap());
        if qemu_img(&["check"], &[&reusing]) {
            qemu_img(&["compare", "-f", "raw", "-F", "qcow2"], &[&raw, &reusing]);
        }
    }

    /// An index cut short, of another format or made with other parameters is refused.
    #[test]
    fn only_a_whole_index_with_these_parameters_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        disk(&raw);
        let path = dir.path().join("index");
        write_with(&raw, &dir.path().join("a.qcow2"), None, Some(&path));
        let index = Index::open(&path, INDEX_PARAMS).unwrap();
        assert!(index.len() > 20);
        let other = [CLUSTER_BITS, LEVEL + 1, u32::from(WINDOW_BITS)];
        assert!(Index::open(&path, other).is_err());
        let bytes = fs::read(&path).unwrap();
        for cut in [1, 20, bytes.len() / 2, bytes.len() - 1] {
            fs::write(&path, &bytes[..cut]).unwrap();
            assert!(Index::open(&path, INDEX_PARAMS).is_err(), "cut at {cut}");
        }
        fs::write(&path, b"").unwrap();
        assert!(Index::open(&path, INDEX_PARAMS).is_err());
    }
}
