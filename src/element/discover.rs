//! Element discovery: the only code that reads element files, from disk or from the embedded
//! library (lint's whole-tree read included, [`read_tree`]). It turns an `ELEMENTS_PATH` into a
//! [`Library`], exactly as dib's element-info does, and offers the file lookups the planner
//! needs. It must not decide anything about ordering.

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RawDir};

use super::builtin::{self, Kind};
use super::model::{
    Element, NameLine, Node, NodeKind, Origin, Root, Shadowed, Top, TopEntry, TopKind,
};
use super::parse;

/// Which built-in library is appended after `ELEMENTS_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtins {
    /// The library embedded in this binary.
    Embedded,
    /// No built-in library (`--builtins none`).
    None,
    /// Another directory used in its place (`--builtins DIR`), e.g. upstream dib's elements.
    Dir(PathBuf),
}

/// Why discovery failed. All of these are configuration or I/O errors (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ELEMENTS_PATH entry '{entry}' is not a directory")]
    NotADirectory { entry: String },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is not valid UTF-8 (dib would crash reading it)")]
    Utf8 { path: String },
}

impl Error {
    /// A one-line hint for the user.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match self {
            Error::NotADirectory { entry } if entry.is_empty() => {
                "an empty entry comes from `::` or a leading or trailing `:` in the path; remove it"
            }
            Error::NotADirectory { .. } => {
                "every ELEMENTS_PATH entry must be an existing directory; fix or drop the entry"
            }
            Error::Io { .. } => "check the file's permissions",
            Error::Utf8 { .. } => "save the file as UTF-8",
        }
    }
}

/// Every element visible on the search path, by name; the first copy of a name wins.
#[derive(Debug, Default)]
pub struct Library {
    pub elements: BTreeMap<String, Element>,
    /// The directories scanned (path entries, `--builtins DIR`), by realpath, kept open so
    /// that their elements' files are opened relative to them.
    pub(crate) entries: Vec<(PathBuf, Arc<OwnedFd>)>,
}

impl Library {
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Element> {
        self.elements.get(name)
    }

    /// Reads `element-deps` and `element-provides` of `name` unless already read. Returns
    /// whether the element exists.
    ///
    /// Discovery only lists names, so a request reads the metadata of the elements it reaches
    /// rather than of the whole path (dib reads all of them up front).
    ///
    /// # Errors
    /// A metadata file that cannot be read or is not UTF-8.
    pub fn load(&mut self, name: &str) -> Result<bool, Error> {
        let Some(element) = self.elements.get_mut(name) else {
            return Ok(false);
        };
        if !element.loaded {
            // One listing of the element directory answers which metadata files exist (most
            // elements have neither), and later which hook directories it has.
            if element.top.is_none() {
                let entry = entry_of(&self.entries, &element.root);
                element.top = list_top(&element.root, entry);
            }
            element.deps = read_names(element, "element-deps")?;
            element.provides = read_names(element, "element-provides")?;
            element.loaded = true;
        }
        Ok(true)
    }

    /// Reads the metadata of every element, as dib does at discovery.
    ///
    /// # Errors
    /// The first metadata file that cannot be read.
    pub fn load_all(&mut self) -> Result<(), Error> {
        let names: Vec<String> = self.elements.keys().cloned().collect();
        for name in names {
            self.load(&name)?;
        }
        Ok(())
    }

    /// Elements whose `element-provides` lists `name`, sorted by name (loaded ones only: call
    /// [`Library::load_all`] first for a complete answer).
    #[must_use]
    pub fn providers_of(&self, name: &str) -> Vec<&str> {
        self.elements
            .values()
            .filter(|e| e.provides_name(name))
            .map(|e| e.name.as_str())
            .collect()
    }
}

/// Splits an `ELEMENTS_PATH` value as dib does: on `:`, keeping empty fields (they are errors).
/// An unset or empty value means no user entries.
#[must_use]
pub fn split_path(value: Option<&str>) -> Vec<String> {
    match value {
        None | Some("") => Vec::new(),
        Some(v) => v.split(':').map(str::to_owned).collect(),
    }
}

