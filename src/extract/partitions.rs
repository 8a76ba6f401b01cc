//! Which partition of an image holds the root filesystem, which `/boot` and which the EFI
//! system partition, from what `blkid -p -o export` says about each; and which images are
//! refused (LVM, LUKS, RAID members: their contents need device-mapper or md, which dibkit
//! does not use). Pure: no device is touched here.
//!
//! The rules are upstream extract-image's (`sysprep/bin/extract-image`): partitions are
//! looked at from the highest number down; a partition without a filesystem is ignored; the
//! first with the EFI type GUID is the ESP; the first with the XBOOTLDR type GUID or the
//! label `boot` is `/boot`; the first other one is the root; with no root, `/boot` is the
//! root (CentOS Stream 10); a single partition is the root. Where upstream's script goes
//! wrong, dibkit does not follow it: partitions are ordered by number, not as strings
//! (`p10` before `p9`); swap, FAT and other filesystems no root can be on are not taken for
//! the root; a partition with a Discoverable Partitions root type comes first; and the
//! caller tries the next candidate when a mounted one has no `/etc`.

use std::path::Path;

/// GPT type of the EFI system partition.
pub const GUID_EFI: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// GPT type of an extended boot loader partition (`/boot`, the Boot Loader Specification).
pub const GUID_XBOOTLDR: &str = "bc13c2ff-59e6-4262-a352-b275fd6f7172";
/// Root partition types of the Discoverable Partitions Specification (x86-64, x86, arm64,
/// arm, ppc64le, s390x, riscv64).
const GUID_ROOTS: &[&str] = &[
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
    "44479540-f297-41b2-9af7-d131d5f0458a",
    "b921b045-1df0-41c3-af44-4c6f280d3fae",
    "69dad710-2ce4-4e3c-b16c-21a1d49abed3",
    "c31c45e6-3f39-412e-80fb-4809c4980599",
    "5eead9a9-fe09-4a1e-a1d7-520d00531306",
    "72ec70a6-cf74-40e6-bd49-4bda08e8f224",
];

/// What blkid says about one partition (or the whole disk, number 0, when it has no
/// partition table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// The partition number; 0 for a filesystem on the whole disk.
    pub number: u32,
    /// Its block device.
    pub device: String,
    /// `TYPE`: the filesystem or signature (`ext4`, `LVM2_member`, `crypto_LUKS`).
    pub fstype: Option<String>,
    /// `LABEL`.
    pub label: Option<String>,
    /// `PART_ENTRY_TYPE`: a GPT type GUID (lower case) or an MBR type (`0x83`).
    pub part_type: Option<String>,
}

impl Probe {
    /// Reads `blkid -p -o export` output for partition `number` on `device`.
    #[must_use]
    pub fn parse(number: u32, device: &str, export: &str) -> Self {
        let mut p = Probe {
            number,
            device: device.to_owned(),
            ..Probe::default()
        };
        for line in export.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            // blkid -o export escapes spaces and shell characters with a backslash.
            let value = unescape(value);
            if value.is_empty() {
                continue;
            }
            match key {
                "TYPE" => p.fstype = Some(value),
                "LABEL" => p.label = Some(value),
                "PART_ENTRY_TYPE" => p.part_type = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        p
    }

    /// `partition 3` or `the whole disk`.
    #[must_use]
    pub fn name(&self) -> String {
        if self.number == 0 {
            "the whole disk".to_owned()
        } else {
            format!("partition {}", self.number)
        }
    }

    fn fstype(&self) -> &str {
        self.fstype.as_deref().unwrap_or("")
    }

    fn part_type(&self) -> &str {
        self.part_type.as_deref().unwrap_or("")
    }

    /// The EFI system partition: by GPT type GUID, or MBR type `0xef`.
    fn is_esp(&self) -> bool {
        self.part_type() == GUID_EFI || self.part_type() == "0xef"
    }

    fn is_boot(&self) -> bool {
        self.part_type() == GUID_XBOOTLDR || self.label.as_deref() == Some("boot")
    }

    fn is_discoverable_root(&self) -> bool {
        GUID_ROOTS.contains(&self.part_type())
    }
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Filesystems a root (or `/boot`) can be mounted from here.
#[must_use]
pub fn is_linux_fs(fstype: &str) -> bool {
    matches!(fstype, "ext2" | "ext3" | "ext4" | "xfs" | "btrfs")
}

/// FAT filesystems: read with mtools, as the kernel here may not mount them.
#[must_use]
pub fn is_fat(fstype: &str) -> bool {
    matches!(fstype, "vfat" | "fat" | "msdos")
}

/// Why a partition's contents cannot be read without device-mapper or md.
fn unreadable(fstype: &str) -> Option<&'static str> {
    match fstype {
        "LVM2_member" | "LVM1_member" => Some("an LVM physical volume"),
        "crypto_LUKS" | "BitLocker" => Some("an encrypted (LUKS) volume"),
        "linux_raid_member" | "isw_raid_member" | "ddf_raid_member" => {
            Some("a software RAID member")
        }
        _ => None,
    }
}

/// An image dibkit will not extract, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A partition holds LVM, LUKS or RAID: part of the tree (often all of it) is in there.
    Unreadable {
        part: String,
        what: &'static str,
        fstype: String,
    },
    /// No partition holds a filesystem a root can be on.
    NoRoot { seen: Vec<String> },
}

