//! The element model shared by `order`, `lint` and `build`: what an element is, where it came
//! from, and what its files look like. No I/O happens here; `discover.rs` fills these values.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// One of dib's ten phase directories. Every fact about a phase lives here, once: its
/// directory name, where it runs, what it is for and (through [`Phase::ALL`]) its run order.
/// Serialised as the directory name (`install.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    RootD,
    ExtraDataD,
    PreInstallD,
    InstallD,
    PostInstallD,
    PostRootD,
    BlockDeviceD,
    PreFinaliseD,
    FinaliseD,
    CleanupD,
}

impl Phase {
    /// Every phase, in the order dib runs them.
    pub const ALL: [Phase; 10] = [
        Phase::RootD,
        Phase::ExtraDataD,
        Phase::PreInstallD,
        Phase::InstallD,
        Phase::PostInstallD,
        Phase::PostRootD,
        Phase::BlockDeviceD,
        Phase::PreFinaliseD,
        Phase::FinaliseD,
        Phase::CleanupD,
    ];

    /// The phases package-installs acts in (its `phase:` key names one of these).
    pub const PACKAGE_INSTALLS: [Phase; 3] =
        [Phase::PreInstallD, Phase::InstallD, Phase::PostInstallD];

    /// The directory name, e.g. `install.d`.
    #[must_use]
    pub const fn dir(self) -> &'static str {
        match self {
            Phase::RootD => "root.d",
            Phase::ExtraDataD => "extra-data.d",
            Phase::PreInstallD => "pre-install.d",
            Phase::InstallD => "install.d",
            Phase::PostInstallD => "post-install.d",
            Phase::PostRootD => "post-root.d",
            Phase::BlockDeviceD => "block-device.d",
            Phase::PreFinaliseD => "pre-finalise.d",
            Phase::FinaliseD => "finalise.d",
            Phase::CleanupD => "cleanup.d",
        }
    }

    /// Whether dib runs it inside the image chroot (otherwise on the build host).
    #[must_use]
    pub const fn chroot(self) -> bool {
        matches!(
            self,
            Phase::PreInstallD | Phase::InstallD | Phase::PostInstallD | Phase::FinaliseD
        )
    }

    /// Whether dib sets `TARGET_ROOT` for it (two of the host-side phases).
    #[must_use]
    pub const fn target_root(self) -> bool {
        matches!(self, Phase::RootD | Phase::CleanupD)
    }

    /// What the phase is for, in a few words.
    #[must_use]
    pub const fn purpose(self) -> &'static str {
        match self {
            Phase::RootD => "create or adjust the image's root filesystem before anything else",
            Phase::ExtraDataD => {
                "copy data from the build host into the hooks tree for later phases"
            }
            Phase::PreInstallD => {
                "prepare package installation (repositories, keys, configuration)"
            }
            Phase::InstallD => "install and configure software",
            Phase::PostInstallD => "enable services and adjust what install.d put in place",
            Phase::PostRootD => "inspect or adjust the finished root tree from the host",
            Phase::BlockDeviceD => "customise the block device (legacy; prefer block-device YAML)",
            Phase::PreFinaliseD => "work on the image's block device before finalise.d",
            Phase::FinaliseD => "final configuration on the mounted image filesystem",
            Phase::CleanupD => "clean up the image root after everything else",
        }
    }

    /// The phase with directory name `name` (`install.d`; `install` is accepted too).
    #[must_use]
    pub fn find(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.dir() == name || p.dir().strip_suffix(".d") == Some(name))
    }

    /// The phase whose directory is exactly `dir` (`install.d`, not `install`).
    #[must_use]
    pub fn from_dir(dir: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.dir() == dir)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.dir())
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

/// A name read from `element-deps` or `element-provides`, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameLine {
    pub name: String,
    /// 1-based, counting `\r\n`, `\r` and `\n` as line ends (as dib does).
    pub line: usize,
    /// The name's byte range in the file.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
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
    /// The element directory's entries, listed once when its metadata is read (on disk only;
    /// `None` before that, for built-ins, or when the listing failed). Later lookups of its
    /// top-level files and directories use it instead of asking the filesystem again.
    pub(crate) top: Option<Top>,
}

/// An element directory's listing, and where its files are opened from.
#[derive(Debug, Clone)]
pub(crate) struct Top {
    /// The entries, sorted by name.
    pub(crate) entries: Vec<TopEntry>,
    /// The open `ELEMENTS_PATH` entry (or `--builtins` directory) that holds the element
    /// directory under its own name, when it does (not for an element reached through a
    /// symlink): the element's paths are opened relative to it, a walk of two or three
    /// components rather than of the whole absolute path.
    pub(crate) entry: Option<Arc<OwnedFd>>,
}

/// One entry of an element directory as its listing gives it: no stat, no symlink followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopEntry {
    pub(crate) name: String,
    pub(crate) kind: TopKind,
}

/// What a [`TopEntry`] is, from the directory listing's own file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopKind {
    Dir,
    Symlink,
    Other,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_in_dib_order_and_round_trip() {
        let dirs: Vec<&str> = Phase::ALL.iter().map(|p| p.dir()).collect();
        assert_eq!(
            dirs,
            [
                "root.d",
                "extra-data.d",
                "pre-install.d",
                "install.d",
                "post-install.d",
                "post-root.d",
                "block-device.d",
                "pre-finalise.d",
                "finalise.d",
                "cleanup.d"
            ]
        );
        for p in Phase::ALL {
            assert_eq!(Phase::find(p.dir()), Some(p));
            assert_eq!(Phase::from_dir(p.dir()), Some(p));
            assert_eq!(Phase::find(p.dir().strip_suffix(".d").unwrap()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.dir())
            );
            assert!(!p.purpose().is_empty());
        }
        assert_eq!(Phase::from_dir("install"), None);
        assert_eq!(Phase::find("environment.d"), None);
        let chroot: Vec<Phase> = Phase::ALL.into_iter().filter(|p| p.chroot()).collect();
        assert_eq!(
            chroot,
            [
                Phase::PreInstallD,
                Phase::InstallD,
                Phase::PostInstallD,
                Phase::FinaliseD
            ]
        );
    }
}