/// Discovers every element on `entries` followed by the built-in library. Metadata is read
/// later, by [`Library::load`].
///
/// # Errors
/// A path entry that is not a directory or cannot be listed.
pub fn discover(entries: &[String], builtins: &Builtins) -> Result<Library, Error> {
    let mut lib = Library::default();
    for (index, entry) in entries.iter().enumerate() {
        let origin = Origin::Path {
            index,
            entry: entry.clone(),
        };
        scan_dir(&mut lib, Path::new(entry), entry, &origin)?;
    }
    match builtins {
        Builtins::None => {}
        Builtins::Dir(dir) => {
            let origin = Origin::Builtin {
                dir: Some(dir.clone()),
            };
            scan_dir(&mut lib, dir, &dir.display().to_string(), &origin)?;
        }
        Builtins::Embedded => {
            for name in builtin::element_names() {
                let root = Root::Builtin(name.to_owned());
                let origin = Origin::Builtin { dir: None };
                add(&mut lib, name.to_owned(), root, origin);
            }
        }
    }
    Ok(lib)
}

fn scan_dir(lib: &mut Library, dir: &Path, entry: &str, origin: &Origin) -> Result<(), Error> {
    let io_error = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    // One open answers whether the entry is a directory, lists it, and stays open for the
    // elements' own opens (see `Library::entries`).
    let fd = match open_at(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        // As `Path::is_dir`, whatever the open's error: anything that is not (or cannot be
        // seen to be) a directory is refused as such.
        Err(_) if !dir.is_dir() => {
            return Err(Error::NotADirectory {
                entry: entry.to_owned(),
            });
        }
        Err(source) => return Err(io_error(source)),
    };
    // Realpath → listing name. Two listing names can share a realpath (an alias symlink next
    // to its target); the element is registered once, under the realpath's basename.
    // Resolving the entry once and joining plain children onto it saves a realpath (one
    // readlink per path component) for every element; only symlinks are resolved one by one.
    let entry_real = realpath_of(&fd, dir).map_err(io_error)?;
    // In listing order: (name, the realpath of a symlink to a directory). A plain directory's
    // realpath is `entry_real` joined with its name.
    let mut items: Vec<(std::ffi::OsString, Option<PathBuf>)> = Vec::new();
    for_each_entry(&fd, io_error, |name, file_type| {
        let file_type = match file_type {
            FileType::Unknown => match lstat_type(&fd, name) {
                Ok(t) => t,
                Err(_) => return Ok(()),
            },
            t => t,
        };
        let name = OsStr::from_bytes(name.to_bytes());
        if file_type == FileType::Directory {
            items.push((name.to_owned(), None));
        } else if file_type == FileType::Symlink {
            let link = dir.join(name);
            if !link.is_dir() {
                return Ok(());
            }
            let Ok(target) = fs::canonicalize(&link) else {
                return Ok(());
            };
            items.push((name.to_owned(), Some(target)));
        }
        Ok(())
    })?;
    lib.entries.push((entry_real.clone(), Arc::new(fd)));
    if items.iter().all(|(_, target)| target.is_none()) {
        // No symlinks (the usual case): names are unique within a listing, so every directory
        // is an element under its own name, and no realpaths need comparing.
        for (name, _) in items {
            let real = entry_real.join(&name);
            add(
                lib,
                name.to_string_lossy().into_owned(),
                Root::Disk(real),
                origin.clone(),
            );
        }
        return Ok(());
    }
    let mut found: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (name, target) in items {
        let real = target.unwrap_or_else(|| entry_real.join(&name));
        found.insert(real, name.to_string_lossy().into_owned());
    }
    // Within one entry, two different realpaths can still share a basename (two aliases into
    // different trees). dib keeps whichever `listdir` returns last, which depends on the
    // filesystem; dibkit keeps the one whose listing name equals its real name, then the
    // lexically greatest realpath, so the result never changes between runs.
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (real, listed) in found {
        let Some(name) = real.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let keep_new = match by_name.get(&name) {
            None => true,
            Some(old) => listed == name || old.file_name().is_none(),
        };
        if keep_new {
            by_name.insert(name, real);
        }
    }
    for (name, real) in by_name {
        add(lib, name, Root::Disk(real), origin.clone());
    }
    Ok(())
}

