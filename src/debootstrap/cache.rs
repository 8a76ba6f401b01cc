//! The tree cache: where a prepared tree's tarball lives and whether it may be used
//! ([`lookup`]), unpacking it ([`unpack`]) and packing a tree into it ([`pack`], [`publish`]).
//! A tarball may hold two archives one after the other (the tree packed in two parts while
//! the kernel hooks run); unpacking reads past the first one's end.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::engine::cmd;

/// How a tarball is compressed: zstd packs and unpacks the tree several times faster than
/// gzip, which is the fallback when zstd is not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Gzip,
}

impl Compression {
    /// zstd when it is on `path` (a PATH value), else gzip.
    #[must_use]
    pub fn available(path: Option<&std::ffi::OsStr>) -> Self {
        let found = path.is_some_and(|p| {
            std::env::split_paths(p).any(|d| {
                fs::metadata(d.join("zstd"))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        });
        if found { Self::Zstd } else { Self::Gzip }
    }

    /// The compression of a tarball, by its name.
    #[must_use]
    pub fn of(tarball: &Path) -> Self {
        if tarball.to_string_lossy().ends_with(".tar.zst") {
            Self::Zstd
        } else {
            Self::Gzip
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Zstd => "tar.zst",
            Self::Gzip => "tar.gz",
        }
    }

    fn compressor(self) -> Command {
        match self {
            Self::Zstd => {
                let mut c = Command::new("zstd");
                c.args(["-q", "-T0", "-3"]);
                c
            }
            Self::Gzip => Command::new("gzip"),
        }
    }

    fn decompress_args(self) -> Vec<&'static str> {
        match self {
            Self::Zstd => vec!["--use-compress-program", "zstd -q -d -T0"],
            Self::Gzip => vec!["--gzip"],
        }
    }
}

/// What the cache holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A tarball young enough (or age does not matter).
    Usable,
    /// A tarball older than the maximum age.
    Stale,
    /// No tarball.
    Absent,
}

impl State {
    /// The word the hook reads.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::Stale => "stale",
            Self::Absent => "absent",
        }
    }
}

/// The tarball of the tree `name` (`<distro>-<release>-<arch>-<key>`) in `dir`.
#[must_use]
pub fn tarball(dir: &Path, name: &str, compression: Compression) -> PathBuf {
    dir.join(format!("{name}.{}", compression.extension()))
}

/// Whether `tarball` may be used: it exists and, unless `max_age_days` is 0 or `any_age`
/// (offline, or the cache forced), was written less than that many days before `now`.
#[must_use]
pub fn lookup(tarball: &Path, max_age_days: u64, any_age: bool, now: SystemTime) -> State {
    let Ok(meta) = fs::metadata(tarball) else {
        return State::Absent;
    };
    if !meta.is_file() {
        return State::Absent;
    }
    if any_age || max_age_days == 0 {
        return State::Usable;
    }
    let max = Duration::from_secs(max_age_days.saturating_mul(86_400));
    let age = meta
        .modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .unwrap_or_default();
    if age < max {
        State::Usable
    } else {
        State::Stale
    }
}

/// Unpacks `tarball` (one archive or two) into `root`, owners, modes and xattrs kept.
///
/// # Errors
/// tar fails.
pub fn unpack(tarball: &Path, root: &Path) -> Result<()> {
    crate::cache::mark_used(tarball);
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(root)
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*"])
        .args(Compression::of(tarball).decompress_args())
        .args(["--ignore-zeros", "-xpf"])
        .arg(tarball);
    cmd::run(&mut tar).map(drop)
}

/// What the initramfs hook writes to, and the mount points: packed last, once it is done
/// and they are unmounted.
pub const LATER: [&str; 5] = [
    "./boot",
    "./var/tmp",
    "./var/lib/initramfs-tools",
    "./proc",
    "./sys",
];

/// Which part of the tree [`pack`] adds to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All of it, into an emptied file.
    All,
    /// All but [`LATER`] (while the kernel hooks run).
    First,
    /// Those of [`LATER`] that exist, onto the end of the first.
    Rest,
}

/// tar's arguments for packing `part` of `root`.
fn tar_args(root: &Path, part: Part) -> Vec<String> {
    let mut args: Vec<String> = vec!["-C".into(), root.to_string_lossy().into_owned()];
    args.extend(
        [
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--exclude=./lost+found",
            "--exclude=./tmp/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./var/cache/apt/*.bin",
            "--exclude=./var/lib/apt/lists/.dibkit-updated",
            "-b",
            "256",
            "-cf",
            "-",
        ]
        .map(str::to_owned),
    );
    match part {
        Part::All => args.push(".".into()),
        Part::First => {
            args.extend(LATER.iter().map(|p| format!("--exclude={p}")));
            args.push(".".into());
        }
        Part::Rest => args.extend(
            LATER
                .iter()
                .filter(|p| root.join(p).exists())
                .map(|p| (*p).to_owned()),
        ),
    }
    args
}

