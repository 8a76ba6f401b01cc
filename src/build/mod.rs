//! `dibkit build`: runs the elements' scripts for real, on the host and in a chroot, where
//! and when dib would, and exports the root filesystem. It executes the same [`Plan`] that
//! `dibkit order` prints. Stages, top to bottom, are in [`run`].

pub mod calls;
pub mod disk;
pub mod env;
pub mod hooks;
pub mod phase;
pub mod progress;
pub mod qcow2;
pub mod sys;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};

use crate::blockdev::config::{Config, Kind};
use crate::element::discover::Library;
use crate::element::model::{PHASES, Phase, Root};
use crate::order::plan::{INSTALL_TYPE_ENV, Plan};
use phase::{ScriptRecord, Where};
use progress::Progress;
use sys::mount::MountStack;

/// Output types the build engine produces: `tar` from the tree, the rest from the disk image.
pub const TYPES: &[&str] = &["tar", "qcow2", "raw", "vhd"];

/// Whether a type is written from a disk image.
#[must_use]
pub fn is_disk_type(t: &str) -> bool {
    disk::DISK_TYPES.iter().any(|(name, _)| *name == t)
}

/// What to build, in disk-image-create's terms.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub elements: Vec<String>,
    /// `-o`: the output name, without extension.
    pub output: PathBuf,
    pub types: Vec<String>,
    pub arch: String,
    pub debug_trace: u32,
    /// `-p`: packages installed after install.d.
    pub packages: Vec<String>,
    pub offline: bool,
    pub image_cache: Option<PathBuf>,
    pub logfile: Option<PathBuf>,
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
    pub verbose: bool,
    /// `--image-size` in GiB (otherwise computed from the tree, as dib does).
    pub image_size: Option<f64>,
}

impl Options {
    /// Whether any requested type needs the disk image.
    #[must_use]
    pub fn wants_disk(&self) -> bool {
        self.types.iter().any(|t| is_disk_type(t))
    }

    /// `IMAGE_NAME`: the output's file name.
    #[must_use]
    pub fn image_name(&self) -> String {
        self.output
            .file_name()
            .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// The file each output type is written to.
    #[must_use]
    pub fn output_path(&self, kind: &str) -> PathBuf {
        let mut p = self.output.clone().into_os_string();
        p.push(format!(".{kind}"));
        PathBuf::from(p)
    }

    #[must_use]
    pub fn manifest_path(&self) -> PathBuf {
        self.output_path("manifest.json")
    }

    /// The RAM, in GiB, a tmpfs build directory needs; `None` when it is to be on disk
    /// (`--no-tmpfs`, or `--keep-on-error`: a kept directory has to outlive the build).
    #[must_use]
    pub fn tmpfs_min_gib(&self) -> Option<u64> {
        self.tmpfs.filter(|_| !self.keep_on_error)
    }

    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.logfile
            .clone()
            .unwrap_or_else(|| self.output_path("log"))
    }
}

/// Why a build stopped. Each maps to an exit status (see `dibkit build --help`).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{phase}/{script} ({element}) failed with exit status {status}")]
    Hook {
        phase: String,
        script: String,
        element: String,
        path: PathBuf,
        status: i32,
        tail: Vec<String>,
    },
    #[error("{0}")]
    Preflight(String),
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Failure {
    /// 3 a hook failed, 4 the host is not ready (preflight), 5 the build machinery failed,
    /// 130 interrupted.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Hook { .. } => 3,
            Failure::Preflight(_) => 4,
            Failure::Other(_) => 5,
            Failure::Interrupted => 130,
        }
    }
}

/// The build's directories.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$TMP_BUILD_DIR`.
    pub build: PathBuf,
    pub hooks: PathBuf,
    /// The image root (`$TMP_MOUNT_PATH`, `$TARGET_ROOT`).
    pub mnt: PathBuf,
    pub image_dir: PathBuf,
    pub image_cache: PathBuf,
    /// Built-in elements written out for hooks that read element directories.
    pub builtin_dir: PathBuf,
    /// `ELEMENTS_PATH` as hooks see it.
    pub elements_path: String,
}

/// A build in progress.
pub struct Build {
    pub opts: Options,
    pub plan: Plan,
    pub paths: Paths,
    pub env_outside: Vec<(String, String)>,
    pub env_inside: Vec<(String, String)>,
    pub mounts: MountStack,
    pub records: Vec<ScriptRecord>,
    /// Scripts run (or skipped) by other scripts through `dibkit run-hook`.
    pub calls: Vec<calls::CallRecord>,
    pub progress: Progress,
    pub log: File,
    pub interrupted: Arc<AtomicBool>,
    /// The block-device configuration (disk builds).
    pub blockdev: Option<Config>,
    /// The disk image while it exists.
    pub image: Option<disk::Image>,
}

