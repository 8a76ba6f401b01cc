//! `dibkit build`: a real chroot build of the elements, written as disk images (qcow2, raw,
//! vhd) and/or a root filesystem tar. This is the edge where the arguments and every
//! environment variable the build honours are resolved into `engine::Options`; the engine's
//! step list is then printed (`--dry-run`) or run, with progress drawn by `progress.rs`.

use std::io::Write;
use std::path::PathBuf;

use super::Failure;
use super::progress::Progress;
use super::request::RequestArgs;
use crate::blockdev::config::Legacy;
use crate::element::discover::{Builtins, Library};
use crate::engine::{self, DiskOptions, Options, OutputType};
use crate::error::exit;
use crate::order::plan::Plan;

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// Elements to build, as for disk-image-create.
    #[arg(required_unless_present = "files", value_name = "ELEMENT")]
    pub elements: Vec<String>,

    /// Build the images of a dib image file (diskimage-builder's YAML format; repeat for
    /// several files, whose lists are joined). See "Many images" in README.md.
    #[arg(long = "file", value_name = "FILE", conflicts_with = "elements")]
    pub files: Vec<PathBuf>,

    /// With --file: how many images to build at once [default: from the cores and the memory,
    /// a tmpfs build directory taking twice --min-tmpfs].
    #[arg(short = 'j', long, value_name = "N", requires = "files")]
    pub jobs: Option<usize>,

    /// With --file: start no new build after one fails.
    #[arg(long, requires = "files")]
    pub stop_on_failure: bool,

    /// With --file: refuse dibkit's additions to dib's image files (keys dib's own
    /// disk-image-create rejects), so the file also builds with dib.
    #[arg(long, requires = "files")]
    pub strict: bool,

    /// Output name, without extension (`-o vm` writes vm.qcow2, `-o rootfs -t tar` rootfs.tar).
    #[arg(short = 'o', value_name = "NAME", default_value = "image")]
    pub output: PathBuf,

    /// Output types, comma-separated: qcow2, raw, vhd (from the disk image) and tar (the tree).
    #[arg(
        short = 't',
        value_delimiter = ',',
        value_name = "TYPES",
        default_value = "qcow2"
    )]
    pub types: Vec<String>,

    /// Trace hooks (`DIB_DEBUG_TRACE`); repeat for more.
    #[arg(short = 'x', action = clap::ArgAction::Count)]
    pub trace: u8,

    /// Packages to install after install.d (comma-separated).
    #[arg(short = 'p', value_delimiter = ',', value_name = "PACKAGES")]
    pub packages: Vec<String>,

    /// Do not refresh caches from the network (`DIB_OFFLINE=1`).
    #[arg(long)]
    pub offline: bool,

    /// Run every phase and keep nothing: no tree from the build cache, no qcow2 cluster
    /// index (also `DIBKIT_NO_CACHE=1`; the debootstrap element's tarball cache has its own
    /// switch, DIB_DEBOOTSTRAP_CACHE=0).
    #[arg(long)]
    pub no_cache: bool,

    /// Cache directory (`DIB_IMAGE_CACHE`) [default: ~/.cache/image-create].
    #[arg(long, value_name = "DIR")]
    pub image_cache: Option<PathBuf>,

    /// Full build log [default: NAME.log beside the output].
    #[arg(long, value_name = "FILE")]
    pub logfile: Option<PathBuf>,

    /// After the build, boot the first disk image with `dibkit boot` (BIOS) and fail the
    /// build if it does not reach a login prompt, or fails a check given with it (the
    /// boot checks below: --config-drive, --ssh, --key, --exec, --resize, ...).
    #[arg(long)]
    pub boot_test: bool,

    #[command(
        flatten,
        next_help_heading = "Boot checks (with --boot-test; as for `dibkit boot`)"
    )]
    pub checks: super::boot::Checks,

    /// Image size in GiB (default: computed from the tree, as dib does).
    #[arg(long, value_name = "GiB")]
    pub image_size: Option<f64>,

    /// Write .sha256 and .md5 files beside each output.
    #[arg(long)]
    pub checksum: bool,

    /// Do not compress qcow2 images (they are compressed with zlib by default, as in dib, by
    /// dibkit's own writer on every core).
    #[arg(short = 'u')]
    pub uncompressed: bool,

    /// Options for `qemu-img convert -o`, e.g. `compression_type=zstd` (read also from
    /// `QEMU_IMG_OPTIONS`); with them, qemu-img writes the qcow2 too.
    #[arg(long, value_name = "K=V,...")]
    pub qemu_img_options: Option<String>,

    /// Show the plan and the host steps, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep the build directory after a failure, and print where it is (it is then on disk,
    /// not on tmpfs).
    #[arg(long)]
    pub keep_on_error: bool,

    /// Build on disk, not in a tmpfs build directory (`DIB_NO_TMPFS=1`).
    #[arg(long)]
    pub no_tmpfs: bool,

    /// Use tmpfs only with at least twice this much RAM, in GiB (`DIB_MIN_TMPFS`)
    /// [default: 2].
    #[arg(long, value_name = "GiB")]
    pub min_tmpfs: Option<u64>,

    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,

    /// Show the hooks' output as they run (it always goes to the log).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// After the build (and --boot-test), upload the first disk image to this cloud of
    /// clouds.yaml as `dibkit upload` does, named after the output (`-o NAME`).
    #[arg(long, value_name = "CLOUD")]
    pub upload: Option<String>,

    #[command(flatten)]
    pub request: RequestArgs,

    /// What only the disk-image-create drop-in sets: dib's options that have no flag here.
    #[arg(skip)]
    pub dib: DibSettings,
}