/// Packs `part` of `root` onto the end of `into`, compressed as `tarball`'s name says.
///
/// # Errors
/// `into` cannot be opened, or tar or the compressor fails.
pub fn pack(root: &Path, tarball: &Path, into: &Path, part: Part) -> Result<()> {
    let args = tar_args(root, part);
    if part == Part::Rest && args.last().is_some_and(|a| a == "-") {
        // None of them exists: there is nothing to add.
        return Ok(());
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .truncate(false)
        .open(into)
        .with_context(|| format!("opening {}", into.display()))?;
    if part == Part::All {
        file.set_len(0)
            .with_context(|| format!("emptying {}", into.display()))?;
    }
    cmd::pipeline(
        Command::new("tar").args(&args),
        &mut Compression::of(tarball).compressor(),
        file,
    )
}

/// The tarballs' store: `dir` (`$DIB_IMAGE_CACHE/debootstrap`), limited to `max_gib`.
///
/// # Errors
/// Its directories cannot be made.
pub fn store(dir: &Path, max_gib: f64) -> Result<crate::cache::Store> {
    // Whole bytes: a limit is a size, its fraction of a byte nothing.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let max_bytes = (max_gib.max(0.0) * 1024.0 * 1024.0 * 1024.0) as u64;
    crate::cache::Store::open(dir, crate::cache::Kind::Files, max_bytes)
}

/// Makes the packed `into` (in the store's temporaries directory) the cache's `tarball`:
/// readable by all, synced, renamed into place; then the least recently used tarballs over
/// `max_gib` are evicted. The caller holds the tarball's lock exclusively.
///
/// # Errors
/// chmod, the sync or the rename fails.
pub fn publish(into: &Path, tarball: &Path, max_gib: f64) -> Result<()> {
    fs::set_permissions(into, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("making {} readable", into.display()))?;
    let dir = tarball.parent().unwrap_or(Path::new("."));
    let name = tarball
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    store(dir, max_gib)?
        .publish(&name, into)
        .map(drop)
        .with_context(|| format!("renaming {} to {}", into.display(), tarball.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tarball_name_follows_the_compression() {
        let dir = Path::new("/c/debootstrap");
        let t = tarball(dir, "debian-bookworm-amd64-abc", Compression::Zstd);
        assert_eq!(
            t,
            Path::new("/c/debootstrap/debian-bookworm-amd64-abc.tar.zst")
        );
        assert_eq!(Compression::of(&t), Compression::Zstd);
        let t = tarball(dir, "debian-bookworm-amd64-abc", Compression::Gzip);
        assert_eq!(Compression::of(&t), Compression::Gzip);
    }

    #[test]
    fn zstd_is_used_when_it_is_on_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Compression::available(Some(dir.path().as_os_str())),
            Compression::Gzip
        );
        let zstd = dir.path().join("zstd");
        fs::write(&zstd, "").unwrap();
        assert_eq!(
            Compression::available(Some(dir.path().as_os_str())),
            Compression::Gzip,
            "not executable"
        );
        fs::set_permissions(&zstd, fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(Compression::available(Some(&path)), Compression::Zstd);
        assert_eq!(Compression::available(None), Compression::Gzip);
    }

    #[test]
    fn age_decides_unless_it_does_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.tar.gz");
        let now = SystemTime::now();
        assert_eq!(lookup(&t, 7, false, now), State::Absent);
        fs::write(&t, "").unwrap();
        assert_eq!(lookup(&t, 7, false, now), State::Usable);
        let later = now + Duration::from_secs(8 * 86_400);
        assert_eq!(lookup(&t, 7, false, later), State::Stale);
        assert_eq!(lookup(&t, 0, false, later), State::Usable);
        assert_eq!(lookup(&t, 7, true, later), State::Usable);
        assert_eq!(lookup(dir.path(), 7, false, now), State::Absent);
    }

    #[test]
    fn the_first_part_leaves_out_what_the_rest_adds() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("boot")).unwrap();
        let first = tar_args(dir.path(), Part::First);
        assert!(first.contains(&"--exclude=./boot".to_owned()));
        assert_eq!(first.last().map(String::as_str), Some("."));
        let rest = tar_args(dir.path(), Part::Rest);
        assert_eq!(rest.last().map(String::as_str), Some("./boot"));
        assert!(!rest.contains(&"./sys".to_owned()), "absent: not packed");
    }

    /// Packed in two parts into one file, published, unpacked: the same tree, less what is
    /// never cached.
    #[test]
    fn two_parts_unpack_as_one_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["boot", "etc", "proc/1", "tmp", "var/cache/apt", "var/tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("boot/initrd.img-6"), "initrd").unwrap();
        fs::write(root.join("etc/hostname-kept"), "etc").unwrap();
        fs::write(root.join("proc/1/status"), "proc").unwrap();
        fs::write(root.join("tmp/scratch"), "tmp").unwrap();
        fs::write(root.join("var/cache/apt/pkgcache.bin"), "bin").unwrap();
        let tarball = dir.path().join("t.tar.gz");
        let into = dir.path().join("t.tar.gz.part");
        fs::write(&into, "left over").unwrap();
        pack(&root, &tarball, &into, Part::All).unwrap();
        let whole = fs::metadata(&into).unwrap().len();
        fs::write(&into, "").unwrap();
        pack(&root, &tarball, &into, Part::First).unwrap();
        pack(&root, &tarball, &into, Part::Rest).unwrap();
        assert!(fs::metadata(&into).unwrap().len() > 0 && whole > 0);
        publish(&into, &tarball, 1.0).unwrap();
        assert!(!into.exists());
        let mode = fs::metadata(&tarball).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack(&tarball, &out).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("boot/initrd.img-6")).unwrap(),
            "initrd"
        );
        assert!(out.join("etc/hostname-kept").exists());
        assert!(out.join("proc").is_dir() && !out.join("proc/1").exists());
        assert!(out.join("tmp").is_dir() && !out.join("tmp/scratch").exists());
        assert!(!out.join("var/cache/apt/pkgcache.bin").exists());
        assert!(out.join("var/tmp").is_dir());
    }
}
