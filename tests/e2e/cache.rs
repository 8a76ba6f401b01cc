//! The build cache is never wrong: a cached rebuild's image equals an uncached build's.
//!
//! One fixture element reads one input of each kind. The changes come in the order of the
//! phases that see them, each in its own build (a rebuild after a change must show it), and
//! the last cached build, which attached a copy of the disk image the build before it kept,
//! is compared with one uncached disk build of the same inputs: file list, types, modes,
//! owners, link targets and contents, less the per-build files listed in [`PER_BUILD`].

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Files that differ between any two builds, cached or not (dib's too): logs (truncated),
/// and the records of the build that made the tree (dib-manifests name its directory).
const PER_BUILD: [&str; 2] = ["var/log/", "etc/dib-manifests/"];

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn hook(body: &str) -> String {
    format!(
        "#!/bin/bash\nif [ \"${{DIB_DEBUG_TRACE:-0}}\" -gt 0 ]; then\n    set -x\nfi\nset -eu\nset -o pipefail\n\n{body}\n"
    )
}

/// The image's files: path → (type, mode, owner, link target or content digest).
fn image(tar: &Path, dir: &Path) -> BTreeMap<String, String> {
    fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "unpacking {}", tar.display());
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let key = r.display().to_string();
            if PER_BUILD.iter().any(|p| key.starts_with(p)) {
                continue;
            }
            let m = fs::symlink_metadata(e.path()).unwrap();
            let what = if m.is_dir() {
                stack.push(r.clone());
                "dir".to_owned()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(e.path()).unwrap().display())
            } else if m.is_file() {
                let mut h = Sha256::new();
                h.update(fs::read(e.path()).unwrap());
                format!("{:x}", h.finalize())
            } else {
                format!("special {}", m.rdev())
            };
            out.insert(
                key,
                format!("{:o} {}:{} {what}", m.mode(), m.uid(), m.gid()),
            );
        }
    }
    out
}