/// dib's disk-image-create options without a `dibkit build` flag, set by the drop-in
/// (`cli/dropin.rs`); each overrides the variable dib's option sets.
#[derive(Debug, Clone, Default)]
pub struct DibSettings {
    /// `--root-label` (`ROOT_LABEL`).
    pub root_label: Option<String>,
    /// `--mkfs-options`, with `-E resize=N` of `--max-online-resize` in front, as dib does.
    pub mkfs_options: Option<String>,
    /// `--install-type` (`DIB_DEFAULT_INSTALLTYPE`).
    pub install_type: Option<String>,
    /// `--image-extra-size` in MiB (`DIB_IMAGE_EXTRA_SIZE`).
    pub extra_size_mib: Option<f64>,
    /// `--mkfs-journal-size` in MiB (`DIB_JOURNAL_SIZE`).
    pub journal_mib: Option<u64>,
    /// Where the manifest goes (else beside the output): the drop-in writes it into
    /// `NAME.d/`, which nodepool removes with the image.
    pub records_dir: Option<PathBuf>,
}

/// Whether the build directory may be a tmpfs, and the RAM it then needs: as dib, tmpfs unless
/// `--no-tmpfs` or `DIB_NO_TMPFS` (other than `0`), when the machine has twice `--min-tmpfs` /
/// `DIB_MIN_TMPFS` (2 GiB) of RAM.
fn tmpfs_setting(args: &Args) -> Result<Option<u64>, Failure> {
    // dib uses tmpfs only while DIB_NO_TMPFS is unset, empty or 0.
    if args.no_tmpfs || std::env::var("DIB_NO_TMPFS").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Ok(None);
    }
    let min = match (args.min_tmpfs, std::env::var("DIB_MIN_TMPFS")) {
        (Some(n), _) => n,
        (None, Ok(v)) if !v.is_empty() => v.parse().map_err(|_| {
            Failure::usage(
                format!("DIB_MIN_TMPFS is `{v}`, not a whole number of GiB"),
                Some("set it to e.g. 2, or unset it".to_owned()),
            )
        })?,
        _ => 2,
    };
    Ok(Some(min.saturating_mul(2)))
}

/// The disk layout `--dry-run` shows: where the configuration comes from and its nodes in
/// creation order.
fn disk_layout(disk: &DiskOptions) -> String {
    use std::fmt::Write as _;
    let config = &disk.config;
    let mut s = format!("\ndisk layout from {}\n", disk.origin);
    for n in config.order() {
        let what = match &n.kind {
            crate::blockdev::config::Kind::LocalLoop { .. } => {
                "image file on a loop device".to_owned()
            }
            crate::blockdev::config::Kind::Partition { size, boot, .. } => {
                let size = match size {
                    crate::blockdev::config::PartSize::Percent(p) => {
                        format!("{p}% of the space left")
                    }
                    crate::blockdev::config::PartSize::Bytes(b) => {
                        format!("{} MiB", b / 1024 / 1024)
                    }
                };
                format!("partition, {size}{}", if *boot { ", bootable" } else { "" })
            }
            crate::blockdev::config::Kind::Mkfs { fstype, label, .. } => {
                format!("mkfs {fstype}, label {label}")
            }
            crate::blockdev::config::Kind::Mount { mount_point } => {
                format!("mount at {mount_point}")
            }
            crate::blockdev::config::Kind::Fstab {
                options, passno, ..
            } => format!("fstab: {options}, fsck pass {passno}"),
        };
        let _ = writeln!(
            s,
            "  - {} (on {}): {what}",
            n.name,
            if n.base.is_empty() { "-" } else { &n.base }
        );
    }
    let _ = write!(
        s,
        "  fstab:\n    {}",
        config.fstab().replace('\n', "\n    ")
    );
    s.push('\n');
    s
}

