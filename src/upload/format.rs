//! What a disk image file is, read from its content (never its name): its Glance
//! `disk_format` and the size of the disk it holds. Glance checks the content against the
//! declared format on upload and leaves a mismatched image `queued`, so dibkit reads the same
//! magic numbers first and refuses before anything is sent.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A Glance `disk_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Qcow2,
    Raw,
    Vhd,
    Vhdx,
    Vmdk,
    Vdi,
    Iso,
}

impl DiskFormat {
    pub const ALL: [DiskFormat; 7] = [
        DiskFormat::Qcow2,
        DiskFormat::Raw,
        DiskFormat::Vhd,
        DiskFormat::Vhdx,
        DiskFormat::Vmdk,
        DiskFormat::Vdi,
        DiskFormat::Iso,
    ];

    /// The name Glance uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vdi => "vdi",
            DiskFormat::Iso => "iso",
        }
    }
}

impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DiskFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown disk format `{s}` (one of {})", names.join(", "))
            })
    }
}

/// What the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspected {
    pub format: DiskFormat,
    /// The file's own size (what is uploaded).
    pub file_size: u64,
    /// The size of the disk it holds, when the header says it.
    pub virtual_size: Option<u64>,
}

/// A qcow2 Glance would refuse whatever it is declared as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("the qcow2 image has a backing file; Glance refuses those")]
    BackingFile,
    #[error("the qcow2 image keeps its data in an external file; Glance refuses those")]
    ExternalData,
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("eight bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("eight bytes"))
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file).
fn read_at(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Reads the file's format from its first bytes (and a VHD's footer).
///
/// # Errors
/// The file cannot be read; `Ok(Err(..))` for a qcow2 Glance would refuse.
pub fn inspect(path: &Path) -> io::Result<Result<Inspected, Unsafe>> {
    let f = File::open(path)?;
    let file_size = f.metadata()?.len();
    let head = read_at(&f, 0, 512)?;
    let starts = |magic: &[u8]| head.starts_with(magic);
    let found = |format, virtual_size| {
        Ok(Ok(Inspected {
            format,
            file_size,
            virtual_size,
        }))
    };
    if starts(b"QFI\xfb") && head.len() >= 32 {
        if be64(&head[8..]) != 0 {
            return Ok(Err(Unsafe::BackingFile));
        }
        let version = u32::from_be_bytes(head[4..8].try_into().expect("four bytes"));
        // Version 3 headers have incompatible feature bits at 72; bit 2 is "external data file".
        if version >= 3 && head.len() >= 80 && be64(&head[72..]) & (1 << 2) != 0 {
            return Ok(Err(Unsafe::ExternalData));
        }
        return found(DiskFormat::Qcow2, Some(be64(&head[24..])));
    }
    if starts(b"vhdxfile") {
        return found(DiskFormat::Vhdx, None);
    }
    if starts(b"KDMV") && head.len() >= 20 {
        // The capacity, in 512-byte sectors.
        return found(
            DiskFormat::Vmdk,
            Some(le64(&head[12..]).saturating_mul(512)),
        );
    }
    if head.len() >= 0x178 && head[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
        return found(DiskFormat::Vdi, Some(le64(&head[0x170..])));
    }
    // A dynamic VHD starts with a copy of its footer; a fixed one has it only at the end.
    if starts(b"conectix") && head.len() >= 56 {
        return found(DiskFormat::Vhd, Some(be64(&head[48..])));
    }
    if file_size >= 512 {
        let tail = read_at(&f, file_size - 512, 512)?;
        if tail.starts_with(b"conectix") {
            return found(DiskFormat::Vhd, Some(be64(&tail[48..])));
        }
    }
    if file_size > 0x8006 && read_at(&f, 0x8001, 5)? == b"CD001" {
        return found(DiskFormat::Iso, Some(file_size));
    }
    found(DiskFormat::Raw, Some(file_size))
}

/// Glance's `min_disk`: the disk's size in whole GiB, rounded up.
#[must_use]
pub fn min_disk_gib(virtual_size: u64) -> u64 {
    virtual_size.div_ceil(1 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[(u64, &[u8])], len: u64) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(len).unwrap();
        for (at, b) in bytes {
            f.as_file().write_all_at(b, *at).unwrap();
        }
        f
    }

    #[test]
    fn qcow2_gives_its_virtual_size() {
        let mut h = b"QFI\xfb\0\0\0\x03".to_vec();
        h.extend([0; 16]);
        h.extend(3_221_225_472_u64.to_be_bytes());
        let f = file_with(&[(0, &h)], 4096);
        let i = inspect(f.path()).unwrap().unwrap();
        assert_eq!(i.format, DiskFormat::Qcow2);
        assert_eq!(i.virtual_size, Some(3 << 30));
        assert_eq!(min_disk_gib(3 << 30), 3);
        assert_eq!(min_disk_gib((3 << 30) + 1), 4);
    }

    #[test]
    fn a_qcow2_with_a_backing_file_is_unsafe() {
        let mut h = b"QFI\xfb\0\0\0\x03".to_vec();
        h.extend(0x200_u64.to_be_bytes());
        h.extend([0; 24]);
        let f = file_with(&[(0, &h)], 4096);
        assert_eq!(inspect(f.path()).unwrap(), Err(Unsafe::BackingFile));
    }

    #[test]
    fn a_fixed_vhd_is_known_by_its_footer() {
        let mut footer = b"conectix".to_vec();
        footer.extend([0; 40]);
        footer.extend((1_u64 << 20).to_be_bytes());
        let f = file_with(&[((1 << 20), &footer)], (1 << 20) + 512);
        let i = inspect(f.path()).unwrap().unwrap();
        assert_eq!(i.format, DiskFormat::Vhd);
        assert_eq!(i.virtual_size, Some(1 << 20));
    }

    #[test]
    fn anything_else_is_raw_whatever_its_name() {
        let f = tempfile::Builder::new()
            .suffix(".qcow2")
            .tempfile()
            .unwrap();
        f.as_file().set_len(1 << 20).unwrap();
        let i = inspect(f.path()).unwrap().unwrap();
        assert_eq!(i.format, DiskFormat::Raw);
        assert_eq!(i.virtual_size, Some(1 << 20));
    }
}
