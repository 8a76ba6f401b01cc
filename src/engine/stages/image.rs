//! dib's block-device stage and its end: the tree moves aside, block-device.d runs, fstab is
//! written, the disk image is created and mounted where the tree was, its root filesystem
//! made from the tree (`mke2fs -d`, one ext filesystem) or the tree copied in (any other
//! layout),
//! the chroot mounts come back for pre-finalise/finalise/cleanup; after the scrub the image
//! is filled (FAT), trimmed, unmounted and detached.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// Creates the disk image where the tree was and copies the tree in; or, when the build
/// cache has the disk image this tree and layout make, attaches a copy of it.
pub fn create(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    let d = b
        .opts
        .disk
        .clone()
        .context("a disk build has a block-device configuration")?;
    let mut image = disk::Image::default();
    if let Some((made, _reading)) = b.cache.disk.take() {
        b.step(if b.cache.disk_copied {
            "attaching the copy of the cached disk image made while root.d ran (new filesystem UUIDs and partition-table identifiers)"
        } else {
            "attaching a copy of the cached disk image (new filesystem UUIDs and partition-table identifiers)"
        });
        let copied = b.cache.disk_copied;
        let attached = disk::attach(
            &d.config,
            &paths.image_dir,
            &made,
            copied,
            &mut image,
            &mut b.ledger,
        );
        let devices = image.block_devices();
        let image_dev = image_device(&image);
        b.image = Some(image);
        attached?;
        export_devices(b, image_dev, &devices);
        fs::remove_dir_all(&paths.built)
            .with_context(|| format!("removing {}", paths.built.display()))?;
        mount_image(b, &d)?;
        // The chroot's resolv.conf is the host's while hooks run: the host's of now.
        let resolv = paths.mnt.join("etc/resolv.conf");
        if fs::symlink_metadata(&resolv).is_ok_and(|m| m.is_file()) {
            fs::write(&resolv, fs::read("/etc/resolv.conf").unwrap_or_default())
                .context("writing resolv.conf into the image")?;
        }
        if let Some((uid, gid, mode)) = b.cache.disk_root {
            std::os::unix::fs::chown(&paths.mnt, Some(uid), Some(gid))
                .context("setting the image root's owner")?;
            fs::set_permissions(&paths.mnt, fs::Permissions::from_mode(mode))
                .context("setting the image root's mode")?;
        }
        return mount_api_filesystems(b);
    }
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
    let made = disk::make(
        &d.config,
        &paths.image_dir,
        size,
        Some(&paths.built),
        &mut image,
        &mut b.ledger,
    );
    let image_dev = image_device(&image);
    let devices = image.block_devices();
    let raw = image.raw.clone();
    b.image = Some(image);
    made?;
    if from_tree {
        let meta = fs::metadata(&paths.built).context("reading the tree's root")?;
        super::cache::save_disk(b, &raw, (meta.uid(), meta.gid(), meta.mode()))?;
    }
    mount_image(b, &d)?;
    export_devices(b, image_dev, &devices);
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

fn image_device(image: &disk::Image) -> Option<String> {
    image
        .devices
        .iter()
        .find(|(n, _)| n == "image0")
        .map(|(_, d)| d.clone())
}

fn export_devices(b: &mut Build<'_>, image_dev: Option<String>, devices: &str) {
    if let Some(dev) = image_dev {
        b.set_env("IMAGE_BLOCK_DEVICE", &dev);
    }
    b.set_env("IMAGE_BLOCK_DEVICES", devices);
}

fn mount_image(b: &mut Build<'_>, d: &crate::engine::DiskOptions) -> Result<(), Failure> {
    let mnt = b.paths().mnt.clone();
    let image = b.image.as_mut().context("the disk image is made")?;
    disk::mount_all(&d.config, &mnt, image, &mut b.ledger, &mut b.log)?;
    Ok(())
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
