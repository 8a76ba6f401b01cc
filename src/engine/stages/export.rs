//! The outputs: the tar from the tree, disk types converted from the raw image, each
//! written under a temporary name and renamed into place, with checksums on request; then
//! the manifest of what ran.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use anyhow::{Context, anyhow};

use crate::element::model::Phase;
use crate::engine::context::{Build, Summary};
use crate::engine::options::OutputType;
use crate::engine::{cmd, disk, qcow2};
use crate::error::Failure;

/// `.NAME.partial` beside `dest`.
fn partial(dest: &Path) -> PathBuf {
    dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ))
}

/// Writes output type `t`.
pub fn write(b: &mut Build<'_>, t: OutputType) -> Result<(), Failure> {
    let dest = b.opts.output_path(t.name());
    b.step(&format!("writing {}", dest.display()));
    match t.disk_format() {
        None => write_tar(b, &dest)?,
        Some(format) => {
            let raw = b
                .image
                .as_ref()
                .map(|i| i.raw.clone())
                .context("a disk type is written after the image was made")?;
            // The cluster index lets a rebuild copy the clusters it compressed last time.
            let index = b.opts.build_cache.then(|| qcow2::index::Config {
                dir: b.opts.image_cache.join(qcow2::index::DIR),
                max_bytes: super::cache::gib_bytes(b.opts.cache_max_gib),
            });
            let notes = disk::convert_with_index(
                &raw,
                format,
                &dest,
                b.opts.compress,
                b.opts.qemu_img_options.as_deref(),
                index.as_ref(),
                &b.interrupted,
            )
            .map_err(|e| {
                if b.interrupted.load(Ordering::SeqCst) {
                    Failure::interrupted()
                } else {
                    Failure::from(e)
                }
            })?;
            for n in notes {
                b.log_line(&n);
            }
        }
    }
    write_checksums(b, t, &dest)?;
    b.outputs.push((t, dest));
    Ok(())
}

fn write_tar(b: &Build<'_>, dest: &Path) -> Result<(), Failure> {
    let partial = partial(dest);
    // 128 KiB records: half the time of tar's default 10 KiB in write calls.
    let written = cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(&b.paths().mnt)
            .args(["--numeric-owner", "--xattrs", "--acls", "-b", "256", "-cf"])
            .arg(&partial)
            .arg("."),
    );
    if let Err(e) = written {
        // tar may have failed before creating it; the error that matters is tar's.
        fs::remove_file(&partial).ok();
        return Err(e.context(format!("writing {}", dest.display())).into());
    }
    fs::rename(&partial, dest).with_context(|| format!("renaming into {}", dest.display()))?;
    Ok(())
}

/// `--checksum`: `.sha256` and `.md5` beside an output.
fn write_checksums(b: &Build<'_>, t: OutputType, dest: &Path) -> Result<(), Failure> {
    if !b.opts.checksum {
        return Ok(());
    }
    for (tool, ext) in [("sha256sum", "sha256"), ("md5sum", "md5")] {
        let out = cmd::run(Command::new(tool).arg(dest))?;
        fs::write(b.opts.output_path(&format!("{}.{ext}", t.name())), out)
            .context("writing a checksum")?;
    }
    Ok(())
}

/// Scripts the plan expected that did not run, and scripts that ran but were not planned
/// (hooks added during the build, e.g. by install-types).
fn drift(b: &Build<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for p in &b.plan.phases {
        // A tar build makes no disk, so block-device.d does not run (a difference from dib
        // the README lists); a disk build must run it as planned.
        if p.phase == Phase::BlockDeviceD && !b.opts.wants_disk() {
            continue;
        }
        for s in &p.scripts {
            if !b
                .records
                .iter()
                .any(|r| r.phase == p.phase.dir() && r.script == s.name)
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
            .any(|p| p.phase.dir() == r.phase && p.scripts.iter().any(|s| s.name == r.script));
        if !planned {
            out.push(format!("ran but not planned: {}/{}", r.phase, r.script));
        }
    }
    let ran: Vec<(String, String)> = b
        .records
        .iter()
        .map(|r| (r.phase.clone(), r.script.clone()))
        .collect();
    out.extend(crate::engine::calls::drift(&b.plan, &ran, &b.calls));
    out
}

/// Writes the manifest and records the build's summary.
pub fn manifest(b: &mut Build<'_>) -> Result<(), Failure> {
    let path = b.opts.manifest_path();
    let drift = drift(b);
    let value = serde_json::json!({
        "elements": b.plan.elements.iter().map(|e| &e.name).collect::<Vec<_>>(),
        "request": b.plan.request,
        "outputs": b.outputs.iter().map(|(_, o)| o.display().to_string()).collect::<Vec<_>>(),
        "scripts": b.records,
        "calls": b.calls,
        "drift": drift,
    });
    fs::write(&path, format!("{value:#}\n"))
        .with_context(|| format!("writing {}", path.display()))
        .map_err(|e| anyhow!("{e:#}"))?;
    b.summary = Some(Summary {
        outputs: b.outputs.clone(),
        manifest: path,
        log: b.opts.log.clone(),
        records: b.records.clone(),
        drift,
    });
    Ok(())
}