fn add(lib: &mut Library, name: String, root: Root, origin: Origin) {
    if let Some(winner) = lib.elements.get_mut(&name) {
        // An earlier path entry already has this name: it wins, and hides this copy.
        if winner.root != root {
            winner.shadows.push(Shadowed { root, origin });
        }
        return;
    }
    lib.elements.insert(
        name.clone(),
        Element {
            name,
            root,
            origin,
            deps: Vec::new(),
            provides: Vec::new(),
            shadows: Vec::new(),
            loaded: false,
            top: None,
        },
    );
}

fn read_names(element: &Element, file: &str) -> Result<Vec<NameLine>, Error> {
    let root = &element.root;
    match read_top(element, file)? {
        None => Ok(Vec::new()),
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| Error::Utf8 {
                path: root.display_path(file),
            })?;
            Ok(parse::name_list(&text))
        }
    }
}

/// The entries of an element directory on disk, sorted by name, with the listing's own file
/// types (no stat per entry), and the open entry directory that holds it. `None` for
/// built-ins and when the directory cannot be listed: callers then ask the filesystem path
/// by path, as before, and report its errors.
fn list_top(root: &Root, entry: Option<Arc<OwnedFd>>) -> Option<Top> {
    let Root::Disk(dir) = root else {
        return None;
    };
    let fd = open_under(
        entry.as_deref(),
        dir,
        "",
        OFlags::RDONLY | OFlags::DIRECTORY,
    )
    .ok()?;
    let mut entries = Vec::new();
    for_each_entry(
        &fd,
        |_| (),
        |name, file_type| {
            let file_type = match file_type {
                FileType::Unknown => lstat_type(&fd, name).map_err(|_| ())?,
                t => t,
            };
            let kind = match file_type {
                FileType::Symlink => TopKind::Symlink,
                FileType::Directory => TopKind::Dir,
                _ => TopKind::Other,
            };
            entries.push(TopEntry {
                name: name.to_string_lossy().into_owned(),
                kind,
            });
            Ok(())
        },
    )
    .ok()?;
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Some(Top { entries, entry })
}

/// The open entry directory of `entries` that holds the element directory `root` under its
/// own name, if any.
fn entry_of(entries: &[(PathBuf, Arc<OwnedFd>)], root: &Root) -> Option<Arc<OwnedFd>> {
    let Root::Disk(dir) = root else {
        return None;
    };
    let parent = dir.parent()?.as_os_str();
    entries
        .iter()
        .find(|(path, _)| path.as_os_str() == parent)
        .map(|(_, fd)| Arc::clone(fd))
}

/// Opens `path`, relative to `at` unless absolute, close-on-exec.
fn open_at(at: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        at,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `rel` of the element directory `dir` (`""`: the directory itself): relative to
/// `entry`, the open directory holding `dir`, when there is one, else by absolute path.
fn open_under(
    entry: Option<&OwnedFd>,
    dir: &Path,
    rel: &str,
    flags: OFlags,
) -> io::Result<OwnedFd> {
    match (entry, dir.file_name()) {
        (Some(entry), Some(name)) => {
            let mut path = PathBuf::from(name);
            if !rel.is_empty() {
                path.push(rel);
            }
            open_at(entry.as_fd(), &path, flags)
        }
        _ if rel.is_empty() => open_at(CWD, dir, flags),
        _ => open_at(CWD, &dir.join(rel), flags),
    }
}

/// The realpath of the directory open as `fd` (at `path`): the kernel's name for the open
/// descriptor, one readlink, else `fs::canonicalize` (one readlink per component), e.g.
/// without /proc.
fn realpath_of(fd: &OwnedFd, path: &Path) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd as _;
    if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        if real.is_absolute() && !real.as_os_str().as_bytes().ends_with(b" (deleted)") {
            return Ok(real);
        }
    }
    fs::canonicalize(path)
}