/// `DIBKIT_TMPFS_SIZE`: a number with an optional k, m, g or % suffix, as tmpfs takes it.
fn tmpfs_size() -> Result<Option<String>, Failure> {
    let Some(v) = var("DIBKIT_TMPFS_SIZE") else {
        return Ok(None);
    };
    let digits = v.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::usage(
            format!("DIBKIT_TMPFS_SIZE is `{v}`, not a tmpfs size"),
            Some("set it to e.g. 6G, 800M or 25%, or unset it".to_owned()),
        ));
    }
    Ok(Some(v))
}

/// A variable of the caller's environment, when set and not empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A number from the environment; a value that is not one is a usage error.
fn number<T: std::str::FromStr>(name: &str, what: &str) -> Result<Option<T>, Failure> {
    var(name)
        .map(|v| {
            v.parse().map_err(|_| {
                Failure::usage(
                    format!("{name} is `{v}`, not {what}"),
                    Some(format!("set it to {what}, or unset it")),
                )
            })
        })
        .transpose()
}

/// The block-device configuration and the settings that size the image, as dib picks them.
fn disk_options(
    args: &Args,
    lib: &Library,
    plan: &Plan,
    arch: &str,
) -> Result<DiskOptions, Failure> {
    let from_env = std::env::var("DIB_BLOCK_DEVICE_CONFIG").ok();
    let (origin, text) = engine::disk::select_config(lib, plan, arch, from_env.as_deref())
        .map_err(|e| Failure::usage(format!("{e:#}"), None))?;
    let legacy = Legacy {
        fs_type: var("FS_TYPE").unwrap_or_else(|| "ext4".to_owned()),
        root_label: args.dib.root_label.clone().or_else(|| var("ROOT_LABEL")),
        mkfs_options: args.dib.mkfs_options.clone(),
    };
    let config = engine::disk::load_config(&origin, &text, &legacy).map_err(|e| {
        Failure::new(
            exit::REJECTED,
            format!("{e:#}"),
            Some("fix the block-device configuration".to_owned()),
        )
    })?;
    Ok(DiskOptions {
        origin,
        config,
        fs_type: legacy.fs_type,
        size_gib: args.image_size,
        extra_size_mib: match args.dib.extra_size_mib {
            Some(n) => Some(n),
            None => number("DIB_IMAGE_EXTRA_SIZE", "a number of MiB")?,
        },
        journal_mib: match args.dib.journal_mib {
            Some(n) => n,
            None => number("DIB_JOURNAL_SIZE", "a whole number of MiB")?.unwrap_or(64),
        },
    })
}