impl Refusal {
    /// The one-line message, naming the image.
    #[must_use]
    pub fn message(&self, image: &Path) -> String {
        match self {
            Refusal::Unreadable { part, what, fstype } => format!(
                "{}: {part} is {what} (`{fstype}`); dibkit reads images without device-mapper and cannot extract it",
                image.display()
            ),
            Refusal::NoRoot { seen } if seen.is_empty() => format!(
                "{}: no partition table and no filesystem found; is it a qcow2 or raw disk image?",
                image.display()
            ),
            Refusal::NoRoot { seen } => format!(
                "{}: no ext4, xfs or btrfs filesystem to take as the root (found {})",
                image.display(),
                seen.join(", ")
            ),
        }
    }

    /// What the user can do instead.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            Refusal::Unreadable { what, .. } if what.contains("LVM") => {
                "start from an image whose root is a plain partition (a distribution's cloud \
                 image is), or on a machine with device-mapper activate the volume group and \
                 save the root logical volume as a raw image (`dd`), which dibkit reads"
                    .to_owned()
            }
            Refusal::Unreadable { what, .. } if what.contains("encrypted") => {
                "start from an unencrypted image; encrypt the image dibkit builds instead"
                    .to_owned()
            }
            Refusal::Unreadable { .. } => {
                "start from an image whose root is a plain partition".to_owned()
            }
            Refusal::NoRoot { .. } => {
                "DIB_LOCAL_IMAGE must be a whole-disk qcow2 or raw image with an ext4, xfs or \
                 btrfs root filesystem"
                    .to_owned()
            }
        }
    }
}

/// The partitions to mount, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Root candidates, best first; the caller takes the first whose tree has `/etc`.
    pub roots: Vec<Probe>,
    pub boot: Option<Probe>,
    pub esp: Option<Probe>,
}

/// Tells the partitions apart (see the module documentation for the rules).
///
/// # Errors
/// A partition is LVM, LUKS or RAID, or no partition can hold the root.
pub fn classify(parts: &[Probe]) -> Result<Layout, Refusal> {
    let mut sorted: Vec<&Probe> = parts.iter().collect();
    sorted.sort_by_key(|p| p.number);
    if let Some((p, what)) = sorted
        .iter()
        .find_map(|p| unreadable(p.fstype()).map(|w| (p, w)))
    {
        return Err(Refusal::Unreadable {
            part: p.name(),
            what,
            fstype: p.fstype().to_owned(),
        });
    }
    let seen = || -> Vec<String> {
        sorted
            .iter()
            .filter(|p| p.fstype.is_some())
            .map(|p| format!("{} on {}", p.fstype(), p.name()))
            .collect()
    };
    if let [only] = sorted.as_slice() {
        if is_linux_fs(only.fstype()) {
            return Ok(Layout {
                roots: vec![(*only).clone()],
                boot: None,
                esp: None,
            });
        }
        return Err(Refusal::NoRoot { seen: seen() });
    }
    let mut layout = Layout {
        roots: Vec::new(),
        boot: None,
        esp: None,
    };
    for p in sorted.iter().rev() {
        if p.fstype.is_none() {
            continue;
        }
        if layout.esp.is_none() && p.is_esp() {
            layout.esp = Some((*p).clone());
            continue;
        }
        if layout.boot.is_none() && p.is_boot() {
            layout.boot = Some((*p).clone());
            continue;
        }
        if is_linux_fs(p.fstype()) {
            layout.roots.push((*p).clone());
        }
    }
    // A root type GUID says it outright; the stable sort keeps the others' order.
    layout.roots.sort_by_key(|p| !p.is_discoverable_root());
    if layout.roots.is_empty() {
        match layout.boot.take() {
            Some(boot) if is_linux_fs(boot.fstype()) => layout.roots.push(boot),
            _ => return Err(Refusal::NoRoot { seen: seen() }),
        }
    }
    Ok(layout)
}

