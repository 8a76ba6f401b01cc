//! `dibkit upload` (and `build --upload`): the cloud resolved from clouds.yaml or the `OS_*`
//! variables, the library's upload run with an interrupt flag, its events drawn as a
//! progress bar (plain lines when stderr is not a terminal), and its outcome mapped to an
//! exit status.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Failure;
use crate::error::exit;
use crate::upload::cloud::{self, Env};
use crate::upload::format::DiskFormat;
use crate::upload::{self as lib, BuildFacts, Cleanup, Error, Event, Outcome, Replace, Request};

/// Glance refused the credentials or the token.
pub const AUTH: u8 = 6;
/// The cloud failed: server error, connection lost, time limit, stored image not the file.
pub const CLOUD: u8 = 7;

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// The disk image (qcow2, raw, vhd, ...; the format is read from its content).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The cloud, a name in clouds.yaml [default: OS_CLOUD, else the OS_* variables].
    #[arg(long, value_name = "CLOUD")]
    pub cloud: Option<String>,

    /// The image's name in Glance [default: the file name without its extension].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// An image property, e.g. `hw_disk_bus=virtio` (repeatable; wins over the defaults:
    /// os_distro, hw_firmware_type and min_disk from the build and the file).
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,

    /// The disk format the file must have; the upload is refused if its content says
    /// otherwise [default: read from the content].
    #[arg(long, value_name = "FORMAT")]
    pub disk_format: Option<DiskFormat>,

    /// When other images have the name: rename them (`NAME.replaced-DATE`) or delete them,
    /// once the new image is active and checked. Without it such an upload is refused.
    #[arg(long, value_name = "HOW")]
    pub replace: Option<Replace>,

    /// Seconds to wait for the image to become active once its data is sent.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,

    /// Seconds to keep trying to delete a failed upload's image while the cloud cannot be
    /// reached.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub cleanup_timeout: u64,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Draws the events.
