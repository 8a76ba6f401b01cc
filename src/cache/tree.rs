//! Trees as the build cache sees them: a digest of everything in a tree (names, types,
//! modes, owners, link targets, device numbers, contents), and emptying a tree, neither
//! crossing into another file system mounted in it (its mount point is kept, empty of what
//! the tree holds beneath it).

use std::borrow::Cow;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memchr::memmem;
use sha2::{Digest, Sha256};

/// A digest of `root` (a directory, or a file), and the directories below it on another
/// file system (mount points; their contents are not in the digest). Entries are visited
/// in byte order of their names; paths in `skip` (relative to `root`) are left out whole.
///
/// # Errors
/// An entry cannot be read.
pub fn digest(root: &Path, skip: &[&str]) -> Result<(String, Vec<PathBuf>)> {
    digest_normalized(root, skip, None)
}

/// The largest file whose contents [`digest_normalized`] reads for `path`.
const NORMALIZED_MAX: u64 = 4 << 20;

/// [`digest`], with each occurrence of `path` in a file's contents (files up to 4 MiB) and
/// link targets read as `@PATH@`: the build directory's path, different in every build,
/// is written into the tree by hooks that record where things were (dib's manifests).
///
/// # Errors
/// An entry cannot be read.
pub fn digest_normalized(
    root: &Path,
    skip: &[&str],
    path: Option<&Path>,
) -> Result<(String, Vec<PathBuf>)> {
    let finder = path.map(|p| memmem::Finder::new(p.as_os_str().as_encoded_bytes()));
    let norm = finder.as_ref();
    let mut hasher = Sha256::new();
    let mut mounts = Vec::new();
    let meta = match fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            hasher.update(b"absent");
            return Ok((hex(&hasher.finalize()), mounts));
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    walk(
        root,
        Path::new(""),
        meta.dev(),
        skip,
        norm,
        &mut hasher,
        &mut mounts,
    )?;
    Ok((hex(&hasher.finalize()), mounts))
}

/// `bytes` with each occurrence of `finder`'s needle replaced by `with`.
fn replace_all<'a>(bytes: &'a [u8], finder: &memmem::Finder<'_>, with: &[u8]) -> Cow<'a, [u8]> {
    let mut found = finder.find_iter(bytes).peekable();
    if found.peek().is_none() {
        return Cow::Borrowed(bytes);
    }
    let needle = finder.needle().len();
    let mut out = Vec::with_capacity(bytes.len());
    let mut last = 0;
    for at in found {
        out.extend_from_slice(&bytes[last..at]);
        out.extend_from_slice(with);
        last = at + needle;
    }
    out.extend_from_slice(&bytes[last..]);
    Cow::Owned(out)
}

/// Lower-case hexadecimal.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn walk(
    root: &Path,
    rel: &Path,
    dev: u64,
    skip: &[&str],
    norm: Option<&memmem::Finder<'_>>,
    h: &mut Sha256,
    mounts: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = root.join(rel);
    let meta =
        fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        b'd'
    } else if ft.is_symlink() {
        b'l'
    } else if ft.is_file() {
        b'f'
    } else if ft.is_block_device() {
        b'b'
    } else if ft.is_char_device() {
        b'c'
    } else if ft.is_fifo() {
        b'p'
    } else {
        b's'
    };
    h.update(rel.as_os_str().as_encoded_bytes());
    h.update([0, kind]);
    h.update(meta.mode().to_le_bytes());
    h.update(meta.uid().to_le_bytes());
    h.update(meta.gid().to_le_bytes());
    match kind {
        b'l' => {
            let target = fs::read_link(&path)?;
            let bytes = target.as_os_str().as_encoded_bytes();
            match norm {
                Some(f) => h.update(replace_all(bytes, f, b"@PATH@")),
                None => h.update(bytes),
            }
        }
        b'b' | b'c' => h.update(meta.rdev().to_le_bytes()),
        b'f' if norm.is_some() && meta.len() <= NORMALIZED_MAX => {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let text = norm.map_or(Cow::Borrowed(&bytes[..]), |f| {
                replace_all(&bytes, f, b"@PATH@")
            });
            h.update((text.len() as u64).to_le_bytes());
            h.update(&text);
        }
        b'f' => {
            h.update(meta.len().to_le_bytes());
            let mut f =
                fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        _ => {}
    }
    h.update([0xff]);
    if kind != b'd' {
        return Ok(());
    }
    if meta.dev() != dev {
        mounts.push(rel.to_path_buf());
        return Ok(());
    }
    let mut names: Vec<_> = fs::read_dir(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let child = rel.join(&name);
        if skip.iter().any(|s| Path::new(s) == child) {
            continue;
        }
        walk(root, &child, dev, skip, norm, h, mounts)?;
    }
    Ok(())
}

