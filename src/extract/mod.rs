//! Extracting an existing disk image (qcow2 or raw) into a root tree, for the `local-image`
//! element and the image-based OS elements (`dibkit extract-image`), as upstream's
//! `sysprep/bin/extract-image` does it, without device-mapper:
//!
//! 1. the image is hashed (SHA-256 of its bytes) and the cache consulted ([`cache`]);
//! 2. a qcow2 is converted to a sparse raw file in the cache's work directory
//!    (`qemu-img convert`); a raw image is used as it is;
//! 3. it is attached read-only (`losetup -r`), its partitions added with `partx -a`, and
//!    each probed with `blkid -p`;
//! 4. root, `/boot` and the ESP are told apart ([`partitions`]); LVM, LUKS and RAID are
//!    refused; the root is mounted read-only (xfs `nouuid,ro`, btrfs `subvol=root`), then
//!    `/boot`; a FAT ESP (or `/boot`) is copied out with mtools, as this host's kernel may
//!    not mount FAT, and bound read-only in its place;
//! 5. the tree is packed into the entry (tar, owners numeric, xattrs but SELinux labels,
//!    ACLs), with the image's os-release beside it, and the entry renamed into place.
//!
//! Every mount, partition device and loop device is in a [`Ledger`] and released on every
//! path out; an interrupt (the caller's `stop` flag) kills the running tool and takes the
//! same path. Host tools go through [`crate::engine::cmd`]. Progress goes to the caller's
//! `progress` callback; this module never prints.

pub mod cache;
pub mod os_release;
pub mod partitions;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};

use crate::engine::cmd::{self, Interrupted};
use crate::engine::ledger::{Ledger, Owner};
use crate::engine::sys;
use crate::error::{Failure, exit};

use cache::Cache;
use partitions::{Layout, Probe};

/// The host tools an extraction may run, with the Debian package that has each (mcopy only
/// for a FAT partition, but which image has one is known only once it is read).
pub const HOST_TOOLS: &[(&str, &str)] = &[
    ("qemu-img", "qemu-utils"),
    ("losetup", "mount"),
    ("mount", "mount"),
    ("partx", "util-linux"),
    ("blkid", "util-linux"),
    ("tar", "tar"),
    ("zstd", "zstd"),
    ("mcopy", "mtools"),
];

/// Built-in elements whose hooks call `dibkit extract-image`: the build's preflight asks for
/// [`HOST_TOOLS`] when one is in the plan. `fedora`, `centos` and `rhel` (and EL7's) are the
/// image-based Red Hat family elements.
pub const USED_BY: &[&str] = &[
    "local-image",
    "fedora",
    "centos",
    "rhel",
    "rhel7",
    "centos7",
];

/// What [`extract`] works on.
pub struct Request<'a> {
    /// The qcow2 or raw image.
    pub image: &'a Path,
    /// `DIB_IMAGE_CACHE`.
    pub image_cache: &'a Path,
    /// Raised by a signal handler: stop, release everything, fail with exit status 130.
    pub stop: &'a AtomicBool,
}

/// The cache entry of an image.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The entry's directory ([`cache::TREE`], [`cache::OS_RELEASE`], [`cache::LAYOUT`]).
    pub entry: PathBuf,
    /// Whether it was in the cache already.
    pub cached: bool,
}

impl Extracted {
    /// The image's os-release, as the image has it.
    ///
    /// # Errors
    /// The image has none (exit status 1).
    pub fn os_release(&self, image: &Path) -> Result<String, Failure> {
        fs::read_to_string(self.entry.join(cache::OS_RELEASE)).map_err(|_| {
            Failure::new(
                exit::REJECTED,
                format!(
                    "{}: the image has no /etc/os-release or /usr/lib/os-release",
                    image.display()
                ),
                Some("set DISTRO_NAME and DIB_RELEASE for it".to_owned()),
            )
        })
    }

    /// Unpacks the tree into `root` (created if missing): numeric owners, modes, ACLs and
    /// xattrs but SELinux labels, which a non-SELinux host cannot set and the Red Hat
    /// family's build relabels at the end, as upstream extract-image leaves them out.
    ///
    /// # Errors
    /// tar fails, or `stop` was raised.
    pub fn unpack(&self, root: &Path, stop: &AtomicBool) -> Result<(), Failure> {
        fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let mut tar = Command::new("tar");
        tar.arg("-C")
            .arg(root)
            .args(TAR_METADATA)
            .args(["--use-compress-program", "zstd -q -d -T0", "-xpf"])
            .arg(self.entry.join(cache::TREE));
        cmd::run_until(&mut tar, stop).map_err(failure)
    }
}

