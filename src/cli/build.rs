//! `dibkit build`: a real chroot build of the elements, written as disk images (qcow2, raw,
//! vhd) and/or a root filesystem tar.

use std::io::Write;
use std::path::PathBuf;

use super::Failure;
use super::request::RequestArgs;
use crate::build::{self, Options};

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// Elements to build, as for disk-image-create.
    #[arg(required = true, value_name = "ELEMENT")]
    pub elements: Vec<String>,

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

    /// Cache directory (`DIB_IMAGE_CACHE`) [default: ~/.cache/image-create].
    #[arg(long, value_name = "DIR")]
    pub image_cache: Option<PathBuf>,

    /// Full build log [default: NAME.log beside the output].
    #[arg(long, value_name = "FILE")]
    pub logfile: Option<PathBuf>,

    /// After the build, boot the first disk image with `dibkit boot` (BIOS) and fail the
    /// build if it does not reach a login prompt.
    #[arg(long)]
    pub boot_test: bool,

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

    #[command(flatten)]
    pub request: RequestArgs,
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
fn disk_layout(
    lib: &crate::element::discover::Library,
    plan: &crate::order::plan::Plan,
    opts: &Options,
) -> Result<String, Failure> {
    use std::fmt::Write as _;
    let (origin, text) = build::disk::select_config(lib, plan, &opts.arch)
        .map_err(|e| Failure::usage(format!("{e:#}"), None))?;
    let config = build::disk::load_config(&origin, &text).map_err(|e| Failure {
        code: 1,
        message: format!("{e:#}"),
        notes: Vec::new(),
        hint: Some("fix the block-device configuration".to_owned()),
    })?;
    let mut s = format!("\ndisk layout from {origin}\n");
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
    Ok(s)
}

/// Runs `dibkit build`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let (lib, entries, plan) = args.request.plan(&args.elements)?;
    let arch = args.request.arch();
    if plan.is_fatal() {
        let problems: Vec<String> = plan
            .problems
            .iter()
            .filter(|p| p.severity == crate::order::plan::Severity::Error)
            .map(|p| p.message.clone())
            .collect();
        return Err(Failure {
            code: 1,
            message: problems.join("; "),
            notes: Vec::new(),
            hint: Some(
                "`dibkit order` shows the plan; `dibkit lint --elements ...` explains each problem"
                    .to_owned(),
            ),
        });
    }
    let opts = Options {
        elements: args.elements.clone(),
        output: args.output.clone(),
        types: args.types.clone(),
        arch,
        debug_trace: u32::from(args.trace)
            + std::env::var("DIB_DEBUG_TRACE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        packages: args.packages.clone(),
        offline: args.offline,
        image_cache: args.image_cache.clone(),
        logfile: args.logfile.clone(),
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
        verbose: args.verbose,
        image_size: args.image_size,
    };
    if args.dry_run {
        let mut text = crate::order::render::table(&plan, None);
        text.push('\n');
        text.push_str(&build::dry_run(&plan, &opts));
        if opts.wants_disk() {
            text.push_str(&disk_layout(&lib, &plan, &opts)?);
        }
        anstream::AutoStream::auto(std::io::stdout())
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
        return Ok(0);
    }
    let log = opts.log_path();
    match build::run(opts, &lib, plan, &entries) {
        Ok(summary) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "\n{:<16} {:<40} {:<22} {:>7}",
                "phase", "script", "element", "seconds"
            );
            let mut total = 0.0;
            let mut phases: Vec<(String, f64, usize)> = Vec::new();
            for r in &summary.records {
                total += r.seconds;
                let _ = writeln!(
                    err,
                    "{:<16} {:<40} {:<22} {:>7.1}",
                    r.phase, r.script, r.element, r.seconds
                );
                match phases.last_mut() {
                    Some((p, secs, n)) if *p == r.phase => {
                        *secs += r.seconds;
                        *n += 1;
                    }
                    _ => phases.push((r.phase.clone(), r.seconds, 1)),
                }
            }
            let _ = writeln!(err, "\n{:<16} {:>8} {:>8}", "phase", "scripts", "seconds");
            for (p, secs, n) in &phases {
                let _ = writeln!(err, "{p:<16} {n:>8} {secs:>8.1}");
            }
            let _ = writeln!(
                err,
                "{:<16} {:>8} {total:>8.1}",
                "total",
                summary.records.len()
            );
            for d in &summary.drift {
                let _ = writeln!(err, "note: {d}");
            }
            for o in &summary.outputs {
                let _ = writeln!(err, "wrote {}", o.display());
            }
            let _ = writeln!(
                err,
                "manifest {}, log {}",
                summary.manifest.display(),
                summary.log.display()
            );
            drop(err);
            if args.boot_test {
                let image = summary
                    .outputs
                    .iter()
                    .find(|o| o.extension().is_some_and(|e| e != "tar"))
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
                });
            }
            Ok(0)
        }
        Err(failed) => {
            let build::Failed { failure: e, kept } = *failed;
            let code = e.exit_code();
            let mut notes = Vec::new();
            if let Some(dir) = &kept {
                notes.push(format!(
                    "kept the build directory {} (--keep-on-error); unmounted",
                    dir.display()
                ));
            }
            let message = match &e {
                build::Failure::Hook {
                    phase,
                    script,
                    element,
                    path,
                    status,
                    tail,
                } => {
                    notes.push(format!("script {}", path.display()));
                    if !tail.is_empty() {
                        notes.push(format!(
                            "last lines of its output:\n    {}",
                            tail.join("\n    ")
                        ));
                    }
                    format!(
                        "{phase}/{script} from element `{element}` failed with exit status {status}"
                    )
                }
                other => format!("{other:#}"),
            };
            let hint = match &e {
                build::Failure::Preflight(_) => None,
                _ => Some(format!("the full log is {}", log.display())),
            };
            Err(Failure {
                code,
                message,
                notes,
                hint,
            })
        }
    }
}
