//! What the linter looks at: elements on disk, read once, with every file's bytes, mode and
//! line index. Rules get these values and never touch the filesystem.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::diagnostic::FileId;

/// Files larger than this are not read (element files are small; a huge one is a mistake or
/// data, and reading it would only slow the linter down).
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// One file or directory of an element.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to users.
    pub path: PathBuf,
    /// The element this belongs to (index into `Workspace::elements`), if any.
    pub element: Option<usize>,
    /// Path relative to the element directory, `/`-separated (`install.d/10-foo`).
    pub rel: String,
    pub kind: FileKind,
    /// Permission bits (of the target, for symlinks).
    pub mode: u32,
    pub bytes: Vec<u8>,
    /// The content when it is valid UTF-8.
    pub text: Option<String>,
    line_starts: Vec<usize>,
    /// Shell structure (heredocs, continuations, `set` options), computed on first use.
    pub(crate) shell: std::sync::OnceLock<super::shell::ShellInfo>,
    /// The YAML parse of the content, computed on first use (several rules read it).
    pub(crate) yaml: std::sync::OnceLock<YamlParse>,
}

/// A cached YAML parse: the document (`None` for an empty one) or the error.
pub(crate) type YamlParse = Result<Option<super::yaml::Node>, super::yaml::ParseError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink {
        target: String,
        dangling: bool,
    },
    /// Too big, unreadable or special: known to exist, content unknown.
    Unread {
        reason: String,
    },
}

impl SourceFile {
    #[must_use]
    pub fn new(path: PathBuf, element: Option<usize>, rel: String, kind: FileKind) -> Self {
        Self {
            path,
            element,
            rel,
            kind,
            mode: 0,
            bytes: Vec::new(),
            text: None,
            line_starts: vec![0],
            shell: std::sync::OnceLock::new(),
            yaml: std::sync::OnceLock::new(),
        }
    }

    /// Sets the content and indexes its lines.
    pub fn set_content(&mut self, bytes: Vec<u8>) {
        self.shell = std::sync::OnceLock::new();
        self.yaml = std::sync::OnceLock::new();
        self.text = String::from_utf8(bytes.clone()).ok();
        self.line_starts = std::iter::once(0)
            .chain(
                bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        self.bytes = bytes;
    }

    /// The file name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or(&self.rel)
    }

    /// The top-level directory of the element this file is in (`install.d`), if nested.
    #[must_use]
    pub fn top_dir(&self) -> Option<&str> {
        self.rel.split_once('/').map(|(d, _)| d)
    }

    /// Whether this is a direct child of the element's top-level directory `dir`.
    #[must_use]
    pub fn is_direct_child_of(&self, dir: &str) -> bool {
        self.rel
            .strip_prefix(dir)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| !r.contains('/'))
    }

    #[must_use]
    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }

    /// Lines with their byte ranges (without the newline).
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str, Range<usize>)> {
        let text = self.text.as_deref().unwrap_or("");
        let mut start = 0;
        text.split_inclusive('\n').enumerate().map(move |(i, l)| {
            let body = l.strip_suffix('\n').unwrap_or(l);
            let range = start..start + body.len();
            start += l.len();
            (i + 1, body, range)
        })
    }

    /// The byte range of line `n` (1-based), without the newline.
    #[must_use]
    pub fn line_span(&self, n: usize) -> Range<usize> {
        let start = self
            .line_starts
            .get(n - 1)
            .copied()
            .unwrap_or(self.bytes.len());
        let end = self
            .line_starts
            .get(n)
            .map_or(self.bytes.len(), |e| e.saturating_sub(1));
        start..end.max(start)
    }

    /// 1-based line and column of a byte offset.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|s| *s <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        let col = self
            .text
            .as_deref()
            .and_then(|t| t.get(start..offset))
            .map_or(offset - start, |s| s.chars().count());
        (line.max(1), col + 1)
    }

    /// The file parsed as one YAML document, once (`None` when the file is not text).
    #[must_use]
    pub(crate) fn yaml(&self) -> Option<&YamlParse> {
        let text = self.text.as_deref()?;
        Some(self.yaml.get_or_init(|| super::yaml::parse(text)))
    }

    /// The first line, when the file is text.
    #[must_use]
    pub fn first_line(&self) -> Option<&str> {
        self.text.as_deref().map(|t| t.lines().next().unwrap_or(""))
    }
}

/// An element being linted.
#[derive(Debug, Clone)]
pub struct LintElement {
    pub name: String,
    pub dir: PathBuf,
    /// Every file and directory of the element, sorted by `rel`.
    pub files: Vec<FileId>,
    /// The element directory itself (for findings about the element as a whole).
    pub self_file: FileId,
}

/// Everything being linted.
#[derive(Debug, Default)]
pub struct Workspace {
    pub files: Vec<SourceFile>,
    pub elements: Vec<LintElement>,
    /// Names of elements that exist anywhere (lint targets, ELEMENTS_PATH, built-in library),
    /// with what each provides.
    pub known: BTreeMap<String, Vec<String>>,
    /// Variables some environment.d file of the workspace assigns (computed once on load).
    pub env_assigned: std::collections::BTreeSet<String>,
}

impl Workspace {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        self.files.len() - 1
    }

    #[must_use]
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// The file `rel` of element `e`.
    #[must_use]
    pub fn find(&self, e: &LintElement, rel: &str) -> Option<FileId> {
        e.files
            .iter()
            .copied()
            .find(|id| self.files[*id].rel == rel)
    }

    /// Whether some known element provides `name`.
    #[must_use]
    pub fn is_provided(&self, name: &str) -> bool {
        self.known.values().any(|p| p.iter().any(|x| x == name))
    }

    /// Path of a file relative to `base` when possible, for compact output.
    #[must_use]
    pub fn display(&self, id: FileId, base: &Path) -> String {
        let p = &self.files[id].path;
        p.strip_prefix(base)
            .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
    }
}
