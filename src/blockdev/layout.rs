//! Where partitions go: MBR and GPT arithmetic as dib does it (1 MiB alignment, percentages
//! of the space still free, whole MiB and 2 MiB reserved at the end for GPT).

use super::config::{Config, PartSize, TableKind};

/// A partition's place on the disk, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub name: String,
    pub start: u64,
    pub size: u64,
    /// 1-based partition number (MBR logical partitions start at 5).
    pub number: u32,
}

/// Why a layout does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(pub String);

const MIB: u64 = 1 << 20;

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Lays out the partitions of table `index` on a disk of `disk` bytes.
///
/// # Errors
/// A partition that does not fit the space left.
pub fn place(config: &Config, index: usize, disk: u64) -> Result<Vec<Placed>, LayoutError> {
    let table = &config.partitionings[index];
    let parts: Vec<(&str, PartSize, bool)> = table
        .partitions
        .iter()
        .filter_map(|n| config.node(n))
        .filter_map(|n| match &n.kind {
            super::config::Kind::Partition { size, primary, .. } => {
                Some((n.name.as_str(), *size, *primary))
            }
            _ => None,
        })
        .collect();
    match table.kind {
        TableKind::Gpt => gpt(&parts, disk),
        TableKind::Mbr => mbr(&parts, disk, table.align.max(512)),
    }
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn want(size: PartSize, free: u64) -> u64 {
    match size {
        PartSize::Bytes(b) => b,
        PartSize::Percent(p) => (free as f64 * p / 100.0) as u64,
    }
}

fn gpt(parts: &[(&str, PartSize, bool)], disk: u64) -> Result<Vec<Placed>, LayoutError> {
    let mut start = MIB;
    let end = disk.saturating_sub(2 * MIB);
    let mut out = Vec::new();
    for (i, (name, size, _)) in parts.iter().enumerate() {
        let free = end.saturating_sub(start);
        // sgdisk is given whole MiB.
        let mib = want(*size, free) / MIB * MIB;
        if mib == 0 || mib > free {
            return Err(LayoutError(format!(
                "partition `{name}` needs {} MiB but {} MiB are free",
                want(*size, free) / MIB,
                free / MIB
            )));
        }
        out.push(Placed {
            name: (*name).to_owned(),
            start,
            size: mib,
            number: u32::try_from(i + 1).unwrap_or(u32::MAX),
        });
        start += mib;
    }
    Ok(out)
}

fn mbr(
    parts: &[(&str, PartSize, bool)],
    disk: u64,
    align: u64,
) -> Result<Vec<Placed>, LayoutError> {
    let mut out = Vec::new();
    let mut start = align;
    let mut primaries = 0u32;
    let mut logical = 4u32;
    let mut seen_logical = false;
    for (name, size, primary) in parts {
        let is_primary = *primary && !seen_logical;
        if *primary && seen_logical {
            return Err(LayoutError(format!(
                "All primary partitions must be before logical ones: `{name}` follows a logical partition"
            )));
        }
        if !primary {
            if !seen_logical && primaries == 4 {
                return Err(LayoutError(format!(
                    "partition `{name}`: logical partitions need an extended partition, and 4 primary partitions leave no room for it"
                )));
            }
            seen_logical = true;
            // Each logical partition has its EBR one alignment unit before its data.
            start += align;
        }
        let free = disk.saturating_sub(start);
        let len = want(*size, free) / 512 * 512;
        if len == 0 || len > free {
            return Err(LayoutError(format!(
                "partition `{name}` needs {len} bytes but {free} are free"
            )));
        }
        let number = if is_primary {
            primaries += 1;
            if primaries > 4 {
                return Err(LayoutError(format!(
                    "partition `{name}`: MBR has room for 4 primary partitions"
                )));
            }
            primaries
        } else {
            logical += 1;
            logical
        };
        out.push(Placed {
            name: (*name).to_owned(),
            start,
            size: len,
            number,
        });
        start = round_up(start + len, align);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::config::parse;
    use super::*;

    #[test]
    fn mbr_root_fills_the_disk_after_1mib() {
        let c = parse("- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: root\n        flags: [ boot, primary ]\n        size: 100%\n").unwrap();
        let p = place(&c, 0, 2048 * MIB).unwrap();
        assert_eq!(
            p,
            [Placed {
                name: "root".into(),
                start: MIB,
                size: 2047 * MIB,
                number: 1
            }]
        );
    }

    #[test]
    fn gpt_efi_layout() {
        let c = parse("- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: gpt\n    partitions:\n      - name: ESP\n        type: 'EF00'\n        size: 550MiB\n      - name: BSP\n        type: 'EF02'\n        size: 8MiB\n      - name: root\n        size: 100%\n").unwrap();
        let p = place(&c, 0, 3000 * MIB).unwrap();
        assert_eq!(
            p[0],
            Placed {
                name: "ESP".into(),
                start: MIB,
                size: 550 * MIB,
                number: 1
            }
        );
        assert_eq!(p[1].start, 551 * MIB);
        // 3000 - 1 (lead) - 550 - 8 - 2 (reserved at the end) MiB for root.
        assert_eq!(
            p[2],
            Placed {
                name: "root".into(),
                start: 559 * MIB,
                size: 2439 * MIB,
                number: 3
            }
        );
    }

    #[test]
    fn percentages_are_of_the_space_left_and_overflow_fails() {
        let c = parse("- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: gpt\n    partitions:\n      - name: a\n        size: 50%\n      - name: b\n        size: 50%\n      - name: c\n        size: 10GiB\n").unwrap();
        let e = place(&c, 0, 1026 * MIB).unwrap_err();
        assert!(e.0.contains("partition `c`"), "{e}");
        let c2 = parse("- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: gpt\n    partitions:\n      - name: a\n        size: 50%\n      - name: b\n        size: 50%\n").unwrap();
        let p = place(&c2, 0, 1027 * MIB).unwrap();
        assert_eq!(p[0].size, 512 * MIB);
        assert_eq!(p[1].size, 256 * MIB);
    }

    #[test]
    fn mbr_logical_partitions_follow_primaries() {
        let text = "- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: boot\n        flags: [ primary ]\n        size: 100MiB\n      - name: data\n        size: 100MiB\n      - name: late\n        flags: [ primary ]\n        size: 10MiB\n";
        let c = parse(text).unwrap();
        assert!(
            place(&c, 0, 1024 * MIB)
                .unwrap_err()
                .0
                .contains("All primary partitions must be")
        );
        let c = parse(&text.replace(
            "      - name: late\n        flags: [ primary ]\n        size: 10MiB\n",
            "",
        ))
        .unwrap();
        let p = place(&c, 0, 1024 * MIB).unwrap();
        assert_eq!((p[0].number, p[1].number), (1, 5));
        assert_eq!(p[1].start, 102 * MIB);
    }
}
