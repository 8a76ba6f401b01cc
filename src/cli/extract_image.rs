//! `dibkit extract-image`: an existing qcow2 or raw image into a root tree, or its
//! os-release printed. Internal: the local-image element and the image-based OS elements
//! call it from their hooks as
//!
//! ```text
//! "${DIBKIT:-dibkit}" extract-image --image FILE --root DIR   # fills DIR with the image's tree
//! "${DIBKIT:-dibkit}" extract-image --image FILE --os-release # prints the image's os-release
//! ```
//!
//! Both use (or fill) the cache under `$DIB_IMAGE_CACHE/extract-image`, keyed by the
//! image's SHA-256. Progress goes to stderr, prefixed `extract-image:`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Parser;

use super::Failure;
use crate::extract;

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct Args {
    /// The qcow2 or raw disk image.
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// Fill this directory (created if missing) with the image's tree.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "os_release",
        conflicts_with = "os_release"
    )]
    pub root: Option<PathBuf>,
    /// Print the image's /etc/os-release (/usr/lib/os-release when it has no other) on stdout.
    #[arg(long)]
    pub os_release: bool,
    /// The cache directory (default: `$DIB_IMAGE_CACHE`, else `~/.cache/image-create`).
    #[arg(long, value_name = "DIR", env = "DIB_IMAGE_CACHE")]
    pub image_cache: Option<PathBuf>,
}

/// Extracts (or finds in the cache) the image, then unpacks it or prints its os-release.
///
/// # Errors
/// See the subcommand's exit statuses.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let image_cache = args.image_cache.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".cache/image-create")
    });
    let request = extract::Request {
        image: &args.image,
        image_cache: &image_cache,
        stop: &stop,
    };
    // Progress is for the build log: a closed stderr must not stop the extraction.
    let mut progress = |line: &str| {
        let _ = writeln!(std::io::stderr(), "extract-image: {line}");
    };
    let extracted = extract::extract(&request, &mut progress)?;
    if let Some(root) = &args.root {
        extracted.unpack(root, &stop)?;
        progress(&format!("unpacked into {}", root.display()));
    } else {
        print!("{}", extracted.os_release(&args.image)?);
    }
    Ok(0)
}