/// The directories below `root` on another file system than `root` (mount points).
#[must_use]
pub fn mount_points(root: &Path) -> Vec<PathBuf> {
    let Ok(meta) = fs::symlink_metadata(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    find_mounts(root, Path::new(""), meta.dev(), &mut out);
    out.sort();
    out
}

fn find_mounts(root: &Path, rel: &Path, dev: u64, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let child = rel.join(e.file_name());
        if meta.dev() == dev {
            find_mounts(root, &child, dev, out);
        } else {
            out.push(child);
        }
    }
}

/// Removes everything in `root` that is on `root`'s file system; a directory on another
/// one (a mount point) and the directories leading to it stay.
///
/// # Errors
/// An entry cannot be removed.
pub fn clear(root: &Path) -> Result<()> {
    let dev = fs::symlink_metadata(root)
        .with_context(|| format!("reading {}", root.display()))?
        .dev();
    clear_dir(root, dev).map(drop)
}

/// Returns whether `dir` is now empty.
fn clear_dir(dir: &Path, dev: u64) -> Result<bool> {
    let mut empty = true;
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let meta = fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            if meta.dev() != dev {
                empty = false;
            } else if clear_dir(&p, dev)? {
                fs::remove_dir(&p).with_context(|| format!("removing {}", p.display()))?;
            } else {
                empty = false;
            }
        } else {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_digest_sees_contents_modes_and_links_but_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        fs::create_dir_all(t.join("etc/sub")).unwrap();
        fs::write(t.join("etc/a"), "one").unwrap();
        std::os::unix::fs::symlink("a", t.join("etc/l")).unwrap();
        let (first, mounts) = digest(t, &[]).unwrap();
        assert!(mounts.is_empty());
        // Touched: same digest.
        let f = fs::File::options()
            .write(true)
            .open(t.join("etc/a"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(digest(t, &[]).unwrap().0, first);
        fs::write(t.join("etc/a"), "two").unwrap();
        let changed = digest(t, &[]).unwrap().0;
        assert_ne!(changed, first);
        fs::write(t.join("etc/a"), "one").unwrap();
        assert_eq!(digest(t, &[]).unwrap().0, first);
        fs::set_permissions(t.join("etc/a"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(digest(t, &[]).unwrap().0, first);
        fs::set_permissions(t.join("etc/a"), fs::Permissions::from_mode(0o644)).unwrap();
        let base = digest(t, &[]).unwrap().0;
        fs::remove_file(t.join("etc/l")).unwrap();
        std::os::unix::fs::symlink("b", t.join("etc/l")).unwrap();
        assert_ne!(digest(t, &[]).unwrap().0, base);
        // Skipped paths do not count; an absent tree has a digest of its own.
        let with = digest(t, &["etc/sub"]).unwrap().0;
        fs::write(t.join("etc/sub/x"), "x").unwrap();
        assert_eq!(digest(t, &["etc/sub"]).unwrap().0, with);
        assert_ne!(digest(&t.join("none"), &[]).unwrap().0, with);
        // The build directory's path reads the same in every build.
        fs::write(t.join("etc/m"), "at /b/one/x").unwrap();
        let one = digest_normalized(t, &[], Some(Path::new("/b/one")))
            .unwrap()
            .0;
        fs::write(t.join("etc/m"), "at /b/two/x").unwrap();
        let two = digest_normalized(t, &[], Some(Path::new("/b/two")))
            .unwrap()
            .0;
        assert_eq!(one, two);
        assert_ne!(digest(t, &[]).unwrap().0, one);
    }

    #[test]
    fn replace_all_replaces_every_occurrence_and_borrows_without_one() {
        let f = memmem::Finder::new(b"/b/one");
        let out = replace_all(b"/b/one/x /b/one/b/oneb", &f, b"@P@");
        assert_eq!(&*out, b"@P@/x @P@@P@b");
        assert!(matches!(
            replace_all(b"nothing", &f, b"@P@"),
            Cow::Borrowed(_)
        ));
        assert_eq!(&*replace_all(b"/b/one", &f, b""), b"");
    }

    #[test]
    fn clear_empties_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        fs::create_dir_all(t.join("a/b/c")).unwrap();
        fs::write(t.join("a/b/c/f"), "f").unwrap();
        fs::write(t.join("top"), "t").unwrap();
        clear(t).unwrap();
        assert_eq!(fs::read_dir(t).unwrap().count(), 0);
        assert!(mount_points(t).is_empty());
    }
}
