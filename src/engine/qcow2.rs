//! A compressed qcow2 writer (version 3, what `qemu-img` calls `compat=1.1`).
//!
//! `qemu-img convert -c` compresses every cluster at zlib's default level, which takes most of
//! a cold `vm` build's conversion time. This writer makes the same kind of image, faster:
//! 64 KiB clusters, each compressed on its own as raw deflate with the 4 KiB window QEMU
//! itself uses for them (`windowBits = -12`, which is also what it inflates with), at a
//! lower level, on every core. Holes and all-zero clusters stay unallocated,
//! and a cluster that does not shrink is stored as it is, as `qemu-img` does.
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

use anyhow::{Context, Result, bail};
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
/// Clusters read, compressed (in parallel) and written per round.
const BATCH: usize = 256;
/// The version 3 header without extensions (so no compression type field: zlib).
const HEADER_LEN: u32 = 104;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The disk's size: the raw file's, rounded up to whole 512-byte sectors.
    pub virtual_size: u64,
    /// Clusters stored compressed, and stored as they are.
    pub compressed: u64,
    pub plain: u64,
    /// The qcow2 file's size.
    pub file_size: u64,
}

/// How one cluster is stored.
enum Stored {
    Compressed(Vec<u8>),
    Plain,
    Zero,
}

/// Writes the raw disk image `raw` as a compressed qcow2 file at `dest` (created; an existing
/// file is replaced, so callers pass a temporary name), on `threads` threads. `stop` is polled
/// between rounds: once it is set, this returns an error.
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
    let mut l2 = vec![0_u64; usize::try_from(l1_size * L2_ENTRIES)?];
    let mut refs = Refcounts::default();
    refs.add(0)?; // the header
    let file = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        pos: CLUSTER,
    };
    out.w.seek(SeekFrom::Start(CLUSTER))?;
    let (mut compressed, mut plain) = (0, 0);
    let threads = threads.clamp(1, 64);
    let mut buf = vec![0_u8; BATCH * CLUSTER_LEN];
    for batch in clusters.chunks(BATCH) {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let data = &mut buf[..batch.len() * CLUSTER_LEN];
        for (chunk, &c) in data.chunks_mut(CLUSTER_LEN).zip(batch) {
            let offset = c * CLUSTER;
            let len = usize::try_from((size - offset).min(CLUSTER))?;
            chunk[len..].fill(0);
            input
                .read_exact_at(&mut chunk[..len], offset)
                .with_context(|| format!("reading {}", raw.display()))?;
        }
        let per_thread = batch.len().div_ceil(threads);
        let stored: Vec<Stored> = std::thread::scope(|s| {
            let workers: Vec<_> = data
                .chunks(per_thread * CLUSTER_LEN)
                .map(|part| s.spawn(move || compress_all(part)))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a compression thread panicked"))
                .collect()
        });
        for ((chunk, &c), stored) in data.chunks(CLUSTER_LEN).zip(batch).zip(stored) {
            let entry = &mut l2[usize::try_from(c)?];
            match stored {
                Stored::Zero => {}
                Stored::Compressed(bytes) => {
                    let start = out.pos;
                    let end = start + bytes.len() as u64;
                    for host in start / CLUSTER..=(end - 1) / CLUSTER {
                        refs.add(host)?;
                    }
                    let extra_sectors = (end - 1) / SECTOR - start / SECTOR;
                    *entry = start | COMPRESSED | (extra_sectors << CSIZE_SHIFT);
                    out.write(&bytes)?;
                    compressed += 1;
                }
                Stored::Plain => {
                    out.align()?;
                    refs.add(out.pos / CLUSTER)?;
                    *entry = out.pos | COPIED;
                    out.write(chunk)?;
                    plain += 1;
                }
            }
        }
    }
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
    Ok(Written {
        virtual_size,
        compressed,
        plain,
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

/// Compresses each cluster of `data`.
fn compress_all(data: &[u8]) -> Vec<Stored> {
    let mut z = Compress::new_with_window_bits(Compression::new(LEVEL), false, WINDOW_BITS);
    // As qemu-img: kept compressed only when that saves at least two bytes.
    let mut out = vec![0_u8; CLUSTER_LEN - 2];
    data.chunks(CLUSTER_LEN)
        .map(|chunk| {
            if chunk.iter().all(|&b| b == 0) {
                return Stored::Zero;
            }
            z.reset();
            match z.compress(chunk, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => {
                    let len = usize::try_from(z.total_out()).unwrap_or(usize::MAX);
                    Stored::Compressed(out[..len].to_vec())
                }
                _ => Stored::Plain,
            }
        })
        .collect()
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
}