/// Calls `each` with the name and listed type of every entry of the open directory `dir`
/// but `.` and `..`, in listing order: getdents64 into one buffer, no stat, no allocation.
/// A listing error goes through `listing_error`; the first `Err` of `each` stops the walk.
fn for_each_entry<E>(
    dir: &OwnedFd,
    listing_error: impl Fn(io::Error) -> E,
    mut each: impl FnMut(&CStr, FileType) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
    let mut listing = RawDir::new(dir.as_fd(), &mut buf);
    while let Some(item) = listing.next() {
        let item = item.map_err(|e| listing_error(e.into()))?;
        // The position after the entry: the largest one is the end of the directory
        // (ext4's hashed directories, which this machine's small directories are, say so on
        // their last entry), so a listing that fitted the buffer needs no second getdents64
        // to learn that nothing follows.
        let last = item.next_entry_cookie() == END_OF_DIRECTORY;
        let name = item.file_name();
        if name != c"." && name != c".." {
            each(name, item.file_type())?;
        }
        if last && listing.is_buffer_empty() {
            break;
        }
    }
    Ok(())
}

/// The directory position past the last entry (`LLONG_MAX`, ext4's end of a hashed
/// directory for 64-bit callers): nothing can follow it.
const END_OF_DIRECTORY: u64 = i64::MAX as u64;

/// The type of `name` in the open directory `dir`, symlinks not followed (for filesystems
/// whose listings carry no types).
fn lstat_type(dir: &OwnedFd, name: &CStr) -> io::Result<FileType> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode))
}

/// [`read`] for a file at the top of an element directory (`element-deps`, `hook-calls`):
/// when the element's listing is known and has no such name, the file does not exist and
/// nothing is opened.
///
/// # Errors
/// As [`read`].
pub fn read_top(element: &Element, file: &str) -> Result<Option<Vec<u8>>, Error> {
    let mut entry = None;
    if let Some(top) = &element.top {
        if !top.entries.iter().any(|e| e.name == file) {
            return Ok(None);
        }
        entry = top.entry.as_deref();
    }
    read_from(entry, &element.root, file)
}

/// Reads the file `rel` of an element. `Ok(None)` when it does not exist.
///
/// # Errors
/// Any I/O error other than "not found", including `rel` being a directory.
pub fn read(root: &Root, rel: &str) -> Result<Option<Vec<u8>>, Error> {
    read_from(None, root, rel)
}

/// [`read`], relative to the open entry directory holding the element when there is one.
fn read_from(entry: Option<&OwnedFd>, root: &Root, rel: &str) -> Result<Option<Vec<u8>>, Error> {
    match root {
        Root::Disk(dir) => match read_plain(entry, dir, rel) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                path: root.display_path(rel),
                source,
            }),
        },
        Root::Builtin(name) => match resolve_builtin(&format!("{name}/{rel}")) {
            Some(e) if e.kind == Kind::File => Ok(Some(e.data.to_vec())),
            Some(_) => Err(Error::Io {
                path: root.display_path(rel),
                source: io::Error::other("not a regular file"),
            }),
            None => Ok(None),
        },
    }
}

/// The bytes of `rel` of the element directory `dir`, with plain reads: `fs::read` first
/// asks the file's size (a stat, and a seek), which for the small metadata files of elements
/// costs more than it saves.
fn read_plain(entry: Option<&OwnedFd>, dir: &Path, rel: &str) -> io::Result<Vec<u8>> {
    let file = open_under(entry, dir, rel, OFlags::RDONLY)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match rustix::io::read(&file, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a path resolves to after following every symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    File { executable: bool },
    Dir,
    Other,
}

/// Follows symlinks inside the embedded library (targets are relative to the link's directory).
fn resolve_builtin(path: &str) -> Option<&'static builtin::Entry> {
    let mut current = path.to_owned();
    for _ in 0..32 {
        // Resolve symlinks in the parent directories first.
        let mut prefix = String::new();
        let mut rebuilt = None;
        let parts: Vec<&str> = current.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let candidate = if prefix.is_empty() {
                (*part).to_owned()
            } else {
                format!("{prefix}/{part}")
            };
            let entry = builtin::get(&candidate)?;
            if let Kind::Symlink(target) = entry.kind {
                let base = prefix.clone();
                let mut joined = normalize(&base, target)?;
                for rest in &parts[i + 1..] {
                    joined = format!("{joined}/{rest}");
                }
                rebuilt = Some(joined);
                break;
            }
            prefix = candidate;
        }
        match rebuilt {
            Some(next) => current = next,
            None => return builtin::get(&current),
        }
    }
    None
}