/// Everything the build needs, from the arguments and the environment.
fn options(
    args: &Args,
    lib: &Library,
    entries: &[String],
    plan: &Plan,
) -> Result<Options, Failure> {
    let types = args
        .types
        .iter()
        .map(|t| t.parse::<OutputType>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::preflight(e.to_string()))?;
    let arch = args.request.arch();
    let wants_disk = types.iter().any(|t| t.is_disk());
    let disk = if wants_disk {
        Some(disk_options(args, lib, plan, &arch)?)
    } else {
        None
    };
    let library = match args.request.builtins() {
        Builtins::Embedded => engine::Library::Embedded,
        Builtins::None => engine::Library::None,
        // Hooks run elsewhere than here: the exported path must be absolute.
        Builtins::Dir(d) => engine::Library::Dir(std::path::absolute(&d).unwrap_or(d)),
    };
    let run_parts = super::request::run_parts_filter()?;
    let output = args.output.clone();
    let log = args.logfile.clone().unwrap_or_else(|| {
        let mut p = output.clone().into_os_string();
        p.push(".log");
        PathBuf::from(p)
    });
    let image_cache = args
        .image_cache
        .clone()
        .or_else(|| std::env::var_os("DIB_IMAGE_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                .join(".cache/image-create")
        });
    Ok(Options {
        elements: args.elements.clone(),
        output,
        types,
        arch,
        debug_trace: u32::from(args.trace)
            + std::env::var("DIB_DEBUG_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        packages: args.packages.clone(),
        offline: if args.offline {
            "1".to_owned()
        } else {
            std::env::var("DIB_OFFLINE").unwrap_or_default()
        },
        dib_env: {
            let mut vars: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| k.starts_with("DIB_"))
                .collect();
            vars.sort();
            vars
        },
        default_install_type: args.dib.install_type.clone().unwrap_or_else(|| {
            std::env::var("DIB_DEFAULT_INSTALLTYPE").unwrap_or_else(|_| "source".to_owned())
        }),
        image_cache,
        tmp_dir: std::env::var_os("TMP_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
        log,
        checksum: args.checksum,
        compress: !args.uncompressed,
        qemu_img_options: args
            .qemu_img_options
            .clone()
            .or_else(|| std::env::var("QEMU_IMG_OPTIONS").ok())
            .filter(|o| !o.is_empty()),
        keep_on_error: args.keep_on_error,
        tmpfs: tmpfs_setting(args)?,
        force: args.force,
        elements_path: entries.to_vec(),
        library,
        run_parts,
        disk,
        records_dir: args.dib.records_dir.clone(),
        tmpfs_size: tmpfs_size()?,
        build_cache: !args.no_cache
            && std::env::var("DIBKIT_NO_CACHE").map_or(true, |v| v.is_empty() || v == "0"),
        cache_max_gib: match std::env::var("DIBKIT_CACHE_MAX_GIB") {
            Ok(v) => v.parse::<f64>().ok().filter(|g| *g >= 0.0).ok_or_else(|| {
                Failure::usage(
                    format!("DIBKIT_CACHE_MAX_GIB={v} is not a size in GiB"),
                    Some("give a number, e.g. DIBKIT_CACHE_MAX_GIB=20".to_owned()),
                )
            })?,
            Err(_) => 20.0,
        },
        cache_keep_seconds: match std::env::var("DIBKIT_CACHE_KEEP_SECONDS") {
            Ok(v) => v.parse::<f64>().ok().filter(|s| *s >= 0.0).ok_or_else(|| {
                Failure::usage(
                    format!("DIBKIT_CACHE_KEEP_SECONDS={v} is not a number of seconds"),
                    Some(
                        "give a number, e.g. DIBKIT_CACHE_KEEP_SECONDS=3 (0 keeps every tree)"
                            .to_owned(),
                    ),
                )
            })?,
            Err(_) => engine::stages::cache::KEEP_MIN_SECONDS,
        },
    })
}

/// Prints the timing table, drift notes and what was written.
fn report(summary: &engine::Summary) {
    let mut err = std::io::stderr().lock();
    let mut text = format!(
        "\n{:<16} {:<40} {:<22} {:>7}\n",
        "phase", "script", "element", "seconds"
    );
    let mut total = 0.0;
    let mut phases: Vec<(String, f64, usize)> = Vec::new();
    for r in &summary.records {
        // A script whose tree came from the build cache took no time in this build.
        let seconds = if r.cached { 0.0 } else { r.seconds };
        total += seconds;
        if r.cached {
            text.push_str(&format!(
                "{:<16} {:<40} {:<22} {:>7}\n",
                r.phase, r.script, r.element, "cached"
            ));
        } else {
            text.push_str(&format!(
                "{:<16} {:<40} {:<22} {:>7.1}\n",
                r.phase, r.script, r.element, r.seconds
            ));
        }
        match phases.last_mut() {
            Some((p, secs, n)) if *p == r.phase => {
                *secs += seconds;
                *n += 1;
            }
            _ => phases.push((r.phase.clone(), seconds, 1)),
        }
    }
    text.push_str(&format!(
        "\n{:<16} {:>8} {:>8}\n",
        "phase", "scripts", "seconds"
    ));
    for (p, secs, n) in &phases {
        text.push_str(&format!("{p:<16} {n:>8} {secs:>8.1}\n"));
    }
    text.push_str(&format!(
        "{:<16} {:>8} {total:>8.1}\n",
        "total",
        summary.records.len()
    ));
    for d in &summary.drift {
        text.push_str(&format!("note: {d}\n"));
    }
    for (_, o) in &summary.outputs {
        text.push_str(&format!("wrote {}\n", o.display()));
    }
    text.push_str(&format!(
        "manifest {}, log {}\n",
        summary.manifest.display(),
        summary.log.display()
    ));
    // The build is done; a closed stderr loses only the report.
    err.write_all(text.as_bytes()).ok();
}

/// Runs `dibkit build`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if args.checks.any() && !args.boot_test {
        return Err(Failure::usage(
            "the boot checks (--config-drive, --ssh, --key, --exec, --resize, ...) run with --boot-test",
            Some("add --boot-test".to_owned()),
        ));
    }
    if !args.files.is_empty() {
        return super::images::run(args);
    }
    let (lib, entries, plan) = args.request.plan(&args.elements)?;
    if plan.is_fatal() {
        let problems: Vec<String> = plan
            .problems
            .iter()
            .filter(|p| p.severity == crate::order::plan::Severity::Error)
            .map(|p| p.message.clone())
            .collect();
        return Err(Failure::new(
            exit::REJECTED,
            problems.join("; "),
            Some(
                "`dibkit order` shows the plan; `dibkit lint --elements ...` explains each problem"
                    .to_owned(),
            ),
        ));
    }
    let opts = options(args, &lib, &entries, &plan)?;
    let facts = crate::upload::BuildFacts::from_elements(
        &plan
            .elements
            .iter()
            .map(|e| e.name.clone())
            .collect::<Vec<_>>(),
        Some(&opts.arch),
    );
    if let Some(cloud) = &args.upload {
        // A cloud that is not configured fails now, not after the build.
        if !opts.wants_disk() {
            return Err(Failure::usage(
                "--upload needs a disk image type (-t qcow2, raw or vhd)",
                None,
            ));
        }
        crate::upload::cloud::resolve(Some(cloud), &crate::upload::cloud::Env::from_process())
            .map_err(|e| Failure::usage(e.message, e.hint))?;
    }
    let steps = engine::steps(&opts);
    if args.dry_run {
        let mut text = crate::order::render::table(&plan, None);
        text.push('\n');
        text.push_str(&engine::render(&steps, &opts, &plan));
        if let Some(disk) = &opts.disk {
            text.push_str(&disk_layout(disk));
        }
        anstream::AutoStream::auto(std::io::stdout())
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
        return Ok(0);
    }
    let mut progress = Progress::new(args.verbose);
    let summary = engine::run(opts, &lib, plan, &steps, &mut progress)?;
    drop(progress);
    report(&summary);
    let code = boot_test(args, &summary)?;
    if code != 0 {
        return Ok(code);
    }
    if let Some(cloud) = &args.upload {
        return upload_built(args, &summary, cloud, facts);
    }
    Ok(0)
}

