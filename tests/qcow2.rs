//! dibkit's compressed qcow2 writer, checked by the reader that matters: `qemu-img check`
//! finds the image consistent (refcounts, tables, no leaks) and `qemu-img compare` finds it
//! equal to the raw disk, for disks with holes, zero clusters, incompressible data, a partial
//! last cluster and more than one L2 table.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use dibkit::engine::{disk, qcow2};

const MIB: u64 = 1 << 20;
const MIB_LEN: usize = 1 << 20;

/// Whether qemu-img is here; CI (which installs it) must not skip.
fn qemu_img() -> bool {
    let found = Command::new("qemu-img").arg("--version").output().is_ok();
    assert!(
        found || std::env::var_os("DIBKIT_E2E").is_none(),
        "qemu-img is missing (apt-get install qemu-utils)"
    );
    if !found {
        eprintln!("skipping: qemu-img is not installed");
    }
    found
}

/// Bytes that deflate does not shrink (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[3]
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// Runs `qemu-img ARGS... PATHS...`, which must succeed; returns its output.
fn qemu_img_ok(args: &[&str], paths: &[&Path]) -> Vec<u8> {
    let out = Command::new("qemu-img")
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?} {paths:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `qemu-img check` and `qemu-img compare` against the raw disk both pass.
fn assert_same(raw: &Path, image: &Path) {
    qemu_img_ok(&["check"], &[image]);
    qemu_img_ok(&["compare", "-f", "raw", "-F", "qcow2"], &[raw, image]);
    let info = qemu_img_ok(&["info", "--output=json"], &[image]);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["format-specific"]["data"]["compat"], "1.1");
    assert_eq!(
        info["virtual-size"],
        File::open(raw).unwrap().metadata().unwrap().len()
    );
}

#[test]
fn a_mixed_disk_reads_back_identical() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let f = File::create(&raw).unwrap();
    // 1.2 GiB plus half a cluster: three L2 tables, a partial last cluster.
    let size = 1229 * MIB + 32 * 1024;
    f.set_len(size).unwrap();
    f.write_all_at(&text(3 * MIB_LEN + 100), 0).unwrap();
    f.write_all_at(&noise(2 * MIB_LEN, 7), 5 * MIB).unwrap();
    f.write_all_at(&vec![0; 4 * MIB_LEN], 9 * MIB).unwrap(); // written zeros
    f.write_all_at(b"a lone byte", 20 * MIB + 12345).unwrap();
    // Half-compressible clusters: their compressed bytes cross host cluster boundaries.
    let nibbles: Vec<u8> = noise(4 * MIB_LEN, 11).iter().map(|b| b & 0x0f).collect();
    f.write_all_at(&nibbles, 30 * MIB).unwrap();
    f.write_all_at(&text(MIB_LEN), 600 * MIB - 4096).unwrap(); // across two L2 tables
    f.write_all_at(&noise(100_000, 3), 700 * MIB + 1).unwrap();
    f.write_all_at(b"the end", size - 7).unwrap();
    drop(f);
    let image = dir.path().join("disk.qcow2");
    let written = qcow2::write(&raw, &image, 2, &AtomicBool::new(false)).unwrap();
    assert_eq!(written.virtual_size, size);
    assert!(written.plain >= 32, "{written:?}"); // the noise is stored as it is
    assert!(written.compressed > 0, "{written:?}");
    assert_eq!(written.file_size, image.metadata().unwrap().len());
    assert_same(&raw, &image);
}

/// Many clusters that compress to a few bytes share host clusters, so their refcounts climb
/// well above one; and the thread count does not change the image.
#[test]
fn tightly_packed_clusters_and_any_thread_count() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let mut data = vec![0_u8; 40 * MIB_LEN];
    for cluster in data.chunks_mut(64 * 1024) {
        cluster[0] = 1;
    }
    std::fs::write(&raw, &data).unwrap();
    let mut images = Vec::new();
    for threads in [1, 3] {
        let image = dir.path().join(format!("disk{threads}.qcow2"));
        let written = qcow2::write(&raw, &image, threads, &AtomicBool::new(false)).unwrap();
        assert_eq!((written.compressed, written.plain), (640, 0));
        assert!(written.file_size < 4 * MIB, "{written:?}");
        assert_same(&raw, &image);
        images.push(std::fs::read(&image).unwrap());
    }
    assert!(images[0] == images[1], "the thread count changed the image");
}

#[test]
fn an_empty_disk_is_a_valid_image() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    File::create(&raw).unwrap().set_len(64 * MIB).unwrap();
    let image = dir.path().join("disk.qcow2");
    let written = qcow2::write(&raw, &image, 2, &AtomicBool::new(false)).unwrap();
    assert_eq!((written.compressed, written.plain), (0, 0));
    assert_same(&raw, &image);
}

/// A disk of no bytes, and one that ends inside a 512-byte sector (kept, zero-filled, as
/// qemu-img keeps it).
#[test]
fn empty_and_odd_sized_disks() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (size, want) in [(0, 0), (1005, 1024)] {
        let raw = dir.path().join(format!("disk{size}.raw"));
        std::fs::write(&raw, text(size)).unwrap();
        let image = dir.path().join(format!("disk{size}.qcow2"));
        let written = qcow2::write(&raw, &image, 2, &AtomicBool::new(false)).unwrap();
        assert_eq!(written.virtual_size, want);
        qemu_img_ok(&["check"], &[&image]);
        let out = dir.path().join(format!("back{size}.raw"));
        qemu_img_ok(&["convert", "-f", "qcow2", "-O", "raw"], &[&image, &out]);
        let mut expected = text(size);
        expected.resize(usize::try_from(want).unwrap(), 0);
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "{size}: content differs"
        );
    }
}

/// An interrupted conversion fails and leaves neither the output nor its temporary file.
#[test]
fn an_interrupted_conversion_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    std::fs::write(&raw, text(MIB_LEN)).unwrap();
    let dest = dir.path().join("out.qcow2");
    let e = disk::convert(&raw, "qcow2", &dest, true, None, &AtomicBool::new(true)).unwrap_err();
    assert!(format!("{e:#}").contains("interrupted"), "{e:#}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("disk.raw")]);
}

/// Through `disk::convert`: the compressed qcow2 is dibkit's, renamed into place.
#[test]
fn convert_writes_the_compressed_qcow2_itself() {
    if !qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    std::fs::write(&raw, text(5 * MIB_LEN)).unwrap();
    let dest = dir.path().join("out.qcow2");
    disk::convert(&raw, "qcow2", &dest, true, None, &AtomicBool::new(false)).unwrap();
    assert_same(&raw, &dest);
    assert!(dest.metadata().unwrap().len() < MIB);
    assert!(disk::builtin_writer("qcow2", true, None));
    assert!(!disk::builtin_writer("qcow2", false, None));
    assert!(!disk::builtin_writer(
        "qcow2",
        true,
        Some("compression_type=zstd")
    ));
    assert!(!disk::builtin_writer("vhd", true, None));
}
