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
