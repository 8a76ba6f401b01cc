//! The element model shared by `order`, `lint` and `build`: what an element is, where it came
//! from, and what its files look like. No I/O happens here; `discover.rs` fills these values.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The phases dib runs, in run order, with where each runs.
pub const PHASES: [Phase; 10] = [
    Phase::new("root.d", false),
    Phase::new("extra-data.d", false),
    Phase::new("pre-install.d", true),
    Phase::new("install.d", true),
    Phase::new("post-install.d", true),
    Phase::new("post-root.d", false),
    Phase::new("block-device.d", false),
    Phase::new("pre-finalise.d", false),
    Phase::new("finalise.d", true),
    Phase::new("cleanup.d", false),
];

/// One of dib's phase directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// Directory name, e.g. `install.d`.
    pub dir: &'static str,
    /// Whether dib runs it inside the image chroot.
    pub chroot: bool,
}

impl Phase {
    const fn new(dir: &'static str, chroot: bool) -> Self {
        Self { dir, chroot }
    }

    /// The phase with directory name `name` (`install.d`; `install` is accepted too).
    #[must_use]
    pub fn find(name: &str) -> Option<Self> {
        PHASES
            .iter()
            .copied()
            .find(|p| p.dir == name || p.dir.strip_suffix(".d") == Some(name))
    }
}

/// Where an element's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A directory on disk (already a realpath).
    Disk(PathBuf),
    /// An element of the library embedded in the binary, by name.
    Builtin(String),
}

impl Root {
    /// How paths under this root are shown to users.
    #[must_use]
    pub fn display_path(&self, rel: &str) -> String {
        match self {
            Root::Disk(p) if rel.is_empty() => p.display().to_string(),
            Root::Disk(p) => p.join(rel).display().to_string(),
            Root::Builtin(name) if rel.is_empty() => format!("builtin:{name}"),
            Root::Builtin(name) => format!("builtin:{name}/{rel}"),
        }
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_path(""))
    }
}

/// Which part of the search path an element was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The `index`-th entry of `ELEMENTS_PATH`, as the user wrote it.
    Path { index: usize, entry: String },
    /// The built-in library: the embedded one (`dir == None`) or `--builtins DIR`.
    Builtin { dir: Option<PathBuf> },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Path { entry, .. } => f.write_str(entry),
            Origin::Builtin { dir: None } => f.write_str("builtin"),
            Origin::Builtin { dir: Some(d) } => write!(f, "builtin ({})", d.display()),
        }
    }
}

/// A name read from `element-deps` or `element-provides`, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameLine {
    pub name: String,
    pub line: usize,
}

/// An element as discovered: identity, origin and its dependency metadata.
#[derive(Debug, Clone)]
pub struct Element {
    /// The basename of the element directory's realpath: dib's name for it.
    pub name: String,
    pub root: Root,
    pub origin: Origin,
    /// `element-deps`, in file order, duplicates removed (dib reads it as a set).
    pub deps: Vec<NameLine>,
    /// `element-provides`, in file order, duplicates removed.
    pub provides: Vec<NameLine>,
    /// Other copies with the same name later on the search path, which this one hides.
    pub shadows: Vec<Shadowed>,
    /// Whether `deps` and `provides` have been read (discovery reads them on first use).
    pub loaded: bool,
}

impl Element {
    /// Whether `element-deps` lists `name`.
    #[must_use]
    pub fn depends_on(&self, name: &str) -> bool {
        self.deps.iter().any(|d| d.name == name)
    }

    /// Whether `element-provides` lists `name`.
    #[must_use]
    pub fn provides_name(&self, name: &str) -> bool {
        self.provides.iter().any(|d| d.name == name)
    }
}

/// A hidden copy of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    pub root: Root,
    pub origin: Origin,
}

/// What a directory entry inside an element is, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File {
        executable: bool,
    },
    Dir,
    Symlink {
        target: String,
    },
    /// Sockets, fifos, devices: never hooks.
    Other,
}

/// A direct child of one of an element's top-level directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
}