#[test]
fn cached_rebuilds_equal_an_uncached_build() {
    let Some(_serial) = super::enabled("cached_rebuilds_equal_an_uncached_build") else {
        return;
    };
    let start = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let el = t.join("elements/cache-probe");
    write(&el.join("element-deps"), "package-installs\n", 0o644);
    write(&el.join("README.rst"), "cache probe\n", 0o644);
    let key = t.join("probe.key");
    write(&key, "key v1\n", 0o644);
    write(
        &el.join("extra-data.d/50-cache-probe-key"),
        &hook("cp \"$DIB_CACHE_PROBE_KEY\" \"$TMP_HOOKS_PATH/cache-probe-key\""),
        0o755,
    );
    let install = |v: &str| {
        hook(&format!(
            "install -d /etc/cache-probe\necho 'install {v}' > /etc/cache-probe/install\n\
             cp /tmp/in_target.d/cache-probe-key /etc/cache-probe/key"
        ))
    };
    write(&el.join("install.d/50-cache-probe"), &install("v1"), 0o755);
    write(
        &el.join("post-install.d/50-cache-probe"),
        &hook("echo \"${DIB_CACHE_PROBE_GREETING:-unset}\" > /etc/cache-probe/greeting"),
        0o755,
    );
    let finalise = |v: &str| hook(&format!("echo 'finalise {v}' > /etc/cache-probe/finalise"));
    write(
        &el.join("finalise.d/50-cache-probe"),
        &finalise("v1"),
        0o755,
    );
    fs::create_dir_all(t.join("out")).unwrap();
    let out = t.join("out/img");
    let mut made: Vec<String> = Vec::new();
    let mut greeting = "hello";
    let disk_out = t.join("out/disk");
    // A build: `disk` adds a qcow2 (the tar is then written from the disk image's
    // filesystem) and writes to its own output (so a first build of that image).
    let mut build = |name: &str,
                     no_cache: bool,
                     disk: bool,
                     greeting: &str|
     -> (String, BTreeMap<String, String>) {
        let o = match (no_cache, disk) {
            (true, _) => t.join("out/uncached"),
            (false, true) => disk_out.clone(),
            (false, false) => out.clone(),
        };
        let mut cmd = super::dibkit();
        cmd.env_remove("DIBKIT_NO_CACHE")
            .args(["build", "-t", if disk { "tar,qcow2" } else { "tar" }])
            .args(["--force", "-o"])
            .arg(&o)
            .arg("--elements-path")
            .arg(t.join("elements"))
            // An MBR disk (the vm element's layout, without its bootloader).
            .args(["debian-minimal", "block-device-mbr", "cache-probe"])
            .env("DIB_CACHE_PROBE_KEY", &key)
            .env("DIB_CACHE_PROBE_GREETING", greeting)
            .env("DIB_RELEASE", "bookworm");
        if no_cache {
            cmd.arg("--no-cache");
        }
        if name != "cold" {
            // Every tree kept, however quick its hooks on this machine.
            cmd.env("DIBKIT_CACHE_KEEP_SECONDS", "0");
        }
        let began = std::time::Instant::now();
        super::built(&mut cmd, &o);
        let log = fs::read_to_string(o.with_extension("log")).unwrap();
        eprintln!("{name}: {:.0} s", began.elapsed().as_secs_f64());
        for line in log
            .lines()
            .filter(|l| l.starts_with("build cache: base key"))
        {
            eprintln!("{name}: {line}");
        }
        for line in log.lines() {
            if let Some(rest) = line
                .strip_prefix("build cache: keeping the tree after ")
                .or_else(|| line.strip_prefix("build cache: keeping the disk image "))
            {
                made.push(
                    rest.rsplit('(')
                        .next()
                        .unwrap()
                        .trim_end_matches(')')
                        .to_owned(),
                );
            }
        }
        let files = image(&o.with_extension("tar"), &t.join(format!("x-{name}")));
        (log, files)
    };
    let probe = |files: &BTreeMap<String, String>, dir: &str, file: &str, want: &str| {
        let text = fs::read_to_string(t.join(format!("x-{dir}/etc/cache-probe/{file}"))).unwrap();
        assert_eq!(text.trim(), want, "{dir}: {file}");
        assert!(files.contains_key(&format!("etc/cache-probe/{file}")));
    };
    let (log, _) = build("cold", false, false, greeting);
    // What runs after install.d is too quick to be worth a tree (3 s by default).
    assert!(
        log.contains("build cache: not keeping the tree after post-root.d: the hooks since"),
        "{log}"
    );

    // extra-data.d copies a host file: a new key file, a new tree from pre-install.d on.
    write(&key, "key v2\n", 0o644);
    let (log, files) = build("key", false, false, greeting);
    assert!(log.contains("build cache: no tree to reuse"), "{log}");
    probe(&files, "key", "key", "key v2");

    // A package list.
    write(&el.join("package-installs.yaml"), "less:\n", 0o644);
    let (log, files) = build("packages", false, false, greeting);
    assert!(log.contains("build cache: no tree to reuse"), "{log}");
    assert!(files.contains_key("usr/bin/less"));

    // A variable post-install.d reads.
    greeting = "bonjour";
    let (log, files) = build("environment", false, false, greeting);
    assert!(log.contains("build cache: no tree to reuse"), "{log}");
    probe(&files, "environment", "greeting", "bonjour");
    assert!(files.contains_key("usr/bin/less"));

    // An install.d script of the user's: the tree before it is reused.
    write(&el.join("install.d/50-cache-probe"), &install("v2"), 0o755);
    let (log, files) = build("install", false, false, greeting);
    assert!(
        log.contains("build cache: reusing the tree after install.d up to "),
        "{log}"
    );
    assert!(log.contains("(before 50-cache-probe)"), "{log}");
    probe(&files, "install", "install", "install v2");
    probe(&files, "install", "key", "key v2");

    // A finalise.d script: the tree after post-root.d is reused.
    write(
        &el.join("finalise.d/50-cache-probe"),
        &finalise("v2"),
        0o755,
    );
    let (log, files) = build("finalise", false, false, greeting);
    assert!(
        log.contains("build cache: reusing the tree after post-root.d"),
        "{log}"
    );
    assert!(
        log.contains("install.d (before the user's hooks): reused from the build cache"),
        "{log}"
    );
    probe(&files, "finalise", "finalise", "finalise v2");

    // A disk image: this image's first build keeps the disk made from the tree after
    // post-root.d; after another finalise.d change, the next attaches a copy of it, with
    // a new filesystem UUID, and runs only finalise.d and cleanup.d.
    let (log, _) = build("disk", false, true, greeting);
    assert!(
        log.contains("build cache: keeping the disk image made from the tree after post-root.d"),
        "{log}"
    );
    let first_ids = identity(&disk_out.with_extension("qcow2"), t);
    write(
        &el.join("finalise.d/50-cache-probe"),
        &finalise("v3"),
        0o755,
    );
    let (log, cached) = build("disk-reused", false, true, greeting);
    assert!(
        log.contains("build cache: reusing the disk image made from the tree after post-root.d"),
        "{log}"
    );
    assert!(
        log.contains("post-root.d: reused from the build cache"),
        "{log}"
    );
    probe(&cached, "disk-reused", "finalise", "finalise v3");
    // The copy got a new MBR disk identifier and filesystem UUID, as a new disk would.
    let reused_ids = identity(&disk_out.with_extension("qcow2"), t);
    assert_ne!(first_ids.0, reused_ids.0, "MBR disk identifier");
    assert_ne!(first_ids.1, reused_ids.1, "root filesystem UUID");

    let (log, uncached) = build("uncached", true, true, greeting);
    assert!(!log.contains("build cache"), "--no-cache: {log}");
    let differ: Vec<String> = cached
        .iter()
        .filter(|(k, v)| uncached.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: cached {v}, uncached {:?}", uncached.get(k)))
        .chain(
            uncached
                .keys()
                .filter(|k| !cached.contains_key(*k))
                .map(|k| format!("{k}: only uncached")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "{} differences: {differ:#?}",
        differ.len()
    );
    assert!(cached.len() > 5000, "{} files", cached.len());

    // The entries this test made go (they are in the shared image cache).
    let store = dirs_cache().join("dibkit-build");
    for k in made {
        fs::remove_dir_all(store.join(k)).ok();
    }
    eprintln!(
        "cached_rebuilds_equal_an_uncached_build: {:.0} s",
        start.elapsed().as_secs_f64()
    );
}

/// The MBR disk identifier of the qcow2 image `qcow2` and the UUID of the ext filesystem in
/// its first partition, read with `qemu-img dd` into files in `scratch`.
fn identity(qcow2: &Path, scratch: &Path) -> (Vec<u8>, Vec<u8>) {
    let read = |skip: u64, count: u64| -> Vec<u8> {
        let out = scratch.join("identity.raw");
        let status = std::process::Command::new("qemu-img")
            .args(["dd", "-f", "qcow2", "-O", "raw", "bs=512"])
            .arg(format!("skip={skip}"))
            // qemu-img dd's count is where reading ends, from the start.
            .arg(format!("count={}", skip + count))
            .arg(format!("if={}", qcow2.display()))
            .arg(format!("of={}", out.display()))
            .status()
            .unwrap();
        assert!(status.success(), "qemu-img dd {}", qcow2.display());
        let bytes = fs::read(&out).unwrap();
        fs::remove_file(&out).unwrap();
        assert_eq!(
            bytes.len() as u64,
            count * 512,
            "qemu-img dd {}",
            qcow2.display()
        );
        bytes
    };
    let mbr = read(0, 1);
    assert_eq!(&mbr[510..512], &[0x55, 0xaa], "an MBR");
    let start = u32::from_le_bytes(mbr[454..458].try_into().unwrap());
    let superblock = read(u64::from(start) + 2, 2);
    assert_eq!(&superblock[0x38..0x3a], &[0x53, 0xef], "an ext superblock");
    (mbr[440..444].to_vec(), superblock[0x68..0x78].to_vec())
}

fn dirs_cache() -> PathBuf {
    std::env::var_os("DIB_IMAGE_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/image-create")
        },
        PathBuf::from,
    )
}