/// What tar keeps, packing and unpacking.
const TAR_METADATA: [&str; 5] = [
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--xattrs-exclude=security.selinux",
    "--acls",
];

/// The cache entry for `req.image`, extracted now if it is not cached. `progress` is told
/// what happens, a line at a time.
///
/// # Errors
/// The image cannot be read (2), is refused (1: LVM, LUKS, no root filesystem), the host
/// is not ready (4: not root), a tool failed (5), or `stop` was raised (130).
pub fn extract(req: &Request<'_>, progress: &mut dyn FnMut(&str)) -> Result<Extracted, Failure> {
    let image = req.image;
    let meta = fs::metadata(image).map_err(|e| {
        Failure::usage(
            format!("{}: {e}", image.display()),
            Some("DIB_LOCAL_IMAGE (--image) must name a qcow2 or raw disk image".to_owned()),
        )
    })?;
    if !meta.is_file() {
        return Err(Failure::usage(
            format!("{}: not a file", image.display()),
            Some("DIB_LOCAL_IMAGE (--image) must name a qcow2 or raw disk image".to_owned()),
        ));
    }
    if let Some(refusal) = compressed(image)? {
        return Err(refusal);
    }
    // Mount points and the memo are keyed by the canonical path.
    let image = fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
    let cache = Cache::new(req.image_cache);
    let hash = image_key(&image, &cache, req.stop, progress, 0)?;
    if let Some(entry) = cache.lookup(&hash) {
        progress(&format!("cached tree {}", entry.display()));
        return Ok(Extracted {
            entry,
            cached: true,
        });
    }
    if !sys::proc::is_root() {
        return Err(Failure::preflight(format!(
            "{}: extracting an image needs root (it attaches loop devices and mounts); it is not in the cache {}",
            image.display(),
            cache.dir.display()
        )));
    }
    let work = cache.work_dir().map_err(Failure::from)?;
    let mut ledger = Ledger::default();
    let made = fill_entry(
        &image,
        &hash,
        &cache,
        &work,
        &mut ledger,
        req.stop,
        progress,
    );
    // Released before anything else happens, on every path.
    let mut log = Vec::new();
    let released = ledger.release_all(&mut log);
    let left = sys::mount::sweep(&work);
    let removed = if sys::mount::mounts_below(&work).is_empty() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))
    } else {
        Err(anyhow!(
            "left {} in place: something is still mounted in it",
            work.display()
        ))
    };
    let staged = match made {
        Ok(staged) => staged,
        Err(mut f) => {
            // The primary error first; what could not be undone after it, as notes.
            if let Err(e) = released {
                f.notes
                    .push(format!("releasing the image also failed: {e:#}"));
            }
            if !left.is_empty() {
                f.notes.push(format!("still mounted: {left:?}"));
            }
            return Err(f);
        }
    };
    released.map_err(Failure::from)?;
    if !left.is_empty() {
        return Err(Failure::from(anyhow!("could not unmount {left:?}")));
    }
    // `staged` was renamed out of the work directory already; what is left is scratch.
    removed.map_err(Failure::from)?;
    progress(&format!("cached tree {}", staged.display()));
    Ok(Extracted {
        entry: staged,
        cached: false,
    })
}