impl Build {
    /// Sets a variable for every later hook, on the host and in the chroot.
    pub fn set_env(&mut self, key: &str, value: &str) {
        for env in [&mut self.env_outside, &mut self.env_inside] {
            env.retain(|(k, _)| k != key);
            env.push((key.to_owned(), value.to_owned()));
        }
    }
}

/// The last `n` lines of `text`, for failure reports.
#[must_use]
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

/// Host tools a build needs, with the Debian package that has each.
fn required_tools(
    plan: &Plan,
    opts: &Options,
    blockdev: Option<&Config>,
) -> Vec<(&'static str, &'static str)> {
    let mut tools = vec![("tar", "tar"), ("bash", "bash"), ("find", "findutils")];
    if plan.elements.iter().any(|e| e.name == "debootstrap") {
        tools.push(("debootstrap", "debootstrap"));
    }
    if opts.wants_disk() {
        tools.extend([
            ("losetup", "mount"),
            ("partx", "util-linux"),
            ("sfdisk", "fdisk"),
            ("mkfs.ext4", "e2fsprogs"),
            ("qemu-img", "qemu-utils"),
        ]);
    }
    let fat = blockdev.is_some_and(|c| {
        c.nodes
            .iter()
            .any(|n| matches!(&n.kind, Kind::Mkfs { fstype, .. } if disk::is_fat(fstype)))
    });
    if fat {
        tools.extend([("mkfs.vfat", "dosfstools"), ("mcopy", "mtools")]);
    }
    tools
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Checks everything that can be checked before touching the host.
///
/// # Errors
/// Not root, missing tools, too little space, or an output in the way.
pub fn preflight(
    opts: &Options,
    plan: &Plan,
    blockdev: Option<&Config>,
    tmp: &Path,
    on_tmpfs: bool,
) -> Result<(), Failure> {
    for t in &opts.types {
        if !TYPES.contains(&t.as_str()) {
            return Err(Failure::Preflight(format!(
                "output type `{t}` is not supported yet; this build engine writes: {}",
                TYPES.join(", ")
            )));
        }
    }
    if !opts.force {
        for t in &opts.types {
            let p = opts.output_path(t);
            if p.exists() {
                return Err(Failure::Preflight(format!(
                    "{} exists; pass --force to replace it",
                    p.display()
                )));
            }
        }
    }
    if !sys::proc::is_root() {
        return Err(Failure::Preflight(
            "dibkit build must run as root (it mounts filesystems and enters a chroot)".to_owned(),
        ));
    }
    let missing: Vec<(&str, &str)> = required_tools(plan, opts, blockdev)
        .into_iter()
        .filter(|(t, _)| !on_path(t))
        .collect();
    if !missing.is_empty() {
        let tools: Vec<&str> = missing.iter().map(|m| m.0).collect();
        let mut pkgs: Vec<&str> = missing.iter().map(|m| m.1).collect();
        pkgs.dedup();
        return Err(Failure::Preflight(format!(
            "missing host tools: {}; install them with `apt-get install {}`",
            tools.join(", "),
            pkgs.join(" ")
        )));
    }
    if on_tmpfs {
        return Ok(());
    }
    disk_space(tmp)
}

/// A build on disk needs 2 GiB free in `tmp`.
fn disk_space(tmp: &Path) -> Result<(), Failure> {
    let stat = nix::sys::statvfs::statvfs(tmp)
        .map_err(|e| Failure::Other(anyhow!("checking free space in {}: {e}", tmp.display())))?;
    let free = stat.blocks_available() * stat.fragment_size();
    let need = 2 * 1024 * 1024 * 1024u64;
    if free < need {
        return Err(Failure::Preflight(format!(
            "only {} MiB free in {}; a build needs at least {} MiB (set TMPDIR to a roomier place)",
            free / 1024 / 1024,
            tmp.display(),
            need / 1024 / 1024
        )));
    }
    Ok(())
}

/// Paths of the set's elements as hooks see them (`IMAGE_ELEMENT_YAML`).
fn element_paths(lib: &Library, plan: &Plan, builtin_dir: &Path) -> BTreeMap<String, String> {
    plan.elements
        .iter()
        .filter_map(|e| lib.get(&e.name))
        .map(|e| {
            let path = match &e.root {
                Root::Disk(p) => p.display().to_string(),
                Root::Builtin(name) => builtin_dir.join(name).display().to_string(),
            };
            (e.name.clone(), path)
        })
        .collect()
}

/// Runs a whole build. Mounts and the workspace are released on every path out.
///
/// # Errors
/// See [`Failure`].
pub fn run(
    opts: Options,
    lib: &Library,
    plan: Plan,
    user_path: &[String],
) -> Result<Summary, Box<Failed>> {
    let tmp = std::env::var_os("TMP_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    // dib selects and checks the block-device configuration before anything runs; it also
    // decides which host tools the disk needs.
    let blockdev = if opts.wants_disk() {
        let (origin, text) = disk::select_config(lib, &plan, &opts.arch).map_err(Failure::Other)?;
        let config = disk::load_config(&origin, &text).map_err(Failure::Other)?;
        Some((origin, config))
    } else {
        None
    };
    let tmpfs = tmpfs_allowed(&opts, mem_total_kib());
    preflight(
        &opts,
        &plan,
        blockdev.as_ref().map(|(_, c)| c),
        &tmp,
        tmpfs.is_ok(),
    )?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .map_err(|e| Failure::Other(e.into()))?;
    }
    let workdir = tempfile::Builder::new()
        .prefix("dibkit_build.")
        .tempdir_in(&tmp)
        .map_err(|e| {
            Failure::Other(anyhow!(
                "creating the build directory in {}: {e}",
                tmp.display()
            ))
        })?
        .keep();
    // Mount points are compared with /proc/self/mountinfo, which has canonical paths.
    let workdir = fs::canonicalize(&workdir).unwrap_or(workdir);
    let image_cache = opts
        .image_cache
        .clone()
        .or_else(|| std::env::var_os("DIB_IMAGE_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                .join(".cache/image-create")
        });
    let builtin_dir = workdir.join("builtin-elements");
    let mut path_entries: Vec<String> = user_path.to_vec();
    path_entries.push(builtin_dir.display().to_string());
    let paths = Paths {
        hooks: workdir.join("hooks"),
        mnt: workdir.join("mnt"),
        image_dir: workdir.join("image"),
        image_cache,
        builtin_dir,
        elements_path: path_entries.join(":"),
        build: workdir.clone(),
    };
    let log_path = opts.log_path();
    let mut log = File::create(&log_path)
        .map_err(|e| Failure::Other(anyhow!("creating log {}: {e}", log_path.display())))?;
    if let Some((origin, _)) = &blockdev {
        let _ = writeln!(log, "block-device configuration from {origin}");
    }
    // Nothing returns early from here on: teardown releases the tmpfs with everything else.
    // A tmpfs that cannot be mounted leaves the build on disk, which preflight did not check.
    let (tmpfs_note, unchecked_disk) = match tmpfs {
        Ok(()) => match use_tmpfs(&paths.build, &paths.image_dir) {
            Some((note, on_disk)) => (Some(note), on_disk),
            None => (None, false),
        },
        Err(note) => (note, false),
    };
    let mut b = Build {
        env_outside: Vec::new(),
        env_inside: Vec::new(),
        mounts: MountStack::default(),
        records: Vec::new(),
        calls: Vec::new(),
        progress: Progress::new(opts.verbose),
        log,
        interrupted,
        opts,
        plan,
        paths,
        blockdev: blockdev.map(|(_, c)| c),
        image: None,
    };
    if let Some(note) = tmpfs_note {
        b.progress.step(&note);
        let _ = writeln!(b.log, "{note}");
    }
    let result = if unchecked_disk {
        disk_space(&tmp).and_then(|()| stages(&mut b, lib))
    } else {
        stages(&mut b, lib)
    };
    // Report the primary error before cleaning up, then release everything in reverse.
    let keep = result.is_err() && b.opts.keep_on_error;
    b.progress
        .status("unmounting and removing the build directory");
    let cleanup = teardown(&mut b, keep);
    let kept = keep.then(|| b.paths.build.clone());
    match (result, cleanup) {
        (Ok(summary), Ok(())) => Ok(summary),
        (Ok(_), Err(e)) => Err(Box::new(Failed {
            failure: Failure::Other(e),
            kept,
        })),
        (Err(failure), cleanup) => {
            if let Err(c) = cleanup {
                let _ = writeln!(b.log, "cleanup after the failure also failed: {c:#}");
            }
            Err(Box::new(Failed { failure, kept }))
        }
    }
}

/// Puts the build directory on a tmpfs, as dib does; like dib, two of them, each up to half
/// the RAM: the build directory and, in it, the image directory. When a mount fails, returns
/// what to tell the user and whether the build is on disk (the first mount failed).
fn use_tmpfs(workdir: &Path, image_dir: &Path) -> Option<(String, bool)> {
    if let Err(e) = sys::mount::tmpfs(workdir) {
        return Some((format!("building on disk: {e:#}"), true));
    }
    fs::create_dir_all(image_dir)
        .with_context(|| format!("creating {}", image_dir.display()))
        .and_then(|()| sys::mount::tmpfs(image_dir))
        .err()
        .map(|e| {
            (
                format!("the image directory shares the build directory's tmpfs: {e:#}"),
                false,
            )
        })
}

/// Whether the build directory is to be a tmpfs on a machine with `mem_kib` of RAM; if not,
/// why (`None`: the user said so).
fn tmpfs_allowed(opts: &Options, mem_kib: Option<u64>) -> Result<(), Option<String>> {
    let need_gib = opts.tmpfs_min_gib().ok_or(None)?;
    let total_gib = mem_kib.unwrap_or(0) / 1024 / 1024;
    if total_gib < need_gib {
        return Err(Some(format!(
            "building on disk: {total_gib} GiB of RAM, a tmpfs build directory needs {need_gib} GiB (--min-tmpfs)"
        )));
    }
    Ok(())
}

/// `MemTotal` from /proc/meminfo, in KiB.
fn mem_total_kib() -> Option<u64> {
    fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A failed build, and the build directory when `--keep-on-error` kept it.
#[derive(Debug)]
pub struct Failed {
    pub failure: Failure,
    pub kept: Option<PathBuf>,
}

impl From<Failure> for Box<Failed> {
    fn from(failure: Failure) -> Self {
        Box::new(Failed {
            failure,
            kept: None,
        })
    }
}

/// What a finished build produced.
#[derive(Debug)]
pub struct Summary {
    pub outputs: Vec<PathBuf>,
    pub manifest: PathBuf,
    pub log: PathBuf,
    pub records: Vec<ScriptRecord>,
    /// Where the plan and what ran differ (scripts added or removed during the build).
    pub drift: Vec<String>,
    pub workdir_kept: Option<PathBuf>,
}

fn check(b: &Build) -> Result<(), Failure> {
    if b.interrupted.load(Ordering::SeqCst) {
        Err(Failure::Interrupted)
    } else {
        Ok(())
    }
}

/// The stage list, in order.
fn stages(b: &mut Build, lib: &Library) -> Result<Summary, Failure> {
    prepare(b, lib)?;
    check(b)?;
    phase::run(b, PHASES[0], &Where::Host { target_root: true })?; // root.d
    check_root(b)?;
    enter_chroot_setup(b)?;
    phase::run(b, PHASES[1], &Where::Host { target_root: false })?; // extra-data.d
    check(b)?;
    bind_hooks(b)?;
    phase::run(b, PHASES[2], &Where::Chroot)?; // pre-install.d
    phase::run(b, PHASES[3], &Where::Chroot)?; // install.d
    install_packages(b)?;
    phase::run(b, PHASES[4], &Where::Chroot)?; // post-install.d
    unbind_hooks(b)?;
    phase::run(b, PHASES[5], &Where::Host { target_root: false })?; // post-root.d
    check(b)?;
    if b.opts.wants_disk() {
        make_disk(b)?;
    } else if b.paths.hooks.join("block-device.d").is_dir() {
        b.progress
            .step("block-device.d: skipped (no disk image in a tar build)");
    }
    phase::run(b, PHASES[7], &Where::Host { target_root: false })?; // pre-finalise.d
    bind_hooks(b)?;
    phase::run(b, PHASES[8], &Where::Chroot)?; // finalise.d
    unbind_hooks(b)?;
    phase::run(b, PHASES[9], &Where::Host { target_root: true })?; // cleanup.d
    leave_chroot(b)?;
    scrub(b);
    check(b)?;
    let mut outputs = export(b)?;
    outputs.extend(export_disk(b)?);
    let drift = drift(b);
    let manifest = write_manifest(b, &outputs, &drift)?;
    Ok(Summary {
        outputs,
        manifest,
        log: b.opts.log_path(),
        records: b.records.clone(),
        drift,
        workdir_kept: None,
    })
}

fn prepare(b: &mut Build, lib: &Library) -> Result<(), Failure> {
    b.progress.step(&format!(
        "preparing {} elements in {}",
        b.plan.elements.len(),
        b.paths.build.display()
    ));
    fs::create_dir_all(&b.paths.mnt).context("creating the image root")?;
    fs::create_dir_all(&b.paths.image_dir).context("creating the image directory")?;
    fs::create_dir_all(&b.paths.image_cache)
        .with_context(|| format!("creating {}", b.paths.image_cache.display()))?;
    hooks::materialize_builtins(lib, &b.plan, &b.paths.builtin_dir)?;
    hooks::assemble(lib, &b.plan, &b.paths.hooks)?;
    let element_paths = element_paths(lib, &b.plan, &b.paths.builtin_dir);
    let mut vars = env::dib_vars(&b.plan, &b.paths, &b.opts, &element_paths);
    if let Some(config) = &b.blockdev {
        // What hooks may want to know about the disk, exported before root.d as dib does.
        vars.insert(
            "DIB_ROOT_LABEL".into(),
            config.root_label().unwrap_or_default(),
        );
        vars.insert(
            "DIB_ROOT_FSTYPE".into(),
            config.root_fstype().unwrap_or_default(),
        );
        vars.insert("DIB_BOOT_LABEL".into(), config.boot_label());
        vars.insert("DIB_MOUNTPOINTS".into(), config.mount_points());
    }
    b.env_outside = env::outside(&vars, &element_paths);
    b.env_inside = env::inside(&vars);
    Ok(())
}

/// dib's check after root.d: the root must hold something besides lost+found and *tmp.
fn check_root(b: &Build) -> Result<(), Failure> {
    let populated = fs::read_dir(&b.paths.mnt).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with("lost+found") && !n.ends_with("tmp")
        })
    });
    if populated {
        Ok(())
    } else {
        Err(Failure::Other(anyhow!(
            "root.d left the image root empty: no element of the set provides a root filesystem (did the operating-system element's root.d run?)"
        )))
    }
}

