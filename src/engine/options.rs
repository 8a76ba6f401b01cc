//! What to build, fully resolved: the command line and every environment variable the
//! build honours are read once, at the CLI edge (`cli/build.rs`), into [`Options`]. Nothing
//! below reads the caller's environment for a setting, so `--dry-run` shows what the build
//! will use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::blockdev::config::Config;
use crate::order::tree::NameFilter;

/// An output type (`-t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    /// The root filesystem tree, as a tar.
    Tar,
    Qcow2,
    Raw,
    /// A VHD disk image (qemu-img's `vpc`).
    Vhd,
}

impl OutputType {
    /// Every type the engine writes, in `--help` order.
    pub const ALL: [OutputType; 4] = [Self::Tar, Self::Qcow2, Self::Raw, Self::Vhd];

    /// The name on the command line, also the output file's extension.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tar => "tar",
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
            Self::Vhd => "vhd",
        }
    }

    /// qemu-img's format name for a type written from the disk image; `None` for `tar`.
    #[must_use]
    pub fn disk_format(self) -> Option<&'static str> {
        match self {
            Self::Tar => None,
            Self::Qcow2 => Some("qcow2"),
            Self::Raw => Some("raw"),
            Self::Vhd => Some("vpc"),
        }
    }

    /// Whether the type is written from the disk image (not from the tree).
    #[must_use]
    pub fn is_disk(self) -> bool {
        self.disk_format().is_some()
    }
}

impl fmt::Display for OutputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An output type the engine does not write.
#[derive(Debug, thiserror::Error)]
#[error("output type `{0}` is not supported yet; this build engine writes: tar, qcow2, raw, vhd")]
pub struct UnknownType(pub String);

impl FromStr for OutputType {
    type Err = UnknownType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownType(s.to_owned()))
    }
}

/// Where the library after the user's `ELEMENTS_PATH` entries comes from (`--builtins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Library {
    /// dibkit's own elements, written into the build directory for hooks that read element
    /// directories.
    Embedded,
    /// An elements directory used in their place (e.g. an installed dib's).
    Dir(PathBuf),
    /// No library: the user's entries only.
    None,
}

/// The disk image: the block-device configuration and the settings that size it.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// Where the configuration comes from (`DIB_BLOCK_DEVICE_CONFIG`, an element's file, or
    /// the fallback), for messages and the dry run.
    pub origin: String,
    pub config: Config,
    /// `FS_TYPE` (default `ext4`), used by configurations that leave the type open.
    pub fs_type: String,
    /// `--image-size` in GiB (otherwise computed from the tree, as dib does).
    pub size_gib: Option<f64>,
    /// `DIB_IMAGE_EXTRA_SIZE` in MiB: added to the tree's size (otherwise the tree is 60 %).
    pub extra_size_mib: Option<f64>,
    /// `DIB_JOURNAL_SIZE` in MiB (default 64), added for an ext4 root.
    pub journal_mib: u64,
}

/// Everything a build needs to know, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    /// The elements as given (`DIB_ARGS`).
    pub elements: Vec<String>,
    /// `-o`: the output name, without extension.
    pub output: PathBuf,
    pub types: Vec<OutputType>,
    pub arch: String,
    /// `-x` plus `DIB_DEBUG_TRACE`.
    pub debug_trace: u32,
    /// `-p`: packages installed after install.d.
    pub packages: Vec<String>,
    /// `DIB_OFFLINE` as hooks see it (`1` with `--offline`).
    pub offline: String,
    /// `DIB_DEFAULT_INSTALLTYPE` (default `source`).
    pub default_install_type: String,
    /// `DIB_ENV`: the caller's `DIB_*` variables at startup, as dib records them for the
    /// manifests element (name, value; sorted by name).
    pub dib_env: Vec<(String, String)>,
    /// `--image-cache`, `DIB_IMAGE_CACHE`, else `~/.cache/image-create`.
    pub image_cache: PathBuf,
    /// Where the build directory is made (`TMP_DIR`, else `TMPDIR`, else /tmp).
    pub tmp_dir: PathBuf,
    /// `--logfile`, else NAME.log.
    pub log: PathBuf,
    pub checksum: bool,
    /// qcow2 compression (`-u` turns it off).
    pub compress: bool,
    /// `--qemu-img-options` / `QEMU_IMG_OPTIONS`: `qemu-img convert -o` options.
    pub qemu_img_options: Option<String>,
    pub keep_on_error: bool,
    /// The minimum RAM, in GiB, for a tmpfs build directory (dib: twice `DIB_MIN_TMPFS`);
    /// `None` builds on disk (`--no-tmpfs`, `DIB_NO_TMPFS=1`).
    pub tmpfs: Option<u64>,
    pub force: bool,
    /// The user's `ELEMENTS_PATH` entries (`--elements-path` or the variable).
    pub elements_path: Vec<String>,
    /// The library after them.
    pub library: Library,
    /// `RUN_PARTS_REGEX`: which hooks each phase runs.
    pub run_parts: NameFilter,
    /// The disk image, when a type needs one.
    pub disk: Option<DiskOptions>,
    /// Where the manifest goes, when not beside the output.
    pub records_dir: Option<PathBuf>,
    /// `DIBKIT_TMPFS_SIZE` (dibkit's own): the most each tmpfs of the build directory may
    /// hold (`size=` of tmpfs, e.g. `6G`); unset, half the RAM as in dib.
    pub tmpfs_size: Option<String>,
    /// The build cache: reuse and keep the tree after cached phases (off with `--no-cache`).
    pub build_cache: bool,
    /// The build cache's size limit in GiB (`DIBKIT_CACHE_MAX_GIB`, default 20).
    pub cache_max_gib: f64,
    /// How long the hooks since the build cache's last point must have run for the tree to
    /// be kept (`DIBKIT_CACHE_KEEP_SECONDS`, default 3; 0 keeps every tree).
    pub cache_keep_seconds: f64,
}

impl Options {
    /// Whether any requested type needs the disk image.
    #[must_use]
    pub fn wants_disk(&self) -> bool {
        self.types.iter().any(|t| t.is_disk())
    }

    /// `IMAGE_NAME`: the output's file name.
    #[must_use]
    pub fn image_name(&self) -> String {
        self.output
            .file_name()
            .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// The file an output type (or another suffix such as `manifest.json`) is written to.
    #[must_use]
    pub fn output_path(&self, suffix: &str) -> PathBuf {
        let mut p = self.output.clone().into_os_string();
        p.push(format!(".{suffix}"));
        PathBuf::from(p)
    }

    #[must_use]
    pub fn manifest_path(&self) -> PathBuf {
        match &self.records_dir {
            Some(d) => d.join("dibkit-manifest.json"),
            None => self.output_path("manifest.json"),
        }
    }

    /// The RAM, in GiB, a tmpfs build directory needs; `None` when it is to be on disk
    /// (`--no-tmpfs`, or `--keep-on-error`: a kept directory has to outlive the build).
    #[must_use]
    pub fn tmpfs_min_gib(&self) -> Option<u64> {
        self.tmpfs.filter(|_| !self.keep_on_error)
    }

    /// `ELEMENTS_PATH` as hooks see it, as dib exports it: the user's entries, then the
    /// library (`embedded_dir` holds the embedded one written out).
    #[must_use]
    pub fn exported_elements_path(&self, embedded_dir: &std::path::Path) -> String {
        let mut entries = self.elements_path.clone();
        match &self.library {
            Library::Embedded => entries.push(embedded_dir.display().to_string()),
            Library::Dir(d) => entries.push(d.display().to_string()),
            Library::None => {}
        }
        entries.join(":")
    }
}