/// The mount options for a filesystem, read-only: `nouuid` for xfs (the host may have a
/// filesystem with the same UUID mounted, as when the image was made from its own), and
/// btrfs's `root` subvolume (Fedora's layout) for a root.
#[must_use]
pub fn mount_options(fstype: &str, root: bool) -> String {
    match fstype {
        "xfs" => "nouuid,ro".to_owned(),
        "btrfs" if root => "ro,subvol=root".to_owned(),
        _ => "ro".to_owned(),
    }
}

/// The options to try when [`mount_options`] fail: the log not replayed (an image saved
/// from a running machine; the device is read-only, so no replay can happen), a btrfs root
/// at the top level when there is no `root` subvolume.
#[must_use]
pub fn fallback_options(fstype: &str, root: bool) -> Option<String> {
    match fstype {
        "ext3" | "ext4" => Some("ro,noload".to_owned()),
        "xfs" => Some("nouuid,ro,norecovery".to_owned()),
        "btrfs" if root => Some("ro".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, fstype: &str, label: &str, part_type: &str) -> Probe {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Probe {
            number,
            device: format!("/dev/loop9p{number}"),
            fstype: some(fstype),
            label: some(label),
            part_type: some(part_type),
        }
    }

    fn numbers(l: &Layout) -> (Vec<u32>, Option<u32>, Option<u32>) {
        (
            l.roots.iter().map(|p| p.number).collect(),
            l.boot.as_ref().map(|p| p.number),
            l.esp.as_ref().map(|p| p.number),
        )
    }

    const LINUX: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
    const BIOS: &str = "21686148-6449-6e6f-744e-656564454649";

    #[test]
    fn blkid_export_is_read_with_its_escapes() {
        let p = Probe::parse(
            3,
            "/dev/loop9p3",
            "DEVNAME=/dev/loop1p3\nLABEL=my\\ boot\nTYPE=ext4\nPART_ENTRY_TYPE=BC13C2FF-59E6-4262-A352-B275FD6F7172\nPART_ENTRY_NUMBER=3\n",
        );
        assert_eq!(p, part(3, "ext4", "my boot", GUID_XBOOTLDR));
        assert_eq!(Probe::parse(1, "/dev/x", "PTTYPE=gpt\n").fstype, None);
    }

    /// Fedora's cloud image: BIOS boot, ESP, /boot (label boot), btrfs root.
    #[test]
    fn fedora_layout() {
        let parts = [
            part(1, "", "", BIOS),
            part(2, "vfat", "", GUID_EFI),
            part(3, "ext4", "boot", LINUX),
            part(4, "btrfs", "fedora", LINUX),
        ];
        assert_eq!(
            numbers(&classify(&parts).unwrap()),
            (vec![4], Some(3), Some(2))
        );
    }

    /// dibkit's own `vm` image (one ext4 partition) and a filesystem on the whole disk.
    #[test]
    fn a_single_filesystem_is_the_root() {
        let one = [part(1, "ext4", "cloudimg-rootfs", "0x83")];
        assert_eq!(numbers(&classify(&one).unwrap()), (vec![1], None, None));
        let whole = [part(0, "xfs", "", "")];
        assert_eq!(numbers(&classify(&whole).unwrap()), (vec![0], None, None));
    }

    /// An MBR image with /boot by label, swap, and the root; swap is never the root, and
    /// partitions are ordered by number (upstream's string order puts 10 before 9).
    #[test]
    fn swap_is_skipped_and_numbers_sort_as_numbers() {
        let parts = [
            part(1, "ext4", "boot", "0x83"),
            part(5, "swap", "", "0x82"),
            part(9, "ext4", "data", "0x83"),
            part(10, "ext4", "root", "0x83"),
        ];
        assert_eq!(
            numbers(&classify(&parts).unwrap()),
            (vec![10, 9], Some(1), None)
        );
    }

    #[test]
    fn a_discoverable_root_type_comes_first_and_mbr_esp_is_known() {
        let parts = [
            part(1, "vfat", "", "0xef"),
            part(2, "xfs", "", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),
            part(3, "xfs", "", LINUX),
        ];
        assert_eq!(
            numbers(&classify(&parts).unwrap()),
            (vec![2, 3], None, Some(1))
        );
    }

    /// CentOS Stream 10: no partition but the one labelled boot, which is then the root.
    #[test]
    fn without_a_root_boot_is_the_root() {
        let parts = [part(1, "", "", BIOS), part(2, "xfs", "boot", LINUX)];
        assert_eq!(numbers(&classify(&parts).unwrap()), (vec![2], None, None));
    }

    #[test]
    fn lvm_luks_and_raid_are_refused_with_the_partition_named() {
        let image = Path::new("/images/rhel.qcow2");
        let lvm = [
            part(1, "xfs", "boot", LINUX),
            part(2, "LVM2_member", "", "e6d6d379-f507-44c2-a23c-238f2a3df928"),
        ];
        let refusal = classify(&lvm).unwrap_err();
        assert_eq!(
            refusal.message(image),
            "/images/rhel.qcow2: partition 2 is an LVM physical volume (`LVM2_member`); dibkit reads images without device-mapper and cannot extract it"
        );
        assert!(
            refusal.hint().contains("plain partition"),
            "{}",
            refusal.hint()
        );
        let luks = [part(0, "crypto_LUKS", "", "")];
        let refusal = classify(&luks).unwrap_err();
        assert_eq!(
            refusal.message(image),
            "/images/rhel.qcow2: the whole disk is an encrypted (LUKS) volume (`crypto_LUKS`); dibkit reads images without device-mapper and cannot extract it"
        );
        assert!(refusal.hint().contains("unencrypted"), "{}", refusal.hint());
        let raid = [
            part(1, "linux_raid_member", "", ""),
            part(2, "ext4", "", ""),
        ];
        assert!(
            classify(&raid)
                .unwrap_err()
                .message(image)
                .contains("partition 1 is a software RAID member")
        );
    }

    #[test]
    fn no_root_filesystem_is_refused_with_what_was_found() {
        let image = Path::new("disk.raw");
        let parts = [part(1, "vfat", "", GUID_EFI), part(2, "swap", "", "")];
        assert_eq!(
            classify(&parts).unwrap_err().message(image),
            "disk.raw: no ext4, xfs or btrfs filesystem to take as the root (found vfat on partition 1, swap on partition 2)"
        );
        assert_eq!(
            classify(&[]).unwrap_err().message(image),
            "disk.raw: no partition table and no filesystem found; is it a qcow2 or raw disk image?"
        );
        let fat_only = [part(0, "vfat", "", "")];
        assert!(matches!(
            classify(&fat_only).unwrap_err(),
            Refusal::NoRoot { .. }
        ));
    }

    #[test]
    fn mount_options_are_read_only_with_fallbacks() {
        assert_eq!(mount_options("ext4", true), "ro");
        assert_eq!(mount_options("xfs", true), "nouuid,ro");
        assert_eq!(mount_options("xfs", false), "nouuid,ro");
        assert_eq!(mount_options("btrfs", true), "ro,subvol=root");
        assert_eq!(mount_options("btrfs", false), "ro");
        assert_eq!(fallback_options("ext4", true).unwrap(), "ro,noload");
        assert_eq!(
            fallback_options("xfs", false).unwrap(),
            "nouuid,ro,norecovery"
        );
        assert_eq!(fallback_options("btrfs", true).unwrap(), "ro");
        assert_eq!(fallback_options("btrfs", false), None);
        for fs in ["ext4", "xfs", "btrfs", "ext2"] {
            for root in [true, false] {
                assert!(mount_options(fs, root).split(',').any(|o| o == "ro"));
                if let Some(f) = fallback_options(fs, root) {
                    assert!(f.split(',').any(|o| o == "ro"));
                }
            }
        }
    }
}