/// After root.d: the host's resolv.conf in, proc/sys/dev mounted, and dib's install-type
/// environment file written.
fn enter_chroot_setup(b: &mut Build) -> Result<(), Failure> {
    let etc = b.paths.mnt.join("etc");
    fs::create_dir_all(&etc).context("creating etc in the image")?;
    let resolv = etc.join("resolv.conf");
    if fs::symlink_metadata(&resolv).is_ok() {
        fs::rename(&resolv, etc.join("resolv.conf.ORIG"))
            .context("saving the image's resolv.conf")?;
    }
    let host = fs::read("/etc/resolv.conf").unwrap_or_default();
    fs::write(&resolv, host).context("writing resolv.conf into the image")?;
    mount_api_filesystems(b)?;
    let env_dir = b.paths.hooks.join("environment.d");
    fs::create_dir_all(&env_dir).context("creating environment.d")?;
    let value = std::env::var("DIB_DEFAULT_INSTALLTYPE").unwrap_or_else(|_| "source".into());
    fs::write(
        env_dir.join(INSTALL_TYPE_ENV),
        format!("export DIB_DEFAULT_INSTALLTYPE=${{DIB_DEFAULT_INSTALLTYPE:-\"{value}\"}}\n"),
    )
    .context("writing the install-type environment file")?;
    Ok(())
}

