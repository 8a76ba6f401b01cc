//! A build that runs out of space: which step it was in and what filled up (the build
//! directory's tmpfs or disk, the image directory's tmpfs, one of the image's filesystems),
//! found while everything is still mounted, so the failure says it in one line.

use std::path::{Path, PathBuf};

use super::context::Build;
use super::ledger::Owner;
use super::steps::Step;
use super::sys;
use crate::error::Failure;

/// The step, in a few words.
#[must_use]
pub fn step_name(step: &Step) -> String {
    match step {
        Step::Phase(p) => format!("phase {p}"),
        Step::CreateDisk => "making the disk image and copying the tree into it".to_owned(),
        Step::Write(t) => format!("writing the {t} output"),
        Step::InstallPackages => "install-packages (-p)".to_owned(),
        Step::MoveTreeAside => "moving the tree aside".to_owned(),
        Step::Assemble => "assembling the hooks tree".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Whether a failure's words say a write found no space.
fn says_no_space(f: &Failure) -> bool {
    std::iter::once(&f.message)
        .chain(&f.notes)
        .any(|t| t.contains("No space left on device") || t.contains("ENOSPC"))
}

/// A filesystem the build writes to: what it is, where, and its size and free bytes.
struct Fs {
    what: String,
    path: PathBuf,
    total: u64,
    free: u64,
}

fn stat(what: String, path: &Path) -> Option<Fs> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(Fs {
        what,
        path: path.to_path_buf(),
        total: s.blocks() * s.fragment_size(),
        free: s.blocks_available() * s.fragment_size(),
    })
}

/// The filesystems of the build, largest share used first.
fn filesystems(b: &Build<'_>) -> Vec<Fs> {
    let mut out = Vec::new();
    let Some(p) = &b.paths else { return out };
    let mounted = sys::mount::mounts_below(&p.build);
    let build_what = if mounted.contains(&p.build) {
        "the build directory's tmpfs"
    } else {
        "the disk holding the build directory (TMPDIR)"
    };
    out.extend(stat(build_what.to_owned(), &p.build));
    if mounted.contains(&p.image_dir) {
        out.extend(stat("the image directory's tmpfs".to_owned(), &p.image_dir));
    }
    for m in b.ledger.mounts(Owner::Image) {
        let inside = m
            .strip_prefix(&p.mnt)
            .or_else(|_| m.strip_prefix(&p.built))
            .map_or_else(|_| m.display().to_string(), |r| format!("/{}", r.display()));
        out.extend(stat(
            format!("the image's filesystem mounted at {inside}"),
            &m,
        ));
    }
    out
}

fn mib(bytes: u64) -> u64 {
    bytes / 1024 / 1024
}

/// Rewrites a failure caused by a full filesystem into one naming the step and what filled
/// up; other failures come back as they are. Runs before the teardown.
#[must_use]
pub fn diagnose(b: &Build<'_>, step: &Step, failure: Failure) -> Failure {
    if failure.is_interrupted() {
        return failure;
    }
    let fss = filesystems(b);
    // Full: less than 1 % or 4 MiB left (a failed writer may have freed a little).
    let full = fss
        .iter()
        .filter(|f| f.total > 0 && (f.free < 4 * 1024 * 1024 || f.free * 100 < f.total))
        .min_by_key(|f| f.free);
    let said = says_no_space(&failure);
    let Some(fs) = full.or_else(|| {
        if said {
            fss.iter().min_by_key(|f| f.free)
        } else {
            None
        }
    }) else {
        return failure;
    };
    if !said && full.is_none() {
        return failure;
    }
    let hint = if fs.what.contains("tmpfs") {
        match &b.opts.tmpfs_size {
            Some(size) => format!(
                "DIBKIT_TMPFS_SIZE={size} caps the tmpfs: raise it, or build on disk with --no-tmpfs (and TMPDIR on a roomier disk)"
            ),
            None => "a tmpfs takes up to half the RAM: build on disk with --no-tmpfs (and TMPDIR on a roomier disk), or on a machine with more memory".to_owned(),
        }
    } else if fs.what.contains("image's filesystem") {
        "make the image larger with --image-size, or DIB_IMAGE_EXTRA_SIZE (MiB) on top of the tree's size".to_owned()
    } else {
        "free space there, or set TMPDIR to a roomier disk".to_owned()
    };
    let mut out = Failure::new(
        failure.code,
        format!(
            "out of space in {}: {} ({}) is full, {} MiB of {} MiB free",
            step_name(step),
            fs.what,
            fs.path.display(),
            mib(fs.free),
            mib(fs.total)
        ),
        Some(hint),
    );
    out.notes.push(failure.message.clone());
    out.notes.extend(failure.notes);
    out
}
