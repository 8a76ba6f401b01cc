//! dib's block-device stage and its end: the tree moves aside, block-device.d runs, fstab is
//! written, the disk image is created and mounted where the tree was, its root filesystem
//! made from the tree (`mke2fs -d`, one ext filesystem) or the tree copied in (any other
//! layout),
//! the chroot mounts come back for pre-finalise/finalise/cleanup; after the scrub the image
//! is filled (FAT), trimmed, unmounted and detached.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use anyhow::{Context, anyhow};

use super::chroot::mount_api_filesystems;
use crate::engine::context::Build;
use crate::engine::ledger::Owner;
use crate::engine::{cmd, disk, sys};
use crate::error::Failure;

/// Releases the chroot's mounts and moves the tree aside; block-device.d runs next.
pub fn move_tree_aside(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    b.ledger.release(Owner::Chroot, &mut b.log)?;
    let left = sys::mount::sweep(&paths.mnt);
    if !left.is_empty() {
        return Err(anyhow!("still mounted in the image root: {left:?}").into());
    }
    fs::rename(&paths.mnt, &paths.built).context("moving the tree aside")?;
    fs::create_dir_all(&paths.mnt).context("creating the image mount point")?;
    Ok(())
}

/// Creates the disk image where the tree was and copies the tree in.
pub fn create(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    let d = b
        .opts
        .disk
        .clone()
        .context("a disk build has a block-device configuration")?;
    let size = disk::image_size(&paths.built, &d, &b.plan)?;
    let etc = paths.built.join("etc");
    fs::create_dir_all(&etc).context("creating etc")?;
    fs::write(etc.join("fstab"), d.config.fstab()).context("writing fstab")?;
    let from_tree = disk::made_from_tree(&d.config).is_some();
    b.step(&format!(
        "creating a {} MiB disk image{}",
        size / 1024 / 1024,
        if from_tree {
            ", its filesystem made from the tree (mke2fs -d)"
        } else {
            ""
        }
    ));
    let mut image = disk::Image::default();
    let created = disk::create(
        &d.config,
        &paths.image_dir,
        size,
        &paths.mnt,
        Some(&paths.built),
        &mut image,
        &mut b.ledger,
        &mut b.log,
    );
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
    if from_tree {
        // mke2fs -d fills the filesystem but gives its root directory its own mode and
        // owner; `cp -a tree/.` would have copied the tree root's.
        let meta = fs::metadata(&paths.built).context("reading the tree's root")?;
        std::os::unix::fs::chown(&paths.mnt, Some(meta.uid()), Some(meta.gid()))
            .context("setting the image root's owner")?;
        fs::set_permissions(&paths.mnt, meta.permissions())
            .context("setting the image root's mode")?;
    } else {
        b.step("copying the tree into the image");
        cmd::run(
            Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", paths.built.display()))
                .arg(&paths.mnt),
        )?;
    }
    fs::remove_dir_all(&paths.built)
        .with_context(|| format!("removing {}", paths.built.display()))?;
    mount_api_filesystems(b)
}

/// A tar build: block-device.d does not run (said only when an element has it).
pub fn skip_block_device(b: &mut Build<'_>) {
    if b.paths().hooks.join("block-device.d").is_dir() {
        b.step("block-device.d: skipped (no disk image in a tar build)");
    }
}

/// Fills the FAT filesystems, trims, unmounts and detaches the image.
pub fn release(b: &mut Build<'_>) -> Result<(), Failure> {
    let Some(image) = b.image.as_mut() else {
        return Ok(());
    };
    if !image.fat_staged.is_empty() {
        b.sink.event(crate::engine::sink::Event::Step(
            "filling the FAT filesystems with mtools",
        ));
    }
    image.fill_fat()?;
    disk::trim(&b.ledger, &mut b.log);
    b.ledger.release(Owner::Image, &mut b.log)?;
    Ok(())
}