/// Joins a relative symlink `target` onto `base` lexically; `None` if it leaves the library or
/// is absolute.
fn normalize(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Follows every symlink of `rel` under `root`. `None` if it does not exist or dangles.
#[must_use]
pub fn resolve(root: &Root, rel: &str) -> Option<Resolved> {
    match root {
        Root::Disk(dir) => resolve_host(&dir.join(rel)),
        Root::Builtin(name) => {
            let e = resolve_builtin(&format!("{name}/{rel}"))?;
            Some(match e.kind {
                Kind::File => Resolved::File {
                    executable: e.mode & 0o111 != 0,
                },
                Kind::Dir => Resolved::Dir,
                Kind::Symlink(_) => Resolved::Other,
            })
        }
    }
}

/// Follows every symlink of a host path.
#[must_use]
pub fn resolve_host(path: &Path) -> Option<Resolved> {
    let meta = fs::metadata(path).ok()?;
    Some(if meta.is_file() {
        Resolved::File {
            executable: meta.permissions().mode() & 0o111 != 0,
        }
    } else if meta.is_dir() {
        Resolved::Dir
    } else {
        Resolved::Other
    })
}

/// The direct children of directory `rel` of an element (symlinks not followed), sorted by
/// name. A missing directory has no children.
///
/// # Errors
/// The directory exists but cannot be read.
pub fn list(root: &Root, rel: &str) -> Result<Vec<Node>, Error> {
    list_from(None, root, rel)
}

/// [`list`] for a discovered element, relative to the open entry directory that holds it
/// when [`Library::load`] found one.
///
/// # Errors
/// As [`list`].
pub fn element_list(element: &Element, rel: &str) -> Result<Vec<Node>, Error> {
    list_from(element_entry(element), &element.root, rel)
}

/// The open entry directory holding a loaded element's directory, if any.
pub(crate) fn element_entry(element: &Element) -> Option<&OwnedFd> {
    element.top.as_ref().and_then(|t| t.entry.as_deref())
}

/// [`list`], relative to `entry`, the open directory holding the element directory, when
/// there is one.
///
/// # Errors
/// As [`list`].
pub(crate) fn list_from(
    entry: Option<&OwnedFd>,
    root: &Root,
    rel: &str,
) -> Result<Vec<Node>, Error> {
    let mut out = Vec::new();
    match root {
        Root::Disk(dir) => {
            let listing_error = |source| Error::Io {
                path: root.display_path(rel),
                source,
            };
            let fd = match open_under(entry, dir, rel, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(source) => return Err(listing_error(source)),
            };
            for_each_entry(&fd, listing_error, |name, file_type| {
                let item_error = |source| {
                    let base = if rel.is_empty() {
                        dir.clone()
                    } else {
                        dir.join(rel)
                    };
                    Error::Io {
                        path: base
                            .join(OsStr::from_bytes(name.to_bytes()))
                            .display()
                            .to_string(),
                        source,
                    }
                };
                // The type comes with the listing, and a file's mode from a stat relative to
                // the open directory: no path walk per entry (`order` lists every hook
                // directory of the set, in a library that may sit deep in a venv).
                let file_type = match file_type {
                    FileType::Unknown => lstat_type(&fd, name).map_err(item_error)?,
                    t => t,
                };
                let kind = match file_type {
                    FileType::Symlink => {
                        let target = rustix::fs::readlinkat(&fd, name, Vec::new())
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        NodeKind::Symlink { target }
                    }
                    FileType::Directory => NodeKind::Dir,
                    FileType::RegularFile => {
                        let st = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| item_error(e.into()))?;
                        NodeKind::File {
                            executable: st.st_mode & 0o111 != 0,
                        }
                    }
                    _ => NodeKind::Other,
                };
                out.push(Node {
                    name: name.to_string_lossy().into_owned(),
                    kind,
                });
                Ok(())
            })?;
        }
        Root::Builtin(name) => {
            let base = if rel.is_empty() {
                name.clone()
            } else {
                format!("{name}/{rel}")
            };
            // The directory itself may be a symlink inside the library.
            let dir_path = match builtin::get(&base) {
                Some(e) if matches!(e.kind, Kind::Symlink(_)) => match resolve_builtin(&base) {
                    Some(t) if t.kind == Kind::Dir => t.path.to_owned(),
                    _ => return Ok(out),
                },
                _ => base,
            };
            for (child, e) in builtin::children(&dir_path) {
                let kind = match e.kind {
                    Kind::File => NodeKind::File {
                        executable: e.mode & 0o111 != 0,
                    },
                    Kind::Dir => NodeKind::Dir,
                    Kind::Symlink(t) => NodeKind::Symlink {
                        target: t.to_owned(),
                    },
                };
                out.push(Node {
                    name: child.to_owned(),
                    kind,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

/// The element's top-level directories that dib merges into the hooks tree: every directory
/// (symlinks followed, dot-directories included) except `tests` and `__pycache__`.
///
/// # Errors
/// The element directory cannot be read.
pub fn hook_dirs(root: &Root) -> Result<Vec<String>, Error> {
    Ok(list(root, "")?
        .into_iter()
        .filter(|n| n.name != "tests" && n.name != "__pycache__")
        .filter(|n| match &n.kind {
            NodeKind::Dir => true,
            NodeKind::Symlink { .. } => resolve(root, &n.name) == Some(Resolved::Dir),
            _ => false,
        })
        .map(|n| n.name)
        .collect())
}

/// [`hook_dirs`] of a discovered element, from its listing when [`Library::load`] has made
/// one (no second listing of the element directory).
///
/// # Errors
/// The element directory cannot be read.
pub fn element_hook_dirs(element: &Element) -> Result<Vec<String>, Error> {
    let Some(top) = &element.top else {
        return hook_dirs(&element.root);
    };
    Ok(top
        .entries
        .iter()
        .filter(|e| e.name != "tests" && e.name != "__pycache__")
        .filter(|e| match e.kind {
            TopKind::Dir => true,
            TopKind::Symlink => resolve(&element.root, &e.name) == Some(Resolved::Dir),
            TopKind::Other => false,
        })
        .map(|e| e.name.clone())
        .collect())
}

/// Copies `rel` (a file, symlink or directory) of an element to `dest`, as `cp -a` would:
/// modes kept, symlinks copied as symlinks, directories merged into an existing `dest`.
///
/// # Errors
/// Reading the element or writing `dest`.
pub fn copy_out(root: &Root, rel: &str, dest: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    match root {
        Root::Disk(dir) => copy_disk(&dir.join(rel), dest).map_err(io(dest)),
        Root::Builtin(name) => {
            let base = if rel.is_empty() {
                name.clone()
            } else {
                format!("{name}/{rel}")
            };
            let Some(top) = builtin::get(&base) else {
                return Ok(());
            };
            write_builtin(top, dest).map_err(io(dest))?;
            if top.kind == Kind::Dir {
                let prefix = format!("{base}/");
                for e in builtin::ENTRIES
                    .iter()
                    .filter(|e| e.path.starts_with(&prefix))
                {
                    let target = dest.join(&e.path[prefix.len()..]);
                    write_builtin(e, &target).map_err(io(&target))?;
                }
            }
            Ok(())
        }
    }
}

/// Refuses to merge a directory into `dest` when `dest` is a symlink: following it could
/// write outside the tree being assembled. A file or link replaces an existing link.
fn guard_dest(dest: &Path, is_dir: bool) -> io::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(dest) {
        if meta.file_type().is_symlink() {
            if is_dir {
                return Err(io::Error::other(format!(
                    "{} is a symlink another element ships; refusing to merge a directory through it",
                    dest.display()
                )));
            }
            fs::remove_file(dest)?;
        } else if !is_dir && meta.is_file() {
            fs::remove_file(dest)?;
        }
    }
    Ok(())
}

fn write_builtin(e: &builtin::Entry, dest: &Path) -> io::Result<()> {
    guard_dest(dest, e.kind == Kind::Dir)?;
    match e.kind {
        Kind::Dir => {
            fs::create_dir_all(dest)?;
            fs::set_permissions(dest, fs::Permissions::from_mode(e.mode))
        }
        Kind::File => {
            fs::write(dest, e.data)?;
            fs::set_permissions(dest, fs::Permissions::from_mode(e.mode))
        }
        Kind::Symlink(target) => std::os::unix::fs::symlink(target, dest),
    }
}

fn copy_disk(src: &Path, dest: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    guard_dest(dest, ft.is_dir())?;
    if ft.is_symlink() {
        let target = fs::read_link(src)?;
        if fs::symlink_metadata(dest).is_ok() {
            fs::remove_file(dest)?;
        }
        std::os::unix::fs::symlink(target, dest)
    } else if ft.is_dir() {
        fs::create_dir_all(dest)?;
        fs::set_permissions(dest, meta.permissions())?;
        let mut entries: Vec<_> = fs::read_dir(src)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            copy_disk(&entry.path(), &dest.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(src, dest)?;
        fs::set_permissions(dest, meta.permissions())
    }
}

/// One entry of an element directory read whole, for tools that look at every file (lint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: PathBuf,
    /// Relative to the element directory, `/`-separated (`install.d/10-foo`).
    pub rel: String,
    pub kind: TreeKind,
    /// Permission bits (of the target, for symlinks that resolve).
    pub mode: u32,
    pub content: Content,
}

/// What a [`TreeEntry`] is, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeKind {
    File,
    Dir,
    Symlink {
        target: String,
        dangling: bool,
    },
    /// Sockets, fifos, devices.
    Other,
}

/// The bytes of a [`TreeEntry`], when it is (or links to) a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not a file: nothing to read.
    None,
    Bytes(Vec<u8>),
    /// Known to exist but not read: too big or unreadable.
    Unread(String),
}

/// Reads every file and directory under an element directory, depth first, each directory's
/// entries sorted by name. `skip_top` names top-level entries to leave out; files larger than
/// `max_size` are not read. Unreadable directories are left out; the walk keeps going.
#[must_use]
pub fn read_tree(dir: &Path, skip_top: &[&str], max_size: u64) -> Vec<TreeEntry> {
    let mut out = Vec::new();
    walk_tree(dir, "", skip_top, max_size, 0, &mut out);
    out
}

fn walk_tree(
    dir: &Path,
    rel: &str,
    skip_top: &[&str],
    max_size: u64,
    depth: usize,
    out: &mut Vec<TreeEntry>,
) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = listing.filter_map(Result::ok).collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if depth == 0 && skip_top.contains(&name.as_str()) {
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
            let (mode, content) = match resolved {
                Ok(m) if m.is_file() => (
                    m.permissions().mode(),
                    read_capped(&path, m.len(), max_size),
                ),
                Ok(m) => (m.permissions().mode(), Content::None),
                Err(_) => (0, Content::None),
            };
            out.push(TreeEntry {
                path,
                rel: child_rel,
                kind: TreeKind::Symlink { target, dangling },
                mode,
                content,
            });
        } else if lmeta.is_dir() {
            out.push(TreeEntry {
                path: path.clone(),
                rel: child_rel.clone(),
                kind: TreeKind::Dir,
                mode: lmeta.permissions().mode(),
                content: Content::None,
            });
            if depth < 16 {
                walk_tree(&path, &child_rel, skip_top, max_size, depth + 1, out);
            }
        } else if lmeta.is_file() {
            let content = read_capped(&path, lmeta.len(), max_size);
            out.push(TreeEntry {
                path,
                rel: child_rel,
                kind: TreeKind::File,
                mode: lmeta.permissions().mode(),
                content,
            });
        } else {
            out.push(TreeEntry {
                path,
                rel: child_rel,
                kind: TreeKind::Other,
                mode: lmeta.permissions().mode(),
                content: Content::Unread("not a regular file".to_owned()),
            });
        }
    }
}

fn read_capped(path: &Path, len: u64, max_size: u64) -> Content {
    if len > max_size {
        return Content::Unread(format!("larger than {} MiB", max_size / 1024 / 1024));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    match fs::File::open(path).and_then(|mut h| io::Read::read_to_end(&mut h, &mut bytes)) {
        Ok(_) => Content::Bytes(bytes),
        Err(e) => Content::Unread(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_keeps_empty_fields() {
        assert_eq!(split_path(None), Vec::<String>::new());
        assert_eq!(split_path(Some("")), Vec::<String>::new());
        assert_eq!(split_path(Some("a::b")), ["a", "", "b"]);
        assert_eq!(split_path(Some("a:")), ["a", ""]);
    }

    /// Reading an entry through its open descriptor gives the same realpath as
    /// `fs::canonicalize`, also when the entry is reached through a symlink, and an element
    /// listed relative to the open entry lists as by its absolute path.
    #[test]
    fn open_entry_resolves_and_lists_as_paths_do() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("lib");
        fs::create_dir_all(real.join("e/install.d")).unwrap();
        fs::write(real.join("e/install.d/10-a"), "").unwrap();
        fs::set_permissions(
            real.join("e/install.d/10-a"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::write(real.join("e/install.d/20-b"), "").unwrap();
        std::os::unix::fs::symlink("10-a", real.join("e/install.d/30-c")).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let fd = open_at(CWD, &link, OFlags::RDONLY | OFlags::DIRECTORY).unwrap();
        let resolved = realpath_of(&fd, &link).unwrap();
        assert_eq!(resolved, fs::canonicalize(&link).unwrap());

        let root = Root::Disk(resolved.join("e"));
        let by_path = list(&root, "install.d").unwrap();
        assert_eq!(list_from(Some(&fd), &root, "install.d").unwrap(), by_path);
        let kinds: Vec<(&str, &NodeKind)> =
            by_path.iter().map(|n| (n.name.as_str(), &n.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("10-a", &NodeKind::File { executable: true }),
                ("20-b", &NodeKind::File { executable: false }),
                (
                    "30-c",
                    &NodeKind::Symlink {
                        target: "10-a".to_owned()
                    }
                ),
            ]
        );
        assert_eq!(
            read_from(Some(&fd), &root, "install.d/10-a").unwrap(),
            Some(Vec::new())
        );
        assert_eq!(read_from(Some(&fd), &root, "missing").unwrap(), None);
    }

    #[test]
    fn normalize_stays_inside() {
        assert_eq!(normalize("a/b", "../c").as_deref(), Some("a/c"));
        assert_eq!(normalize("a", "../../c"), None);
        assert_eq!(normalize("a", "/abs"), None);
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;

    /// A whole built-in element is written out with its modes.
    #[test]
    fn builtin_element_copies_out_whole() {
        let Some(name) = builtin::element_names().next() else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join(name);
        copy_out(&Root::Builtin(name.to_owned()), "", &dest).unwrap();
        assert!(dest.join("README.rst").is_file());
        let hooks = builtin::ENTRIES
            .iter()
            .filter(|e| {
                e.path.starts_with(&format!("{name}/"))
                    && e.kind == Kind::File
                    && e.mode & 0o111 != 0
            })
            .count();
        let mut copied = 0;
        for e in builtin::ENTRIES
            .iter()
            .filter(|e| e.path.starts_with(&format!("{name}/")) && e.kind == Kind::File)
        {
            let p = tmp.path().join(e.path);
            assert!(p.is_file(), "{}", p.display());
            if fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0 {
                copied += 1;
            }
        }
        assert_eq!(copied, hooks);
    }
}