/// Converts, attaches, mounts, packs and publishes; returns the published entry.
fn fill_entry(
    image: &Path,
    hash: &str,
    cache: &Cache,
    work: &Path,
    ledger: &mut Ledger,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, Failure> {
    let check = || {
        if stop.load(Ordering::SeqCst) {
            Err(Failure::interrupted())
        } else {
            Ok(())
        }
    };
    let raw = if is_qcow2(image)? {
        let raw = work.join("disk.raw");
        progress("converting the qcow2 image to raw (qemu-img convert)");
        cmd::run_until(
            Command::new("qemu-img")
                .args(["convert", "-f", "qcow2", "-O", "raw"])
                .arg(image)
                .arg(&raw),
            stop,
        )
        .map_err(failure)?;
        raw
    } else {
        image.to_path_buf()
    };
    check()?;
    let dev = cmd::run(
        Command::new("losetup")
            .args(["--show", "-f", "-r"])
            .arg(&raw),
    )
    .map_err(failure)?
    .trim()
    .to_owned();
    ledger.attached(Owner::Image, &dev);
    // For the next extraction to detach, should this one be killed outright.
    fs::write(
        work.join(cache::LOOP_RECORD),
        format!("{dev}\n{}\n", raw.display()),
    )
    .with_context(|| format!("writing {}", work.join(cache::LOOP_RECORD).display()))?;
    let probes = probe(&dev, ledger)?;
    let layout = partitions::classify(&probes)
        .map_err(|r| Failure::new(exit::REJECTED, r.message(image), Some(r.hint())))?;
    check()?;
    let mnt = work.join("mnt");
    let mut lines = Vec::new();
    mount_layout(&layout, work, &mnt, ledger, &mut lines, progress)?;
    check()?;
    let staged = work.join("entry");
    fs::create_dir(&staged).with_context(|| format!("creating {}", staged.display()))?;
    if let Some(found) = os_release::find(&mnt) {
        fs::copy(&found, staged.join(cache::OS_RELEASE))
            .with_context(|| format!("copying {}", found.display()))?;
        let text = fs::read_to_string(&found).unwrap_or_default();
        progress(&format!(
            "the image is {}",
            os_release::OsRelease::parse(&text).describe()
        ));
    }
    progress("packing the tree");
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(&mnt)
        .args(TAR_METADATA)
        .args([
            "--exclude=./lost+found",
            "--exclude=./boot/lost+found",
            "--use-compress-program",
            "zstd -q -T0 -3",
            "-cf",
        ])
        .arg(staged.join(cache::TREE))
        .arg(".");
    cmd::run_until(&mut tar, stop).map_err(failure)?;
    lines.push(format!("image {}", image.display()));
    fs::write(staged.join(cache::LAYOUT), lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", staged.join(cache::LAYOUT).display()))?;
    check()?;
    cache.publish(&staged, hash).map_err(Failure::from)
}

/// The cache key of `image`: the SHA-256 of its bytes (remembered per file state), and for a
/// qcow2 overlay, combined with its backing file's key, as the tree is the chain's.
fn image_key(
    image: &Path,
    cache: &Cache,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<String, Failure> {
    let meta = fs::metadata(image).with_context(|| format!("reading {}", image.display()))?;
    let own = if let Some(h) = cache.remembered_hash(image, &meta) {
        h
    } else {
        progress(&format!(
            "hashing {} ({} MiB)",
            image.display(),
            meta.len() >> 20
        ));
        let h = cache::hash_file(image, stop).map_err(failure)?;
        cache.remember_hash(image, &meta, &h);
        h
    };
    let Some(backing) = qcow2_backing(image)? else {
        return Ok(own);
    };
    if depth >= 16 {
        return Err(Failure::new(
            exit::REJECTED,
            format!(
                "{}: its chain of qcow2 backing files is longer than 16",
                image.display()
            ),
            Some("flatten it with `qemu-img convert -O qcow2 IMAGE FLAT.qcow2`".to_owned()),
        ));
    }
    let below = image_key(&backing, cache, stop, progress, depth + 1)?;
    Ok(cache::combine(&own, &below))
}

/// The backing file a qcow2 overlay names in its header (relative names are relative to the
/// overlay's directory, as qemu reads them); `None` for a raw image or a qcow2 without one.
fn qcow2_backing(image: &Path) -> Result<Option<PathBuf>, Failure> {
    if !is_qcow2(image)? {
        return Ok(None);
    }
    let mut header = [0u8; 20];
    let mut f = fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    f.read_exact(&mut header)
        .with_context(|| format!("reading the qcow2 header of {}", image.display()))?;
    let offset = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    let mut name = vec![0u8; size.min(4096) as usize];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut name))
        .with_context(|| format!("reading the backing file name of {}", image.display()))?;
    let name =
        PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(name));
    if name.to_string_lossy().contains(':') && !name.exists() {
        return Err(Failure::new(
            exit::REJECTED,
            format!(
                "{}: its backing file `{}` is not a local file",
                image.display(),
                name.display()
            ),
            Some("flatten it with `qemu-img convert -O qcow2 IMAGE FLAT.qcow2`".to_owned()),
        ));
    }
    let dir = image.parent().unwrap_or(Path::new("/"));
    Ok(Some(dir.join(name)))
}