/// The hooks tree, read-only at /tmp/in_target.d, for the in-chroot phases.
fn bind_hooks(b: &mut Build) -> Result<(), Failure> {
    let target = b.paths.mnt.join("tmp/in_target.d");
    fs::create_dir_all(b.paths.mnt.join("tmp")).context("creating /tmp in the image")?;
    let hooks = b.paths.hooks.clone();
    b.mounts.bind(&hooks, &target, true)?;
    Ok(())
}

fn unbind_hooks(b: &mut Build) -> Result<(), Failure> {
    let target = b.paths.mnt.join("tmp/in_target.d");
    sys::mount::unmount(&target)?;
    let _ = fs::remove_dir(&target);
    Ok(())
}

/// `-p`: install-packages once after install.d, in the chroot.
fn install_packages(b: &mut Build) -> Result<(), Failure> {
    if b.opts.packages.is_empty() {
        return Ok(());
    }
    b.progress
        .step(&format!("install-packages {}", b.opts.packages.join(" ")));
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.arg("-c")
        .arg("install-packages \"$@\"")
        .arg("install-packages")
        .args(&b.opts.packages);
    cmd.env_clear()
        .envs(b.env_inside.iter().map(|(k, v)| (k, v)));
    sys::proc::chroot(&mut cmd, &b.paths.mnt);
    let out = cmd
        .output()
        .context("running install-packages in the chroot")?;
    b.log
        .write_all(&out.stdout)
        .and_then(|()| b.log.write_all(&out.stderr))
        .context("writing the log")?;
    if !out.status.success() {
        return Err(Failure::Hook {
            phase: "install.d".into(),
            script: "install-packages (-p)".into(),
            element: "(command line)".into(),
            path: PathBuf::from("/usr/local/bin/install-packages"),
            status: out.status.code().unwrap_or(-1),
            tail: last_lines(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    Ok(())
}

/// After cleanup.d: the image's own resolv.conf back, the chroot mounts gone.
fn leave_chroot(b: &mut Build) -> Result<(), Failure> {
    let etc = b.paths.mnt.join("etc");
    let resolv = etc.join("resolv.conf");
    let orig = etc.join("resolv.conf.ORIG");
    // dib keeps a resolv.conf that a hook turned into a symlink; otherwise it restores.
    let replaced = fs::symlink_metadata(&resolv).is_ok_and(|m| m.file_type().is_symlink());
    if replaced {
        let _ = fs::remove_file(&orig);
    } else {
        let _ = fs::remove_file(&resolv);
        if fs::symlink_metadata(&orig).is_ok() {
            fs::rename(&orig, &resolv).context("restoring the image's resolv.conf")?;
        }
    }
    b.mounts.close()?;
    // Whatever a hook left mounted goes; the disk image's own filesystems stay mounted for
    // the scrub, the tar export and the FAT fill.
    let left = sys::mount::sweep_except(&b.paths.mnt, |m| {
        b.image.as_ref().is_some_and(|i| i.owns_mount(m))
    });
    if !left.is_empty() {
        return Err(Failure::Other(anyhow!(
            "still mounted in the image: {left:?}"
        )));
    }
    Ok(())
}

/// dib's final scrub: /tmp emptied, logs truncated.
fn scrub(b: &Build) {
    let tmp = b.paths.mnt.join("tmp");
    if let Ok(rd) = fs::read_dir(&tmp) {
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
    truncate_logs(&b.paths.mnt.join("var/log"));
}

fn truncate_logs(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            truncate_logs(&e.path());
        } else if ft.is_file() {
            let _ = File::create(e.path());
        }
    }
}

/// Writes the outputs under temporary names and renames them into place.
fn export(b: &mut Build) -> Result<Vec<PathBuf>, Failure> {
    let mut outputs = Vec::new();
    for kind in b.opts.types.clone() {
        if kind != "tar" {
            continue;
        }
        let dest = b.opts.output_path(&kind);
        b.progress.step(&format!("writing {}", dest.display()));
        let partial = dest.with_file_name(format!(
            ".{}.partial",
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        // 128 KiB records: half the time of tar's default 10 KiB in write calls.
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&b.paths.mnt)
            .args(["--numeric-owner", "--xattrs", "--acls", "-b", "256", "-cf"])
            .arg(&partial)
            .arg(".")
            .status()
            .context("running tar")?;
        if !status.success() {
            let _ = fs::remove_file(&partial);
            return Err(Failure::Other(anyhow!(
                "tar failed with {status} writing {}",
                dest.display()
            )));
        }
        fs::rename(&partial, &dest).with_context(|| format!("renaming into {}", dest.display()))?;
        write_checksums(b, &kind, &dest)?;
        outputs.push(dest);
    }
    Ok(outputs)
}

/// Scripts the plan expected that did not run, and scripts that ran but were not planned
/// (hooks added during the build, e.g. by install-types); the same for the scripts that
/// scripts run themselves (see [`calls::drift`]).
fn drift(b: &Build) -> Vec<String> {
    let mut out = Vec::new();
    for p in &b.plan.phases {
        if p.phase == "block-device.d" {
            continue;
        }
        for s in &p.scripts {
            if !b
                .records
                .iter()
                .any(|r| r.phase == p.phase && r.script == s.name)
            {
                out.push(format!("planned but not run: {}/{}", p.phase, s.name));
            }
        }
    }
    for r in &b.records {
        let planned = b
            .plan
            .phases
            .iter()
            .any(|p| p.phase == r.phase && p.scripts.iter().any(|s| s.name == r.script));
        if !planned {
            out.push(format!("ran but not planned: {}/{}", r.phase, r.script));
        }
    }
    let ran: Vec<(String, String)> = b
        .records
        .iter()
        .map(|r| (r.phase.clone(), r.script.clone()))
        .collect();
    out.extend(calls::drift(&b.plan, &ran, &b.calls));
    out
}

fn write_manifest(b: &Build, outputs: &[PathBuf], drift: &[String]) -> Result<PathBuf, Failure> {
    let path = b.opts.manifest_path();
    let value = serde_json::json!({
        "elements": b.plan.elements.iter().map(|e| &e.name).collect::<Vec<_>>(),
        "request": b.plan.request,
        "outputs": outputs.iter().map(|o| o.display().to_string()).collect::<Vec<_>>(),
        "scripts": b.records,
        "calls": b.calls,
        "drift": drift,
    });
    fs::write(&path, format!("{value:#}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// dib's block-device stage: the tree moves to `built`, block-device.d runs, the image is
/// created and mounted where the tree was, fstab is written, the tree copied in, and the
/// chroot mounts come back for pre-finalise/finalise/cleanup.
fn make_disk(b: &mut Build) -> Result<(), Failure> {
    b.mounts.close()?;
    let left = sys::mount::sweep(&b.paths.mnt);
    if !left.is_empty() {
        return Err(Failure::Other(anyhow!(
            "still mounted in the image root: {left:?}"
        )));
    }
    let built = b.paths.build.join("built");
    fs::rename(&b.paths.mnt, &built).context("moving the tree aside")?;
    fs::create_dir_all(&b.paths.mnt).context("creating the image mount point")?;
    phase::run(b, PHASES[6], &Where::Host { target_root: false })?; // block-device.d
    let config = b
        .blockdev
        .clone()
        .context("block-device configuration selected in prepare")?;
    let size = disk::image_size(&built, &config, &b.plan, b.opts.image_size)?;
    b.progress
        .step(&format!("creating a {} MiB disk image", size / 1024 / 1024));
    let mut image = disk::Image::default();
    let created = disk::create(&config, &b.paths.image_dir, size, &b.paths.mnt, &mut image);
    let image_dev = image
        .devices
        .iter()
        .find(|(n, _)| n == "image0")
        .map(|(_, d)| d.clone());
    let devices = image.block_devices();
    b.image = Some(image);
    created?;
    if let Some(dev) = image_dev {
        b.set_env("IMAGE_BLOCK_DEVICE", &dev);
    }
    b.set_env("IMAGE_BLOCK_DEVICES", &devices);
    let etc = built.join("etc");
    fs::create_dir_all(&etc).context("creating etc")?;
    fs::write(etc.join("fstab"), config.fstab()).context("writing fstab")?;
    b.progress.step("copying the tree into the image");
    disk::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", built.display()))
            .arg(&b.paths.mnt),
    )?;
    let _ = fs::remove_dir_all(&built);
    mount_api_filesystems(b)
}

/// proc, sys, dev and dev/pts in the image root, as dib's `mount_proc_dev_sys`.
fn mount_api_filesystems(b: &mut Build) -> Result<(), Failure> {
    let mnt = b.paths.mnt.clone();
    b.mounts.fs("proc", &mnt.join("proc"), None)?;
    b.mounts.fs("sysfs", &mnt.join("sys"), None)?;
    b.mounts.bind(Path::new("/dev"), &mnt.join("dev"), false)?;
    // The host's pty instance, so /dev/ptmx (from the /dev bind) and /dev/pts agree.
    b.mounts
        .bind(Path::new("/dev/pts"), &mnt.join("dev/pts"), false)?;
    Ok(())
}

/// `--checksum`: `.sha256` and `.md5` beside an output.
fn write_checksums(b: &Build, kind: &str, dest: &Path) -> Result<(), Failure> {
    if !b.opts.checksum {
        return Ok(());
    }
    for (tool, ext) in [("sha256sum", "sha256"), ("md5sum", "md5")] {
        let out = disk::run(std::process::Command::new(tool).arg(dest))?;
        fs::write(b.opts.output_path(&format!("{kind}.{ext}")), out)
            .context("writing a checksum")?;
    }
    Ok(())
}

/// Unmounts and detaches the image, then converts it to each disk type.
fn export_disk(b: &mut Build) -> Result<Vec<PathBuf>, Failure> {
    let Some(mut image) = b.image.take() else {
        return Ok(Vec::new());
    };
    if !image.fat_staged.is_empty() {
        b.progress.step("filling the FAT filesystems with mtools");
    }
    image.fill_fat()?;
    image.trim();
    image.release()?;
    let raw = image.raw.clone();
    drop(image);
    let mut outputs = Vec::new();
    for kind in b.opts.types.clone() {
        let Some((_, format)) = disk::DISK_TYPES.iter().find(|(t, _)| *t == kind) else {
            continue;
        };
        let dest = b.opts.output_path(&kind);
        b.progress.step(&format!("writing {}", dest.display()));
        disk::convert(
            &raw,
            format,
            &dest,
            b.opts.compress,
            b.opts.qemu_img_options.as_deref(),
            &b.interrupted,
        )
        .map_err(|e| {
            if b.interrupted.load(Ordering::SeqCst) {
                Failure::Interrupted
            } else {
                Failure::Other(e)
            }
        })?;
        write_checksums(b, &kind, &dest)?;
        outputs.push(dest);
    }
    Ok(outputs)
}

/// Unmounts everything (ours first, then anything a hook left below the build directory)
/// and removes the workspace unless it is kept for debugging.
fn teardown(b: &mut Build, keep: bool) -> Result<()> {
    let mut problems = Vec::new();
    if let Err(e) = b.mounts.close() {
        problems.push(format!("{e:#}"));
    }
    if let Some(mut image) = b.image.take() {
        if let Err(e) = image.release() {
            problems.push(format!("{e:#}"));
        }
    }
    let left = sys::mount::sweep(&b.paths.build);
    if !left.is_empty() {
        problems.push(format!("could not unmount {left:?}"));
    }
    if keep {
        return if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(problems.join("; ")))
        };
    }
    // Never delete through a mount: only when nothing is mounted below the workspace.
    if sys::mount::mounts_below(&b.paths.build).is_empty() {
        if let Err(e) = fs::remove_dir_all(&b.paths.build) {
            problems.push(format!("removing {}: {e}", b.paths.build.display()));
        }
    } else {
        problems.push(format!(
            "left {} in place: something is still mounted in it",
            b.paths.build.display()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(problems.join("; ")))
    }
}

/// The phase list as shown by `--dry-run`, with the host-side steps between phases.
#[must_use]
pub fn dry_run(plan: &Plan, opts: &Options) -> String {
    let mut s = String::new();
    let step = |s: &mut String, t: &str| s.push_str(&format!("  - {t}\n"));
    s.push_str(&format!(
        "build {} ({})\n",
        opts.image_name(),
        opts.types.join(", ")
    ));
    match opts.tmpfs_min_gib() {
        Some(gib) => {
            step(
                &mut s,
                "preflight: root, host tools, outputs absent (or --force)",
            );
            step(
                &mut s,
                &format!(
                    "build directory on a tmpfs with {gib} GiB of RAM or more (else on disk, 2 GiB free)"
                ),
            );
        }
        None => step(
            &mut s,
            "preflight: root, host tools, 2 GiB free, outputs absent (or --force); build directory on disk",
        ),
    }
    step(
        &mut s,
        "assemble the hooks tree; write built-in elements out for IMAGE_ELEMENT_YAML",
    );
    for p in &plan.phases {
        let phase = Phase::find(p.phase).expect("plan phases are phases");
        match p.phase {
            "extra-data.d" => step(
                &mut s,
                "swap in the host's resolv.conf; mount proc, sys, dev, dev/pts; write environment.d/11-dib-install-type.bash",
            ),
            "pre-install.d" | "finalise.d" => {
                step(&mut s, "bind the hooks tree read-only at /tmp/in_target.d");
            }
            "post-install.d" if !opts.packages.is_empty() => {}
            _ => {}
        }
        if p.phase == "post-install.d" && !opts.packages.is_empty() {
            step(
                &mut s,
                &format!("install-packages {}", opts.packages.join(" ")),
            );
        }
        let where_ = if phase.chroot {
            "in chroot"
        } else {
            "on the host"
        };
        let names: Vec<String> = p
            .scripts
            .iter()
            .map(|x| format!("{} ({})", x.name, x.element))
            .collect();
        if p.phase == "block-device.d" {
            if opts.wants_disk() {
                step(&mut s, "unmount proc/sys/dev; move the tree aside");
                if p.exists {
                    step(
                        &mut s,
                        &format!("block-device.d on the host: {}", names.join(", ")),
                    );
                }
                step(
                    &mut s,
                    "create the disk image (layout below), write /etc/fstab, copy the tree in, mount proc, sys, dev, dev/pts; export IMAGE_BLOCK_DEVICE(S)",
                );
            } else {
                step(
                    &mut s,
                    "block-device.d: skipped (no disk image in a tar build)",
                );
            }
            continue;
        }
        if !p.exists {
            step(&mut s, &format!("{}: no element has it", p.phase));
            continue;
        }
        step(
            &mut s,
            &format!(
                "{} {where_}: {}",
                p.phase,
                if names.is_empty() {
                    "(no scripts)".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        );
    }
    step(
        &mut s,
        "restore resolv.conf; unmount everything below the build directory",
    );
    step(&mut s, "empty /tmp, truncate /var/log");
    if opts.wants_disk() {
        step(
            &mut s,
            "copy FAT mount points (e.g. /boot/efi) into their filesystems with mtools when the host cannot mount FAT; fstrim and unmount the image's filesystems, remove the partition devices, detach the loop device",
        );
    }
    for t in &opts.types {
        let how = match disk::DISK_TYPES.iter().find(|(name, _)| name == t) {
            Some((_, format)) => format!(
                "{} to a temporary name, then rename",
                disk::convert_description(format, opts.compress, opts.qemu_img_options.as_deref())
            ),
            None => "temporary name, then rename".to_owned(),
        };
        step(
            &mut s,
            &format!("write {} ({how})", opts.output_path(t).display()),
        );
    }
    step(
        &mut s,
        &format!(
            "write {} and {}",
            opts.manifest_path().display(),
            opts.log_path().display()
        ),
    );
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn tmpfs_needs_the_ram_and_no_kept_directory() {
        let mut opts = super::Options {
            elements: Vec::new(),
            output: "img".into(),
            types: vec!["tar".to_owned()],
            arch: "amd64".to_owned(),
            debug_trace: 0,
            packages: Vec::new(),
            offline: false,
            image_cache: None,
            logfile: None,
            checksum: false,
            compress: true,
            qemu_img_options: None,
            keep_on_error: false,
            tmpfs: Some(4),
            force: false,
            verbose: false,
            image_size: None,
        };
        let gib = |n: u64| Some(n * 1024 * 1024);
        assert_eq!(super::tmpfs_allowed(&opts, gib(4)), Ok(()));
        assert_eq!(
            super::tmpfs_allowed(&opts, gib(3)),
            Err(Some(
                "building on disk: 3 GiB of RAM, a tmpfs build directory needs 4 GiB (--min-tmpfs)"
                    .to_owned()
            ))
        );
        assert_eq!(
            super::tmpfs_allowed(&opts, None),
            Err(Some(
                "building on disk: 0 GiB of RAM, a tmpfs build directory needs 4 GiB (--min-tmpfs)"
                    .to_owned()
            ))
        );
        opts.keep_on_error = true;
        assert_eq!(super::tmpfs_allowed(&opts, gib(64)), Err(None));
        opts.keep_on_error = false;
        opts.tmpfs = None;
        assert_eq!(super::tmpfs_allowed(&opts, gib(64)), Err(None));
    }

    #[test]
    fn last_lines_keeps_the_end_in_order() {
        assert_eq!(super::last_lines("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(super::last_lines("a\nb", 5), ["a", "b"]);
        assert!(super::last_lines("", 3).is_empty());
    }
}