/// `--upload CLOUD`: the first disk image, named after the output.
fn upload_built(
    args: &Args,
    summary: &engine::Summary,
    cloud: &str,
    facts: crate::upload::BuildFacts,
) -> Result<u8, Failure> {
    let image = summary
        .outputs
        .iter()
        .find_map(|(t, o)| t.is_disk().then_some(o))
        .ok_or_else(|| {
            Failure::usage(
                "--upload needs a disk image type (-t qcow2, raw or vhd)",
                None,
            )
        })?;
    let req = crate::upload::Request {
        file: image.clone(),
        name: args
            .output
            .file_name()
            .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned()),
        disk_format: None,
        properties: Vec::new(),
        facts,
        replace: None,
        timeout: std::time::Duration::from_secs(3600),
        cleanup_timeout: std::time::Duration::from_secs(120),
    };
    super::upload::upload(&req, Some(cloud))
}

/// `--boot-test`: boots the first disk image; 0 when it booted or was not asked for.
fn boot_test(args: &Args, summary: &engine::Summary) -> Result<u8, Failure> {
    if args.boot_test {
        let image = summary
            .outputs
            .iter()
            .find_map(|(t, o)| t.is_disk().then_some(o))
            .ok_or_else(|| {
                Failure::usage(
                    "--boot-test needs a disk image type (-t qcow2, raw or vhd)",
                    None,
                )
            })?;
        return super::boot::run(&super::boot::Args {
            image: image.clone(),
            uefi: false,
            timeout: 600,
            expect: "login: ?$|login:".to_owned(),
            memory: 1024,
            log: None,
            accel: "auto".to_owned(),
            checks: args.checks.clone(),
        });
    }
    Ok(0)
}