/// A refusal for an image that is a compressed file rather than a disk image (cloud images
/// are often downloaded as `.xz`; upstream's extract-image unpacks those itself).
fn compressed(image: &Path) -> Result<Option<Failure>, Failure> {
    let mut magic = [0u8; 6];
    let mut f = fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", image.display()))?;
    let (what, tool) = match &magic[..n] {
        [0xfd, b'7', b'z', b'X', b'Z', 0] => ("xz", "unxz"),
        [0x1f, 0x8b, ..] => ("gzip", "gunzip"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => ("zstd", "unzstd"),
        [b'B', b'Z', b'h', ..] => ("bzip2", "bunzip2"),
        _ => return Ok(None),
    };
    Ok(Some(Failure::new(
        exit::REJECTED,
        format!(
            "{}: compressed with {what}, not a disk image",
            image.display()
        ),
        Some(format!(
            "uncompress it first (`{tool} -k {}`) and set DIB_LOCAL_IMAGE to the result",
            image.display()
        )),
    )))
}

/// Whether `image` starts with the qcow2 magic (`QFI\xfb`).
fn is_qcow2(image: &Path) -> Result<bool, Failure> {
    let mut magic = [0u8; 4];
    let mut f = fs::File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", image.display()))?;
    Ok(n == 4 && magic == *b"QFI\xfb")
}

/// What blkid says about the disk's partitions, or about the whole disk when it has no
/// partition table. Adds the partition devices (`partx -a`) and records them.
fn probe(dev: &str, ledger: &mut Ledger) -> Result<Vec<Probe>, Failure> {
    let whole = blkid(dev)?;
    if !whole.lines().any(|l| l.starts_with("PTTYPE=")) {
        let p = Probe::parse(0, dev, &whole);
        return Ok(if p.fstype.is_some() {
            vec![p]
        } else {
            Vec::new()
        });
    }
    // No device-mapper here: partx adds /dev/loopNpK nodes.
    cmd::run(Command::new("partx").args(["-a", dev])).map_err(failure)?;
    ledger.partitioned(dev);
    let numbers =
        cmd::run(Command::new("partx").args(["-g", "-r", "-o", "NR", dev])).map_err(failure)?;
    let mut probes = Vec::new();
    for n in numbers
        .split_whitespace()
        .filter_map(|n| n.parse::<u32>().ok())
    {
        let node = crate::engine::disk::partition_device(dev, n)?;
        probes.push(Probe::parse(n, &node, &blkid(&node)?));
    }
    Ok(probes)
}

/// `blkid -p -o export DEV`; nothing found (exit status 2) is empty output.
fn blkid(dev: &str) -> Result<String, Failure> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", dev])
        .output()
        .with_context(|| format!("running blkid on {dev} (is util-linux installed?)"))?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Some(2) => Ok(String::new()),
        _ => Err(Failure::from(anyhow!(
            "blkid -p -o export {dev} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Mounts the root (the first candidate with an `/etc`), `/boot` and the ESP under `mnt`,
/// read-only, recording each in `ledger` and a line in `lines`.
fn mount_layout(
    layout: &Layout,
    work: &Path,
    mnt: &Path,
    ledger: &mut Ledger,
    lines: &mut Vec<String>,
    progress: &mut dyn FnMut(&str),
) -> Result<(), Failure> {
    fs::create_dir_all(mnt).with_context(|| format!("creating {}", mnt.display()))?;
    let mut root = None;
    for candidate in &layout.roots {
        let options = mount_ro(candidate, mnt, true, ledger)?;
        if mnt.join("etc").is_dir() {
            root = Some((candidate, options));
            break;
        }
        ledger.unmount(mnt).map_err(Failure::from)?;
    }
    let Some((root, options)) = root else {
        let tried: Vec<String> = layout.roots.iter().map(Probe::name).collect();
        return Err(Failure::new(
            exit::REJECTED,
            format!(
                "{}: no root filesystem: none of {} has an /etc",
                layout.roots[0].device,
                tried.join(", ")
            ),
            Some("DIB_LOCAL_IMAGE must be a whole-disk image of an installed system".to_owned()),
        ));
    };
    let line = format!("/ {} {} {options}", root.name(), fstype(root));
    progress(&line);
    lines.push(line);
    for (probe, at) in [(&layout.boot, "boot"), (&layout.esp, "boot/efi")] {
        let Some(p) = probe else { continue };
        let target = mnt.join(at);
        if !target.is_dir() {
            let line = format!(
                "not placed: {} ({}), the tree has no /{at} to put it on",
                p.name(),
                fstype(p)
            );
            progress(&line);
            lines.push(line);
            continue;
        }
        let how = if partitions::is_fat(fstype(p)) {
            // This host's kernel may not mount FAT: copy it out with mtools and bind the
            // copy (read-only) where it would be mounted.
            let copy = work.join(at.replace('/', "-"));
            fs::create_dir_all(&copy).with_context(|| format!("creating {}", copy.display()))?;
            cmd::run(
                Command::new("mcopy")
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .args(["-s", "-p", "-n", "-Q", "-i", &p.device, "::*"])
                    .arg(&copy),
            )
            .or_else(|e| {
                // An empty FAT filesystem has nothing for `::*` to match.
                let listing = cmd::run(
                    Command::new("mdir")
                        .env("MTOOLS_SKIP_CHECK", "1")
                        .args(["-b", "-i", &p.device, "::/"]),
                );
                match listing {
                    Ok(l) if l.trim().is_empty() => Ok(String::new()),
                    _ => Err(e),
                }
            })
            .map_err(failure)?;
            ledger
                .bind(Owner::Image, &copy, &target, true)
                .map_err(Failure::from)?;
            "copied with mtools".to_owned()
        } else if partitions::is_linux_fs(fstype(p)) {
            mount_ro(p, &target, false, ledger)?
        } else {
            let line = format!("not placed: {} ({}) on /{at}", p.name(), fstype(p));
            progress(&line);
            lines.push(line);
            continue;
        };
        let line = format!("/{at} {} {} {how}", p.name(), fstype(p));
        progress(&line);
        lines.push(line);
    }
    Ok(())
}

fn fstype(p: &Probe) -> &str {
    p.fstype.as_deref().unwrap_or("")
}

/// Mounts `p` read-only on `target`, with the fallback options if the first fail; returns
/// the options that worked.
fn mount_ro(p: &Probe, target: &Path, root: bool, ledger: &mut Ledger) -> Result<String, Failure> {
    let fs = fstype(p);
    let first = partitions::mount_options(fs, root);
    let mut tried = Vec::new();
    for options in std::iter::once(first).chain(partitions::fallback_options(fs, root)) {
        let mounted = cmd::run(
            Command::new("mount")
                .args(["-t", fs, "-o", &options, &p.device])
                .arg(target),
        );
        match mounted {
            Ok(_) => {
                ledger.mounted(Owner::Image, target);
                return Ok(options);
            }
            Err(e) => tried.push(format!("{e:#}")),
        }
    }
    Err(Failure::from(anyhow!(
        "mounting {} ({fs}, {}) read-only: {}",
        p.name(),
        p.device,
        tried.join("; then: ")
    )))
}

/// An error of the machinery, or the interrupt it was.
fn failure(e: anyhow::Error) -> Failure {
    if e.is::<Interrupted>() {
        Failure::interrupted()
    } else {
        Failure::from(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overlay's key follows its backing file: the tree is the chain's, so a changed
    /// base with the same overlay is another image.
    #[test]
    #[allow(clippy::print_stderr)]
    fn a_qcow2_overlay_is_keyed_with_its_backing_file() {
        if Command::new("qemu-img").arg("--version").output().is_err() {
            eprintln!("skipping: qemu-img is not installed");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base.raw");
        fs::write(&base, vec![1u8; 1 << 20]).unwrap();
        let overlay = tmp.path().join("overlay.qcow2");
        cmd::run(
            Command::new("qemu-img")
                .current_dir(tmp.path())
                .args(["create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw"])
                .arg(&overlay),
        )
        .unwrap();
        assert_eq!(qcow2_backing(&overlay).unwrap(), Some(base.clone()));
        assert_eq!(qcow2_backing(&base).unwrap(), None);
        let cache = Cache::new(&tmp.path().join("cache"));
        let stop = AtomicBool::new(false);
        let mut lines = Vec::new();
        let mut progress = |l: &str| lines.push(l.to_owned());
        let first = image_key(&overlay, &cache, &stop, &mut progress, 0).unwrap();
        let own = cache::hash_file(&overlay, &stop).unwrap();
        assert_ne!(first, own);
        assert_eq!(
            first,
            cache::combine(&own, &cache::hash_file(&base, &stop).unwrap())
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&base, vec![2u8; 1 << 20]).unwrap();
        let second = image_key(&overlay, &cache, &stop, &mut progress, 0).unwrap();
        assert_ne!(first, second);
        assert_eq!(cache::hash_file(&overlay, &stop).unwrap(), own);
    }
}
