//! The disk image: after post-root.d the tree moves aside, a raw image is created from the
//! block-device configuration (loop device, partition table, filesystems, mounts, fstab),
//! the tree is copied in, finalise runs on it, and the image is unmounted, detached and
//! converted. Every loop device, partition mapping and mount is released in reverse order
//! on every path out.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, anyhow, bail};

use crate::blockdev::config::{Config, Kind, Legacy, TableKind, parse_with};
use crate::blockdev::layout;
use crate::element::discover::{self, Library};
use crate::order::plan::Plan;

use super::cmd;
use super::ledger::{Ledger, Owner};
use super::options::DiskOptions;
use super::sys::random;

/// Where the configuration comes from, as dib's `block_device_create_config_file` chooses it: `DIB_BLOCK_DEVICE_CONFIG`
/// (`file://PATH` or inline YAML), else the first element (in name order; dib uses bash's
/// hash order) with `block-device-<ARCH>.yaml` or `block-device-default.yaml`, else the
/// plain filesystem fallback. `from_env` is `DIB_BLOCK_DEVICE_CONFIG`. Returns
/// `(origin, text)`.
pub fn select_config(
    lib: &Library,
    plan: &Plan,
    arch: &str,
    from_env: Option<&str>,
) -> Result<(String, String)> {
    if let Some(v) = from_env {
        if let Some(path) = v.strip_prefix("file://") {
            let text = fs::read_to_string(path)
                .with_context(|| format!("DIB_BLOCK_DEVICE_CONFIG: reading {path}"))?;
            return Ok((path.to_owned(), text));
        }
        if !v.is_empty() {
            return Ok(("DIB_BLOCK_DEVICE_CONFIG".to_owned(), v.to_owned()));
        }
    }
    let arch_file = if "ppc64le ppc64el".contains(arch) && !arch.is_empty() {
        "block-device-ppc64el.yaml".to_owned()
    } else {
        format!("block-device-{arch}.yaml")
    };
    for e in &plan.elements {
        let Some(element) = lib.get(&e.name) else {
            continue;
        };
        for file in [arch_file.as_str(), "block-device-default.yaml"] {
            if let Some(bytes) = discover::read(&element.root, file)? {
                return Ok((
                    element.root.display_path(file),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    Ok((
        "(default: a filesystem on the whole image)".to_owned(),
        crate::blockdev::config::FALLBACK.to_owned(),
    ))
}

/// Parses the selected configuration with the legacy parameters (`FS_TYPE`, `ROOT_LABEL`).
pub fn load_config(origin: &str, text: &str, legacy: &Legacy) -> Result<Config> {
    parse_with(text, legacy).map_err(|e| match e.line {
        Some(l) => anyhow!("{origin}:{l}: {}", e.message),
        None => anyhow!("{origin}: {}", e.message),
    })
}

/// Image size in bytes, as disk-image-create computes it (in KiB, from the tree's `du`).
pub fn image_size(tree: &Path, disk: &DiskOptions, plan: &Plan) -> Result<u64> {
    let mut kib: u64 = if let Some(g) = disk.size_gib {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let v = (g * 1_048_576.0) as u64;
        v
    } else {
        // dib's `du -a -c -x`, without listing every file: the same total.
        let out = cmd::run(Command::new("du").args(["-s", "-x", "-k"]).arg(tree))?;
        let total: u64 = out
            .lines()
            .last()
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("cannot read du's total for {}", tree.display()))?;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        match disk.extra_size_mib {
            Some(extra_mib) => total + (extra_mib * 1024.0) as u64,
            None => (total as f64 / 0.6) as u64,
        }
    };
    if disk.size_gib.is_none() && disk.config.root_fstype().as_deref() == Some("ext4") {
        kib += disk.journal_mib * 1024;
    }
    if plan
        .elements
        .iter()
        .any(|e| e.name.contains("block-device-efi"))
    {
        kib += 525 * 1024;
    }
    Ok(kib.div_ceil(64) * 64 * 1024)
}

/// How [`image_size`] sizes the image, in words (for the dry run).
#[must_use]
pub fn size_description(disk: &DiskOptions, plan: &Plan) -> String {
    let mut s = match (disk.size_gib, disk.extra_size_mib) {
        (Some(g), _) => format!("{g} GiB (--image-size)"),
        (None, Some(extra)) => {
            format!("the tree's size plus {extra} MiB (DIB_IMAGE_EXTRA_SIZE)")
        }
        (None, None) => "the tree's size / 0.6 (DIB_IMAGE_EXTRA_SIZE unset)".to_owned(),
    };
    if disk.size_gib.is_none() && disk.config.root_fstype().as_deref() == Some("ext4") {
        s.push_str(&format!(
            " + {} MiB ext4 journal (DIB_JOURNAL_SIZE)",
            disk.journal_mib
        ));
    }
    if plan
        .elements
        .iter()
        .any(|e| e.name.contains("block-device-efi"))
    {
        s.push_str(" + 525 MiB for the ESP");
    }
    s
}

/// A created image: its file, the block device of each node, and the FAT filesystems left
/// to fill. Its loop device and mounts are in the build's [`Ledger`] (owner [`Owner::Image`]).
#[derive(Debug, Default)]
pub struct Image {
    pub raw: PathBuf,
    /// Block device of each node (`image0`, partitions, mkfs nodes).
    pub devices: Vec<(String, String)>,
    /// FAT filesystems the host cannot mount: `(directory in the tree, device)`. The
    /// directory is an ordinary one during finalise; [`Image::fill_fat`] copies it in.
    pub fat_staged: Vec<(PathBuf, String)>,
}

impl Image {
    /// The device a node sits on (following mkfs/mount bases to a block device).
    fn device(&self, config: &Config, name: &str) -> Option<String> {
        let mut cur = name.to_owned();
        for _ in 0..8 {
            if let Some((_, d)) = self.devices.iter().find(|(n, _)| *n == cur) {
                return Some(d.clone());
            }
            cur = config.node(&cur)?.base.clone();
        }
        None
    }

    /// `IMAGE_BLOCK_DEVICES` as dib exports it: ` [name]=device ` pairs.
    #[must_use]
    pub fn block_devices(&self) -> String {
        let mut s = String::new();
        for (n, d) in &self.devices {
            s.push_str(&format!("[{n}]={d} "));
        }
        s
    }

    /// Copies each staged FAT directory into its filesystem with mtools and empties the
    /// directory, so the mount point in the root filesystem is bare as on a mounted image.
    ///
    /// # Errors
    /// mcopy fails (the filesystem is too small, or a name FAT cannot hold).
    pub fn fill_fat(&mut self) -> Result<()> {
        for (dir, dev) in std::mem::take(&mut self.fat_staged) {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            if names.is_empty() {
                continue;
            }
            cmd::run(
                Command::new("mcopy")
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .args(["-s", "-p", "-Q", "-i", &dev])
                    .args(&names)
                    .arg("::/"),
            )
            .with_context(|| {
                format!("copying {} into the FAT filesystem on {dev}", dir.display())
            })?;
            for n in names {
                let removed = if n.is_dir() && !n.is_symlink() {
                    fs::remove_dir_all(&n)
                } else {
                    fs::remove_file(&n)
                };
                removed.with_context(|| format!("removing {} after copying it", n.display()))?;
            }
        }
        Ok(())
    }
}

/// Discards the free blocks of every filesystem of the image, as dib does before unmounting:
/// the loop device punches holes in the image file, so files deleted during the build (apt
/// lists and caches, /tmp) leave zeros, which the conversion skips, instead of stale data it
/// would store. Best effort: a filesystem that cannot be trimmed is left as is (and logged).
pub fn trim(ledger: &Ledger, log: &mut dyn Write) {
    // Blocks freed in the running journal transaction are not free for discard yet.
    cmd::best_effort(&mut Command::new("sync"), log);
    for m in ledger.mounts(Owner::Image).iter().rev() {
        cmd::best_effort(Command::new("fstrim").arg(m), log);
    }
}

/// The mkfs node whose filesystem can be made from the tree itself (`mke2fs -d`) rather
/// than filled by a copy through its mount: the layout's only filesystem, mounted at /, of
/// type ext2, ext3 or ext4. Any other layout (a separate /boot, an EFI partition, swap, xfs,
/// btrfs) is filled by copying.
#[must_use]
pub fn made_from_tree(config: &Config) -> Option<String> {
    if config.mounts().len() != 1 || config.mount_points() != "/" {
        return None;
    }
    let mount = config.mounts().into_iter().next()?;
    let node = config.node(&mount.base)?;
    match &node.kind {
        Kind::Mkfs { fstype, .. } if matches!(fstype.as_str(), "ext2" | "ext3" | "ext4") => {
            Some(node.name.clone())
        }
        _ => None,
    }
}

/// Creates the disk image and mounts its filesystems at `mnt`; with `tree`, the filesystem
/// [`made_from_tree`] names is made holding it (owners, modes, links, device nodes and
/// extended attributes as in the tree).
#[allow(clippy::too_many_arguments)]
pub fn create(
    config: &Config,
    image_dir: &Path,
    size: u64,
    mnt: &Path,
    tree: Option<&Path>,
    image: &mut Image,
    ledger: &mut Ledger,
    log: &mut dyn Write,
) -> Result<()> {
    make(config, image_dir, size, tree, image, ledger)?;
    mount_all(config, mnt, image, ledger, log)
}

/// The first half of [`create`]: the image file, its loop device, partitions and
/// filesystems, nothing mounted yet.
pub fn make(
    config: &Config,
    image_dir: &Path,
    size: u64,
    tree: Option<&Path>,
    image: &mut Image,
    ledger: &mut Ledger,
) -> Result<()> {
    let from_tree = tree.and_then(|t| made_from_tree(config).map(|n| (n, t)));
    let mut made_in_file: Option<String> = None;
    for node in config.order() {
        match &node.kind {
            Kind::LocalLoop {
                size: own,
                directory,
                block_size,
            } => {
                let dir = directory
                    .as_ref()
                    .map_or_else(|| image_dir.to_path_buf(), PathBuf::from);
                fs::create_dir_all(&dir)?;
                let raw = dir.join(format!("{}.raw", node.name));
                let f = fs::File::create(&raw)
                    .with_context(|| format!("creating {}", raw.display()))?;
                let size = own.unwrap_or(size);
                f.set_len(size)
                    .with_context(|| format!("sizing {}", raw.display()))?;
                drop(f);
                // The filesystem made from the tree goes straight into the file, at its
                // partition's offset, before the loop device exists: no I/O through the
                // loop device, and nothing it could have cached goes stale.
                // (sfdisk writes a file's table in 512-byte sectors.)
                let region = from_tree
                    .as_ref()
                    .filter(|_| *block_size == 512)
                    .and_then(|(n, t)| Some((n, *t, file_region(config, &node.name, n, size)?)));
                if let Some((mkfs_node, tree, (offset, len))) = region {
                    let file = raw.display().to_string();
                    for (index, table) in config.partitionings.iter().enumerate() {
                        if table.base == node.name {
                            let placed = layout::place(config, index, size)
                                .map_err(|e| anyhow!("partitioning `{}`: {e}", node.name))?;
                            write_table(&file, &sfdisk_script(config, index, &placed))?;
                        }
                    }
                    let Some(Kind::Mkfs {
                        fstype,
                        label,
                        opts,
                        uuid,
                    }) = config.node(mkfs_node).map(|n| &n.kind)
                    else {
                        bail!("mkfs `{mkfs_node}` is not a filesystem");
                    };
                    mkfs(
                        fstype,
                        label,
                        opts,
                        uuid.as_deref(),
                        Some(tree),
                        &file,
                        Some((offset, len)),
                    )
                    .with_context(|| format!("mkfs `{mkfs_node}`"))?;
                    made_in_file = Some(mkfs_node.clone());
                }
                let dev = attach_loop(&raw, *block_size, ledger)?;
                if node.name == "image0" {
                    image.raw.clone_from(&raw);
                }
                image.devices.push((node.name.clone(), dev.clone()));
                partition(
                    config,
                    node.name.as_str(),
                    size,
                    &dev,
                    image,
                    ledger,
                    made_in_file.is_none(),
                )?;
            }
            // Partitions are made with their table, under the loop device; fstab lines are
            // written with the tree; mounts come after every filesystem is made.
            Kind::Partition { .. } | Kind::Fstab { .. } | Kind::Mount { .. } => {}
            Kind::Mkfs {
                fstype,
                label,
                opts,
                uuid,
            } => {
                let dev = image.device(config, &node.base).ok_or_else(|| {
                    anyhow!("mkfs `{}`: no device for `{}`", node.name, node.base)
                })?;
                if made_in_file.as_ref() != Some(&node.name) {
                    let populate = from_tree
                        .as_ref()
                        .filter(|(n, _)| *n == node.name)
                        .map(|(_, t)| *t);
                    mkfs(fstype, label, opts, uuid.as_deref(), populate, &dev, None)
                        .with_context(|| format!("mkfs `{}`", node.name))?;
                }
                image.devices.push((node.name.clone(), dev));
            }
        }
    }
    Ok(())
}

/// The layouts whose made image the build cache can keep and attach again ([`attach`]):
/// one image file where the build directory keeps it, holding one ext2/3/4 root
/// ([`made_from_tree`]).
#[must_use]
pub fn reattachable(config: &Config) -> bool {
    let loops = config
        .order()
        .into_iter()
        .filter(|n| matches!(n.kind, Kind::LocalLoop { .. }))
        .collect::<Vec<_>>();
    made_from_tree(config).is_some()
        && loops.len() == 1
        && loops.iter().all(|n| {
            n.name == "image0"
                && matches!(
                    &n.kind,
                    Kind::LocalLoop {
                        directory: None,
                        ..
                    }
                )
        })
}

/// Instead of [`make`], for a [`reattachable`] layout: a copy of the image file `made` (one
/// that [`make`] made for the same layout and tree, never mounted), attached with its
/// partitions, its partition table given new identifiers and each ext filesystem a new
/// random UUID (unless the layout sets one), as a new one would have. With `copied`, `made`
/// is a copy in `image_dir` already, and is renamed instead.
///
/// # Errors
/// Copying, attaching, or tune2fs.
pub fn attach(
    config: &Config,
    image_dir: &Path,
    made: &Path,
    copied: bool,
    image: &mut Image,
    ledger: &mut Ledger,
) -> Result<()> {
    for node in config.order() {
        match &node.kind {
            Kind::LocalLoop { block_size, .. } => {
                fs::create_dir_all(image_dir)?;
                let raw = image_dir.join(format!("{}.raw", node.name));
                if copied {
                    fs::rename(made, &raw).with_context(|| {
                        format!("renaming {} to {}", made.display(), raw.display())
                    })?;
                } else {
                    crate::engine::sys::fs::copy_sparse(made, &raw)?;
                }
                let size = fs::metadata(&raw)
                    .with_context(|| format!("reading {}", raw.display()))?
                    .len();
                let dev = attach_loop(&raw, *block_size, ledger)?;
                image.raw.clone_from(&raw);
                image.devices.push((node.name.clone(), dev.clone()));
                partition(config, node.name.as_str(), size, &dev, image, ledger, false)?;
            }
            Kind::Partition { .. } | Kind::Fstab { .. } | Kind::Mount { .. } => {}
            Kind::Mkfs { fstype, uuid, .. } => {
                let dev = image.device(config, &node.base).ok_or_else(|| {
                    anyhow!("mkfs `{}`: no device for `{}`", node.name, node.base)
                })?;
                if uuid.is_none() && fstype.starts_with("ext") {
                    cmd::run(Command::new("tune2fs").args(["-U", "random", &dev]))
                        .with_context(|| format!("a new UUID for `{}`", node.name))?;
                }
                image.devices.push((node.name.clone(), dev));
            }
        }
    }
    Ok(())
}

/// Where in the image file of loop node `loop_name` (of `size` bytes) the filesystem of mkfs
/// node `mkfs_node` lies, as `(offset, length)` in bytes: the whole file, or the partition
/// of a table on it; `None` for anything else, or mkfs options of the user's (which may
/// hold their own `-E`).
fn file_region(config: &Config, loop_name: &str, mkfs_node: &str, size: u64) -> Option<(u64, u64)> {
    let node = config.node(mkfs_node)?;
    let Kind::Mkfs { opts, .. } = &node.kind else {
        return None;
    };
    if opts.iter().any(|o| !o.is_empty()) {
        return None;
    }
    if node.base == loop_name {
        return Some((0, size));
    }
    let (index, _) = config
        .partitionings
        .iter()
        .enumerate()
        .find(|(_, t)| t.base == loop_name)?;
    let placed = layout::place(config, index, size).ok()?;
    placed
        .iter()
        .find(|p| p.name == node.base)
        .map(|p| (p.start, p.size))
}

fn attach_loop(raw: &Path, block_size: u64, ledger: &mut Ledger) -> Result<String> {
    let dev = cmd::run(
        Command::new("losetup")
            .args(["--show", "-f", "--sector-size", &block_size.to_string()])
            .arg(raw),
    )?
    .trim()
    .to_owned();
    ledger.attached(Owner::Image, &dev);
    Ok(dev)
}

/// The second half of [`create`]: each filesystem mounted at its mount point below `mnt`, in
/// the layout's order (FAT ones the host cannot mount are staged as directories).
pub fn mount_all(
    config: &Config,
    mnt: &Path,
    image: &mut Image,
    ledger: &mut Ledger,
    log: &mut dyn Write,
) -> Result<()> {
    for node in config.order() {
        let Kind::Mount { mount_point } = &node.kind else {
            continue;
        };
        let dev = image
            .device(config, &node.base)
            .ok_or_else(|| anyhow!("mount `{}`: no device", node.name))?;
        let fstype = match config.node(&node.base).map(|n| &n.kind) {
            Some(Kind::Mkfs { fstype, .. }) => fstype.clone(),
            _ => String::new(),
        };
        if fstype.contains("swap") {
            continue;
        }
        let target = mnt.join(mount_point.trim_start_matches('/'));
        fs::create_dir_all(&target)?;
        if is_fat(&fstype) && !kernel_has("vfat", log) {
            // Many build hosts (containers, minimal kernels) cannot mount FAT: the
            // mount point stays a directory and mtools fills the filesystem after
            // cleanup.d.
            image.fat_staged.push((target, dev));
            continue;
        }
        cmd::run(
            Command::new("mount")
                .args(["-t", &fstype, &dev])
                .arg(&target),
        )
        .with_context(|| format!("mount `{}`", node.name))?;
        ledger.mounted(Owner::Image, &target);
    }
    Ok(())
}

/// FAT filesystem types (mkfs `type`).
pub(crate) fn is_fat(fstype: &str) -> bool {
    matches!(fstype, "vfat" | "fat" | "msdos")
}

/// Whether the running kernel can mount `fstype` (loaded or loadable).
fn kernel_has(fstype: &str, log: &mut dyn Write) -> bool {
    let listed = |fs: &str| {
        fs::read_to_string("/proc/filesystems")
            .is_ok_and(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
    };
    if listed(fstype) {
        return true;
    }
    // Not listed may still be loadable; if modprobe fails, the list says so.
    cmd::best_effort(Command::new("modprobe").args(["-q", fstype]), log);
    listed(fstype)
}

fn partition(
    config: &Config,
    loop_name: &str,
    size: u64,
    dev: &str,
    image: &mut Image,
    ledger: &mut Ledger,
    fresh: bool,
) -> Result<()> {
    for (index, table) in config.partitionings.iter().enumerate() {
        if table.base != loop_name {
            continue;
        }
        let placed = layout::place(config, index, size)
            .map_err(|e| anyhow!("partitioning `{loop_name}`: {e}"))?;
        if fresh {
            write_table(dev, &sfdisk_script(config, index, &placed))?;
        } else {
            renew_table_ids(dev, table.kind, &placed)?;
        }
        // No device-mapper here: partx adds /dev/loopNpK nodes.
        cmd::run(Command::new("partx").args(["-a", dev]))?;
        ledger.partitioned(dev);
        for p in &placed {
            let node_dev = partition_device(dev, p.number)?;
            image.devices.push((p.name.clone(), node_dev));
        }
    }
    Ok(())
}

/// Gives the partition table on `dev` (a copy of another build's image) new random
/// identifiers, as sfdisk gives a new table: the MBR disk identifier, or the GPT disk GUID
/// and each partition's GUID (its PARTUUID).
fn renew_table_ids(dev: &str, kind: TableKind, placed: &[layout::Placed]) -> Result<()> {
    let sfdisk = |args: &[&str]| {
        cmd::run(
            Command::new("sfdisk")
                .args(["--no-reread", "--no-tell-kernel", "-q"])
                .args(args),
        )
        .with_context(|| format!("new identifiers for the partition table on {dev}"))
    };
    match kind {
        TableKind::Mbr => {
            let id = u32::from_le_bytes(
                random::bytes::<4>().ok_or_else(|| anyhow!("reading /dev/urandom"))?,
            );
            // 0 means "no identifier".
            sfdisk(&["--disk-id", dev, &format!("0x{:08x}", id.max(1))])?;
        }
        TableKind::Gpt => {
            sfdisk(&["--disk-id", dev, &random::uuid()])?;
            for p in placed {
                let number = p.number.to_string();
                sfdisk(&["--part-uuid", dev, &number, &random::uuid()])?;
            }
        }
    }
    Ok(())
}

/// The device of partition `number` of loop device `dev` once `partx -a` has added it
/// (`/dev/loopNpK`), waiting up to 5 s for the node to appear.
pub(crate) fn partition_device(dev: &str, number: u32) -> Result<String> {
    let node = format!("{dev}p{number}");
    for _ in 0..50 {
        if Path::new(&node).exists() {
            return Ok(node);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("partition device {node} did not appear after partx")
}

/// The sfdisk script for table `index` with its partitions placed: MBR logical partitions
/// go in an extended partition that starts one alignment unit (the first EBR) before the
/// first of them and runs to the end of the disk.
fn sfdisk_script(config: &Config, index: usize, placed: &[layout::Placed]) -> String {
    let table = &config.partitionings[index];
    let mut script = String::from(match table.kind {
        TableKind::Mbr => "label: dos\nunit: sectors\n",
        TableKind::Gpt => "label: gpt\nunit: sectors\n",
    });
    for p in placed {
        if table.kind == TableKind::Mbr && p.number == 5 {
            let align = table.align.max(512);
            script.push_str(&format!("start={}, type=5\n", (p.start - align) / 512));
        }
        let Some(Kind::Partition { boot, ptype, .. }) = config.node(&p.name).map(|n| &n.kind)
        else {
            continue;
        };
        let t = match table.kind {
            TableKind::Mbr => ptype.trim_start_matches("0x").to_owned(),
            TableKind::Gpt => gpt_type(ptype),
        };
        script.push_str(&format!(
            "start={}, size={}, type={t}{}{}\n",
            p.start / 512,
            p.size / 512,
            if *boot && table.kind == TableKind::Mbr {
                ", bootable"
            } else {
                ""
            },
            if table.kind == TableKind::Gpt {
                format!(", name=\"{}\"", p.name)
            } else {
                String::new()
            },
        ));
    }
    script
}

/// Writes a partition table with sfdisk onto a device or an image file.
fn write_table(dev: &str, script: &str) -> Result<()> {
    cmd::run_with_input(
        Command::new("sfdisk").args(["--no-reread", "--no-tell-kernel", "-q", dev]),
        script.as_bytes(),
    )
    .with_context(|| format!("partitioning {dev} with:\n{script}"))
    .map(|_| ())
}

/// sgdisk's 4-hex codes as sfdisk GUIDs.
fn gpt_type(code: &str) -> String {
    match code.to_ascii_uppercase().as_str() {
        "EF00" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "EF02" => "21686148-6449-6E6F-744E-656564454649",
        "8200" => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        "8E00" => "E6D6D379-F507-44C2-A23C-238F2A3DF928",
        "4100" => "9E1A2D38-C612-4316-AA26-8B49521E5A8B",
        _ => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    }
    .to_owned()
}

/// Makes filesystem `fstype` on `dev`; with `region`, `dev` is an image file and the
/// filesystem goes at `(offset, length)` bytes in it (ext only).
fn mkfs(
    fstype: &str,
    label: &str,
    opts: &[String],
    uuid: Option<&str>,
    populate: Option<&Path>,
    dev: &str,
    region: Option<(u64, u64)>,
) -> Result<()> {
    let mut cmd;
    if fstype.contains("swap") {
        cmd = Command::new("mkswap");
        cmd.args(["-L", label]);
        if let Some(u) = uuid {
            cmd.args(["-U", u]);
        }
    } else {
        cmd = Command::new("mkfs");
        cmd.args(["-t", fstype])
            .args(opts.iter().filter(|o| !o.is_empty()));
        if fstype == "vfat" || fstype == "fat" {
            cmd.args(["-n", label]);
        } else {
            cmd.args(["-L", label]);
        }
        match (fstype, uuid) {
            ("ext2" | "ext3" | "ext4", Some(u)) => {
                cmd.args(["-U", u]);
            }
            ("xfs", Some(u)) => {
                cmd.args(["-m", &format!("uuid={u}")]);
            }
            _ => {}
        }
        if matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs") {
            cmd.arg("-q");
        }
        if fstype == "ext4" && opts.iter().all(String::is_empty) {
            // dib's defaults for the root filesystem: small inodes ratio, 64 MiB journal.
            cmd.args(["-i", "4096", "-J", "size=64"]);
        }
        if let Some(tree) = populate {
            cmd.arg("-d").arg(tree);
        }
        if let Some((offset, _)) = region {
            cmd.arg("-E").arg(format!("offset={offset}"));
        }
    }
    cmd.arg(dev);
    if let Some((_, len)) = region {
        cmd.arg(format!("{}k", len / 1024));
    }
    cmd::run(&mut cmd).map(|_| ())
}

/// `qemu-img convert` options for an output `format`: qcow2 is compressed unless `compress`
/// is false, as dib does, with zlib unless `options` name another `compression_type`, the
/// clusters compressed on several threads (`-W`); `options` go to `-o`.
#[must_use]
pub fn convert_args(format: &str, compress: bool, options: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = ["-f", "raw", "-O", format]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    if format == "qcow2" {
        args.extend(["-o".to_owned(), "compat=1.1".to_owned()]);
        if compress {
            args.extend(["-c", "-W", "-m", "8"].iter().map(|a| (*a).to_owned()));
        }
    }
    // dib passes --qemu-img-options to qcow2 conversions only (raw is the image itself,
    // vhd is made by vhd-util).
    if let Some(extra) = options.filter(|_| format == "qcow2") {
        args.extend(["-o".to_owned(), extra.to_owned()]);
    }
    args
}

/// The qcow2 version dibkit's own writer makes for `options`: 3 without options or with
/// `compat=1.1`, 2 with `compat=0.10` (nodepool's); `None` for any other option, which
/// qemu-img then honours.
#[must_use]
pub fn builtin_version(options: Option<&str>) -> Option<u32> {
    match options.map(str::trim) {
        None | Some("" | "compat=1.1" | "compat=v3") => Some(3),
        Some("compat=0.10" | "compat=v2") => Some(2),
        Some(_) => None,
    }
}

/// Whether an output is written by dibkit's own qcow2 writer: a compressed qcow2 with no
/// `qemu-img` options to honour. Everything else goes through `qemu-img convert`.
#[must_use]
pub fn builtin_writer(format: &str, compress: bool, options: Option<&str>) -> bool {
    format == "qcow2" && compress && builtin_version(options).is_some()
}

/// How [`convert`] writes an output, in words (for the dry run); `reuse`: with the cluster
/// index (the build cache is on).
#[must_use]
pub fn convert_description(
    format: &str,
    compress: bool,
    options: Option<&str>,
    reuse: bool,
) -> String {
    if builtin_writer(format, compress, options) {
        format!(
            "dibkit's qcow2 writer: compat={}, 64 KiB clusters, zlib level {} on every core{}",
            if builtin_version(options) == Some(2) {
                "0.10"
            } else {
                "1.1"
            },
            super::qcow2::LEVEL,
            if reuse {
                ", reusing the previous build's compressed clusters from the image cache's dibkit-clusters index,"
            } else {
                ""
            }
        )
    } else {
        format!(
            "qemu-img convert {}",
            convert_args(format, compress, options).join(" ")
        )
    }
}

/// Converts the raw image into `dest` (written under a temporary name, then renamed): a
/// compressed qcow2 with dibkit's own writer, anything else with [`convert_args`]. `stop` is
/// the build's interrupt flag.
pub fn convert(
    raw: &Path,
    format: &str,
    dest: &Path,
    compress: bool,
    options: Option<&str>,
    stop: &AtomicBool,
) -> Result<()> {
    convert_with_index(raw, format, dest, compress, options, None, stop).map(|_| ())
}

/// [`convert`]; dibkit's qcow2 writer reuses and records clusters in the cluster index
/// `index` holds when it is given (a failing index is noted, never fatal). Returns lines for
/// the build log.
pub fn convert_with_index(
    raw: &Path,
    format: &str,
    dest: &Path,
    compress: bool,
    options: Option<&str>,
    index: Option<&super::qcow2::index::Config>,
    stop: &AtomicBool,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let partial = dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let written = if builtin_writer(format, compress, options) {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let version = builtin_version(options).unwrap_or(3);
        write_qcow2(
            raw, &partial, dest, threads, stop, version, index, &mut notes,
        )
    } else {
        let mut cmd = Command::new("qemu-img");
        cmd.arg("convert")
            .args(convert_args(format, compress, options));
        cmd.arg(raw).arg(&partial);
        cmd::run(&mut cmd).map(|_| ())
    };
    if let Err(e) = written {
        // The partial file may not exist yet; the error that matters is the conversion's.
        fs::remove_file(&partial).ok();
        return Err(e);
    }
    fs::rename(&partial, dest).with_context(|| format!("renaming into {}", dest.display()))?;
    Ok(notes)
}

/// dibkit's qcow2 writer, with the cluster index `index` holds when there is one.
#[allow(clippy::too_many_arguments)]
fn write_qcow2(
    raw: &Path,
    partial: &Path,
    dest: &Path,
    threads: usize,
    stop: &AtomicBool,
    version: u32,
    index: Option<&super::qcow2::index::Config>,
    notes: &mut Vec<String>,
) -> Result<()> {
    use super::qcow2::{self, INDEX_PARAMS, Reuse, index::Session};
    let session = index.and_then(|c| match Session::open(c, dest, INDEX_PARAMS) {
        Ok(s) => Some(s),
        Err(e) => {
            notes.push(format!("qcow2: no cluster index: {e:#}"));
            None
        }
    });
    let reuse = session.as_ref().map_or_else(Reuse::default, |s| Reuse {
        previous: s.previous(),
        record: s.record_path(),
    });
    let written = qcow2::write_reusing(raw, partial, threads, stop, version, reuse);
    let Some(session) = session else {
        return written.map(|_| ());
    };
    match written {
        Ok(w) => {
            let stored = thousands(w.compressed + w.plain);
            notes.push(if session.previous().is_some() {
                format!(
                    "qcow2: reused {} of {stored} data clusters from the previous build's cluster index, compressed {}",
                    thousands(w.reused),
                    thousands(w.compressed + w.plain - w.reused),
                )
            } else {
                format!(
                    "qcow2: no cluster index from a previous build: compressed all {stored} data clusters"
                )
            });
            match session.commit() {
                Ok(n) => notes.extend(n),
                Err(e) => notes.push(format!("qcow2: the cluster index was not kept: {e:#}")),
            }
            Ok(())
        }
        Err(e) => {
            session.abandon();
            Err(e)
        }
    }
}

/// `19800` as `19,800`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockdev::config::parse;

    const LOGICAL: &str = "- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: boot\n        flags: [ boot, primary ]\n        size: 100MiB\n      - name: data\n        size: 200MiB\n      - name: swap\n        type: '0x82'\n        size: 10MiB\n";

    /// The root made from the tree goes into the image file at its partition's offset (the
    /// whole file without a table); a layout with mkfs options of the user's is made on the
    /// device instead, as are reattachable layouts' checks.
    #[test]
    fn the_root_filesystem_region_in_the_image_file() {
        let mbr = parse(include_str!(
            "../../elements/block-device-mbr/block-device-default.yaml"
        ))
        .unwrap();
        let root = made_from_tree(&mbr).unwrap();
        let size = 2048 << 20;
        let placed = layout::place(&mbr, 0, size).unwrap();
        assert_eq!(
            file_region(&mbr, "image0", &root, size),
            Some((placed[0].start, placed[0].size))
        );
        assert_eq!(placed[0].start, 1 << 20);
        assert!(reattachable(&mbr));
        let fallback = crate::blockdev::config::FALLBACK;
        let legacy = crate::blockdev::config::Legacy::default();
        let whole = load_config("test", fallback, &legacy).unwrap();
        let root = made_from_tree(&whole).unwrap();
        assert_eq!(file_region(&whole, "image0", &root, size), Some((0, size)));
        let legacy = crate::blockdev::config::Legacy {
            mkfs_options: Some("-O ^has_journal".to_owned()),
            ..legacy
        };
        let tuned = load_config("test", fallback, &legacy).unwrap();
        let root = made_from_tree(&tuned).unwrap();
        assert_eq!(file_region(&tuned, "image0", &root, size), None);
        assert!(!reattachable(&parse(LOGICAL).unwrap()));
    }

    #[test]
    fn logical_partitions_sit_in_an_extended_partition() {
        let c = parse(LOGICAL).unwrap();
        let placed = layout::place(&c, 0, 1024 << 20).unwrap();
        assert_eq!(
            sfdisk_script(&c, 0, &placed),
            "label: dos\nunit: sectors\n\
             start=2048, size=204800, type=83, bootable\n\
             start=206848, type=5\n\
             start=208896, size=409600, type=83\n\
             start=620544, size=20480, type=82\n"
        );
    }

    /// sfdisk accepts the script and numbers the logical partitions 5 and up, as dib does
    /// (an image file needs no loop device).
    #[test]
    #[allow(clippy::print_stderr)]
    fn sfdisk_writes_the_logical_layout() {
        if Command::new("sfdisk").arg("--version").output().is_err() {
            eprintln!("skipping: sfdisk is not installed");
            return;
        }
        let c = parse(LOGICAL).unwrap();
        let placed = layout::place(&c, 0, 1024 << 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.raw");
        fs::File::create(&img).unwrap().set_len(1024 << 20).unwrap();
        write_table(img.to_str().unwrap(), &sfdisk_script(&c, 0, &placed)).unwrap();
        let dump = cmd::run(Command::new("sfdisk").arg("--json").arg(&img)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&dump).unwrap();
        let parts: Vec<(String, u64, String)> = json["partitiontable"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["node"]
                        .as_str()
                        .unwrap()
                        .rsplit("raw")
                        .next()
                        .unwrap()
                        .to_owned(),
                    p["start"].as_u64().unwrap(),
                    p["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, u64, String)> = [
            ("1", 2048, "83"),
            ("2", 206_848, "5"),
            ("5", 208_896, "83"),
            ("6", 620_544, "82"),
        ]
        .iter()
        .map(|(n, s, t)| ((*n).to_owned(), *s, (*t).to_owned()))
        .collect();
        assert_eq!(parts, want);
        for p in &placed {
            assert!(p.number == 1 || p.number >= 5, "{p:?}");
        }
    }

    #[test]
    fn four_primaries_leave_no_room_for_logical_ones() {
        let text = LOGICAL.replace(
            "      - name: data\n",
            "      - name: p2\n        flags: [ primary ]\n        size: 1MiB\n      - name: p3\n        flags: [ primary ]\n        size: 1MiB\n      - name: p4\n        flags: [ primary ]\n        size: 1MiB\n      - name: data\n",
        );
        let c = parse(&text).unwrap();
        let e = layout::place(&c, 0, 1024 << 20).unwrap_err();
        assert!(e.0.contains("no room"), "{e}");
    }
}
