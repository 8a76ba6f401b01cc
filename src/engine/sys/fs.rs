//! File system queries: free space, and where a sparse file holds data.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use nix::unistd::{Whence, lseek};

/// Bytes available to unprivileged users in the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("checking free space in {}", path.display()))?;
    Ok(stat.blocks_available() * stat.fragment_size())
}

/// The next data extent of `file` at or after `offset`, as `(start, end)` (`SEEK_DATA`, then
/// `SEEK_HOLE`); `Ok(None)` when only a hole is left. `Err` when the file system cannot say.
pub fn data_extent(file: &File, offset: u64) -> nix::Result<Option<(u64, u64)>> {
    let at = i64::try_from(offset).map_err(|_| nix::errno::Errno::EOVERFLOW)?;
    let start = match lseek(file, at, Whence::SeekData) {
        Ok(start) => start,
        Err(nix::errno::Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    };
    let end = lseek(file, start, Whence::SeekHole)?;
    Ok(Some((start.unsigned_abs(), end.unsigned_abs())))
}

/// Copies `src` to a new file `dst` holding data only where `src` does (its holes stay
/// holes), in the kernel (`copy_file_range`) where it can copy between the two file systems,
/// else through a buffer; returns the bytes of data copied.
///
/// # Errors
/// Reading `src`, creating or writing `dst`.
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<u64> {
    copy_sparse_until(src, dst, &std::sync::atomic::AtomicBool::new(false))
}

/// [`copy_sparse`], giving up with an error as soon as `stop` is set (checked every few
/// MiB).
///
/// # Errors
/// Reading `src`, creating or writing `dst`, or `stop`.
pub fn copy_sparse_until(
    src: &Path,
    dst: &Path,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<u64> {
    let from = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let size = from
        .metadata()
        .with_context(|| format!("reading {}", src.display()))?
        .len();
    let to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .with_context(|| format!("creating {}", dst.display()))?;
    to.set_len(size)
        .with_context(|| format!("sizing {}", dst.display()))?;
    let mut copied = 0;
    let mut at = 0;
    let mut in_kernel = true;
    while at < size {
        // A file system that cannot say where the holes are: the rest is all data.
        let extent = match data_extent(&from, at) {
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP) => Some((at, size)),
            other => other.with_context(|| format!("finding the data in {}", src.display()))?,
        };
        let Some((start, end)) = extent else {
            break;
        };
        let end = end.min(size);
        let mut pos = start;
        while pos < end {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                anyhow::bail!("copying {} was stopped", src.display());
            }
            let n = copy_range(&from, &to, pos, end - pos, &mut in_kernel)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
            if n == 0 {
                anyhow::bail!("{} ended while it was copied", src.display());
            }
            pos += n;
            copied += n;
        }
        at = end;
    }
    Ok(copied)
}

/// Copies up to `len` bytes at `offset` from `from` to the same offset of `to`; returns how
/// many. Falls back to a buffer for good once the kernel cannot copy between the two file
/// systems (`EXDEV`, `EINVAL`, `ENOSYS`, `EOPNOTSUPP`).
fn copy_range(from: &File, to: &File, offset: u64, len: u64, in_kernel: &mut bool) -> Result<u64> {
    use nix::errno::Errno;
    use std::os::unix::fs::FileExt;
    if *in_kernel {
        let mut off_in = i64::try_from(offset).context("offset")?;
        let mut off_out = off_in;
        let chunk = usize::try_from(len.min(64 << 20)).unwrap_or(64 << 20);
        match nix::fcntl::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), chunk) {
            Ok(n) => return Ok(n as u64),
            Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                *in_kernel = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; usize::try_from(len.min(4 << 20)).unwrap_or(4 << 20)];
    let n = from.read_at(&mut buf, offset)?;
    to.write_all_at(&buf[..n], offset)?;
    Ok(n as u64)
}
