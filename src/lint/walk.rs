//! Reads lint targets from disk into a [`Workspace`]: the only file reader of the linter.
//! A target is an element, a folder of elements, or a repository with an `elements/` folder.

use std::fs;
use std::path::{Path, PathBuf};

use crate::element::discover::{self, Content, TreeKind};
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

/// Reads one element into the workspace (through `element::discover::read_tree`, the one
/// reader of element files).
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
    for entry in discover::read_tree(dir, SKIP_DIRS, MAX_FILE_SIZE) {
        let kind = match entry.kind {
            TreeKind::File | TreeKind::Other => FileKind::File,
            TreeKind::Dir => FileKind::Dir,
            TreeKind::Symlink { target, dangling } => FileKind::Symlink { target, dangling },
        };
        let mut f = SourceFile::new(entry.path, Some(index), entry.rel, kind);
        f.mode = entry.mode;
        match entry.content {
            Content::None => {}
            Content::Bytes(bytes) => f.set_content(bytes),
            Content::Unread(reason) => f.kind = FileKind::Unread { reason },
        }
        files.push(ws.add(f));
    }
    files.sort_by(|a, b| ws.files[*a].rel.cmp(&ws.files[*b].rel));
    ws.elements.push(LintElement {
        name,
        dir: dir.to_path_buf(),
        files,
        self_file,
    });
}