struct Progress {
    bar: Option<ProgressBar>,
    stage: &'static str,
    /// The last quarter reported on a plain stream.
    quarter: u64,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: None,
            stage: "",
            quarter: 0,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                writeln!(std::io::stderr().lock(), "{text}").ok();
            }
        }
    }

    /// Bytes done of a total, for `stage` (hashing, sending).
    fn bytes(&mut self, stage: &'static str, done: u64, total: u64) {
        if self.stage != stage {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            self.stage = stage;
            self.quarter = 0;
            if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:8} [{bar:32}] {binary_bytes:>10}/{binary_total_bytes:<10} \
                         {binary_bytes_per_sec:>12} {eta:>4}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_message(stage);
                self.bar = Some(bar);
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else {
            let quarter = (done * 4).checked_div(total).unwrap_or(4);
            if quarter > self.quarter {
                self.quarter = quarter;
                self.line(&format!("{stage}: {}%", quarter * 25));
            }
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Inspected(i) => self.line(&format!(
                "{} image, {} bytes{}",
                i.format,
                i.file_size,
                i.virtual_size
                    .map(|v| format!(", a {v}-byte disk"))
                    .unwrap_or_default()
            )),
            Event::Hashing { done, total } => self.bytes("hashing", done, total),
            Event::Connected { image_url } => self.line(&format!("image service: {image_url}")),
            Event::Created { id, name } => self.line(&format!("created image {id} as `{name}`")),
            Event::Sending { sent, total } => self.bytes("sending", sent, total),
            Event::Waiting { status } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.line(&format!("status: {status}"));
            }
            Event::Renamed { id, to } => self.line(&format!("renamed old image {id} to `{to}`")),
            Event::Deleted { id } => self.line(&format!("deleted image {id}")),
            Event::CleanupRetry { id, reason } => self.line(&format!(
                "could not delete image {id} yet ({reason}); trying again"
            )),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The exit status and words for a failed upload.
fn failure(error: &Error, cleanup: Cleanup, file: &Path) -> Failure {
    let (code, hint) = match error {
        Error::Config { hint, .. } => (exit::USAGE, hint.clone()),
        Error::Io { .. } | Error::Property { .. } => (exit::USAGE, None),
        Error::FormatMismatch { found, .. } => (
            exit::REJECTED,
            Some(format!(
                "convert it (`qemu-img convert -O FORMAT`), or give --disk-format {found}; \
                 nothing was sent"
            )),
        ),
        Error::Unsafe { .. } => (
            exit::REJECTED,
            Some(format!(
                "flatten it: qemu-img convert -O qcow2 {} flat.qcow2",
                file.display()
            )),
        ),
        Error::Exists { .. } => (
            exit::REJECTED,
            Some(
                "give --replace rename (or delete) to replace it, or choose another --name"
                    .to_owned(),
            ),
        ),
        Error::Refused { .. } => (exit::REJECTED, None),
        Error::Auth { .. } => (
            AUTH,
            Some("check the cloud's credentials in clouds.yaml or the OS_* variables".to_owned()),
        ),
        Error::Cloud { .. } => (CLOUD, None),
        Error::Interrupted => (exit::INTERRUPTED, None),
    };
    let mut f = Failure::new(code, error.to_string(), hint);
    match cleanup {
        Cleanup::Nothing => {}
        Cleanup::Deleted { id } => {
            f = f.with_note(format!("the image it created ({id}) was deleted"));
        }
        Cleanup::Left { id, reason } => {
            f = f.with_note(format!(
                "the image it created ({id}) is still there: deleting it failed: {reason}"
            ));
            f.hint = Some(format!("delete it with: openstack image delete {id}"));
        }
    }
    f
}

/// Uploads, reporting on stderr and the result on stdout; used by `upload` and `build --upload`.
pub fn upload(req: &Request, cloud_name: Option<&str>) -> Result<u8, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // A second signal while the failed upload is cleaned up ends dibkit at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| Failure::usage(format!("installing the signal handlers: {e}"), None))?;
    }
    // The format is checked before the configuration is even read: nothing is sent.
    lib::inspect(req).map_err(|e| failure(&e, Cleanup::Nothing, &req.file))?;
    let cloud = cloud::resolve(cloud_name, &Env::from_process())
        .map_err(|e| failure(&e.into(), Cleanup::Nothing, &req.file))?;
    let mut progress = Progress::new();
    let result = lib::upload(req, &cloud, &stop, &mut |e| progress.event(e));
    drop(progress);
    let mut out = std::io::stdout().lock();
    match result {
        Ok(Outcome::Uploaded {
            id,
            format,
            size,
            md5,
            sha256,
        }) => {
            writeln!(
                out,
                "uploaded {} to cloud `{}` as `{}`: image {id}, active, {format}, {size} bytes; \
                 Glance's checksum and os_hash_value match the file (md5 {md5}, sha256 {sha256})",
                req.file.display(),
                cloud.name,
                req.name
            )
            .ok();
            Ok(0)
        }
        Ok(Outcome::Skipped { id }) => {
            writeln!(
                out,
                "skipped: image {id} named `{}` on cloud `{}` already has this file's hashes",
                req.name, cloud.name
            )
            .ok();
            Ok(0)
        }
        Err(lib::Failed { error, cleanup }) => Err(failure(&error, cleanup, &req.file)),
    }
}

/// The name an image gets by default: its file name without the extension.
#[must_use]
pub fn default_name(file: &Path) -> String {
    file.file_stem()
        .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Runs `dibkit upload`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let facts = BuildFacts::from_manifest(&args.file)
        .map_err(|e| failure(&e, Cleanup::Nothing, &args.file))?
        .map(|(_, f)| f)
        .unwrap_or_default();
    let req = Request {
        file: args.file.clone(),
        name: args
            .name
            .clone()
            .unwrap_or_else(|| default_name(&args.file)),
        disk_format: args.disk_format,
        properties: args.properties.clone(),
        facts,
        replace: args.replace,
        timeout: Duration::from_secs(args.timeout),
        cleanup_timeout: Duration::from_secs(args.cleanup_timeout),
    };
    upload(&req, args.cloud.as_deref())
}
