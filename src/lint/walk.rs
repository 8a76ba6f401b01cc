//! Reads lint targets from disk into a [`Workspace`]: the only file reader of the linter.
//! A target is an element, a folder of elements, or a repository with an `elements/` folder.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::element::model::Phase;

use super::model::{FileKind, LintElement, MAX_FILE_SIZE, SourceFile, Workspace};

/// Files that mark a directory as an element.
const ELEMENT_FILES: &[&str] = &[
    "element-deps",
    "element-provides",
    "README.rst",
    "package-installs.yaml",
    "package-installs.json",
    "pkg-map",
];

/// Directories never descended into.
const SKIP_DIRS: &[&str] = &[".git", "__pycache__", ".tox", "node_modules"];

/// Whether `dir` looks like a dib element.
#[must_use]
pub fn is_element(dir: &Path) -> bool {
    ELEMENT_FILES.iter().any(|m| dir.join(m).is_file())
        || dir.join("environment.d").is_dir()
        || Phase::ALL.iter().any(|p| dir.join(p.dir()).is_dir())
}

/// The element directories a target names. `Err` when the path does not exist.
pub fn element_dirs(target: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = fs::metadata(target)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a directory",
        ));
    }
    let nested = target.join("elements");
    let root = if !is_element(target) && nested.is_dir() {
        nested
    } else {
        target.to_path_buf()
    };
    if is_element(&root) {
        return Ok(vec![root]);
    }
    let mut out: Vec<PathBuf> = fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.')
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Reads one element into the workspace.
pub fn read_element(ws: &mut Workspace, dir: &Path) {
    let name = fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let index = ws.elements.len();
    let self_file = ws.add(SourceFile::new(
        dir.to_path_buf(),
        Some(index),
        String::new(),
        FileKind::Dir,
    ));
    let mut files = Vec::new();
    walk(ws, dir, "", index, &mut files, 0);
    files.sort_by(|a, b| ws.files[*a].rel.cmp(&ws.files[*b].rel));
    ws.elements.push(LintElement {
        name,
        dir: dir.to_path_buf(),
        files,
        self_file,
    });
}

fn walk(
    ws: &mut Workspace,
    dir: &Path,
    rel: &str,
    element: usize,
    out: &mut Vec<usize>,
    depth: usize,
) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = listing.filter_map(Result::ok).collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if depth == 0 && SKIP_DIRS.contains(&name.as_str()) {
            continue;
        }
        let path = entry.path();
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let Ok(lmeta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if lmeta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let resolved = fs::metadata(&path);
            let dangling = resolved.is_err();
            let mut f = SourceFile::new(
                path.clone(),
                Some(element),
                child_rel,
                FileKind::Symlink { target, dangling },
            );
            if let Ok(m) = resolved {
                f.mode = m.permissions().mode();
                if m.is_file() {
                    load(&mut f, &path, m.len());
                }
            }
            out.push(ws.add(f));
            continue;
        }
        if lmeta.is_dir() {
            let mut f = SourceFile::new(
                path.clone(),
                Some(element),
                child_rel.clone(),
                FileKind::Dir,
            );
            f.mode = lmeta.permissions().mode();
            out.push(ws.add(f));
            if depth < 16 {
                walk(ws, &path, &child_rel, element, out, depth + 1);
            }
            continue;
        }
        let mut f = SourceFile::new(path.clone(), Some(element), child_rel, FileKind::File);
        f.mode = lmeta.permissions().mode();
        if lmeta.is_file() {
            load(&mut f, &path, lmeta.len());
        } else {
            f.kind = FileKind::Unread {
                reason: "not a regular file".to_owned(),
            };
        }
        out.push(ws.add(f));
    }
}

fn load(f: &mut SourceFile, path: &Path, len: u64) {
    if len > MAX_FILE_SIZE {
        f.kind = FileKind::Unread {
            reason: format!("larger than {} MiB", MAX_FILE_SIZE / 1024 / 1024),
        };
        return;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    match fs::File::open(path).and_then(|mut h| h.read_to_end(&mut bytes)) {
        Ok(_) => f.set_content(bytes),
        Err(e) => {
            f.kind = FileKind::Unread {
                reason: e.to_string(),
            };
        }
    }
}
