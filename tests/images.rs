//! `dibkit build --file` (dib's image files) and the disk-image-create / diskimage-builder
//! drop-ins: what they print and refuse before anything is built. The builds themselves are
//! in tests/e2e/images.rs.

use crate::common::{dibkit, fixtures, run_normalized, settings};

fn snap(name: &str, cmd: &mut assert_cmd::Command) {
    let text = run_normalized(cmd, &[(&fixtures(), "[FIXTURES]")]);
    settings().bind(|| insta::assert_snapshot!(name, text));
}

/// The users' five images (three Fedora releases, CentOS, RHEL) dry-run to five builds,
/// each with its command line as dib's diskimage-builder forms it and its resolved elements.
/// The Red Hat elements are stand-ins (tests/fixtures/images/redhat), first on the path.
#[test]
fn five_images_dry_run_to_five_builds() {
    let mut cmd = dibkit();
    cmd.args(["build", "--dry-run", "--elements-path"])
        .arg(fixtures().join("images/redhat"))
        .arg("--file")
        .arg(fixtures().join("images/five-images.yaml"));
    snap("images-five-dry-run", &mut cmd);
}

/// The same file through the `diskimage-builder` drop-in: the same five builds.
#[test]
fn diskimage_builder_drop_in_takes_image_files() {
    let out = dibkit()
        .args(["diskimage-builder", "--dry-run"])
        .arg(fixtures().join("images/five-images.yaml"))
        .env("ELEMENTS_PATH", fixtures().join("images/redhat"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("disk-image-create -o ").count(), 5, "{text}");
}

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("images.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Schema errors name the file, the line and the key, with the fix; exit status 2.
#[test]
fn schema_errors_name_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "images-release-key",
            "- imagename: vm\n  elements: [debian-minimal, vm]\n  release: 9\n",
        ),
        (
            "images-unquoted-release",
            "- imagename: vm\n  environment:\n    DIB_RELEASE: 9\n  elements: [debian-minimal]\n",
        ),
        ("images-not-a-list", "imagename: vm\n"),
        ("images-bad-type", "- types: [qcow2, iso]\n"),
    ] {
        let file = write(tmp.path(), text);
        let mut cmd = dibkit();
        cmd.arg("build").arg("--file").arg(&file);
        let text = run_normalized(&mut cmd, &[(tmp.path(), "[TMP]")]);
        settings().bind(|| insta::assert_snapshot!(name, text));
    }
}

/// `--strict` refuses dibkit's additions (keys dib's own disk-image-create rejects).
#[test]
fn strict_refuses_dibkit_additions() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "- imagename: vm\n  image-extra-size: 2\n  elements: [debian-minimal, vm]\n",
    );
    let mut cmd = dibkit();
    cmd.args(["build", "--dry-run", "--file"]).arg(&file);
    cmd.assert().success();
    let mut cmd = dibkit();
    cmd.args(["build", "--dry-run", "--strict", "--file"])
        .arg(&file);
    let text = run_normalized(&mut cmd, &[(tmp.path(), "[TMP]")]);
    settings().bind(|| insta::assert_snapshot!("images-strict", text));
}

/// A ramdisk image is refused with where it was asked for.
#[test]
fn ramdisk_images_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "- imagename: ipa\n  elements: [debian-minimal]\n- ramdisk: true\n",
    );
    let out = dibkit()
        .args(["build", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("images.yaml:3: `ramdisk`: image `ipa` is a ramdisk"),
        "{err}"
    );
}

/// The disk-image-create drop-in refuses what dib 3.43's getopt refuses, with getopt's words
/// and dib's exit status 1, whether called as `dibkit disk-image-create` or through a symlink.
#[test]
fn disk_image_create_refuses_unknown_options_as_dib() {
    let mut cmd = dibkit();
    cmd.args(["disk-image-create", "-x", "--no-such-option", "vm"]);
    snap("images-dic-unknown-option", &mut cmd);
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("disk-image-create");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("dibkit"), &link).unwrap();
    let out = std::process::Command::new(&link)
        .args(["-t", "qcow2", "-z", "vm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("disk-image-create: invalid option -- 'z'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&link)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--checksum",
        "--no-tmpfs",
        "--offline",
        "--min-tmpfs",
        "--image-size",
        "--image-cache",
        "--max-online-resize",
        "--mkfs-options",
        "--qemu-img-options",
        "--ramdisk-element",
        "--root-label",
        "--install-type",
        "--docker-target",
        "--logfile",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    // No elements: dib's own message and status.
    let out = std::process::Command::new(&link)
        .args(["-o", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("At least one distribution root element must be specified")
    );
}

/// The commands dibkit forms from an image file are the ones dib 3.43's own
/// `diskimage-builder --dry-run` prints (the upstream oracle, tests/oracle/setup), for the
/// users' five images and for a file exercising every key and dib's merging.
#[test]
fn commands_equal_upstream_diskimage_builder() {
    let upstream = crate::common::root().join("target/upstream/venv/bin/diskimage-builder");
    if !upstream.is_file() {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "DIBKIT_REQUIRE_ORACLE=1 but {} is missing: run tests/oracle/setup",
            upstream.display()
        );
        eprintln!("skipping: the upstream oracle is not installed (tests/oracle/setup)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let every_key = write(
        tmp.path(),
        "- arch: amd64\n  types: [qcow2, tar]\n  environment: {A: 'x y', B: \"it's\"}\n\
         \x20 debug-trace: 2\n  uncompressed: true\n  clear: false\n  logfile: /tmp/l\n\
         \x20 checksum: yes\n  image-size: 3\n  image-cache: /c\n  max-online-resize: 100\n\
         \x20 min-tmpfs: 4\n  mkfs-options: -m 0\n  no-tmpfs: true\n  offline: true\n\
         \x20 qemu-img-options: {compat: '0.10', lazy_refcounts: 'on'}\n  root-label: root\n\
         \x20 ramdisk-element: dracut-ramdisk\n  install-type: package\n\
         \x20 docker-target: t\n  packages: [a, b]\n  skip-base: true\n  elements: [e1]\n\
         - packages: [c]\n  elements: [e2]\n  types: [raw]\n  environment: {A: z}\n\
         - imagename: second\n  elements: [x]\n- imagename: image\n  elements: [y]\n",
    );
    for file in [fixtures().join("images/five-images.yaml"), every_key] {
        let theirs = std::process::Command::new(&upstream)
            .arg("--dry-run")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            theirs.status.success(),
            "{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let theirs: Vec<String> = String::from_utf8_lossy(&theirs.stderr)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (env, rest) = l.split_once("bash ").unwrap();
                let args = rest.split_once(' ').map_or("", |(_, a)| a);
                format!("{env}disk-image-create {args}")
                    .trim_end()
                    .to_owned()
            })
            .collect();
        let ours = dibkit()
            .args(["build", "--dry-run", "--builtins", "none", "--file"])
            .arg(&file)
            .output()
            .unwrap();
        let ours: Vec<String> = String::from_utf8_lossy(&ours.stdout)
            .lines()
            .filter(|l| l.contains("disk-image-create"))
            .map(str::to_owned)
            .collect();
        assert_eq!(ours, theirs, "{}", file.display());
    }
}

/// nodepool's `--qemu-img-options compat=0.10`: dibkit's own qcow2 writer makes a version 2
/// image ("old-style qcow2"), which qemu-img checks clean and reads as the raw image; other
/// options still go to qemu-img, and never to a raw output (dib converts only qcow2 with them).
#[test]
fn compat_0_10_is_an_old_style_qcow2() {
    use dibkit::engine::disk;
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::AtomicBool;
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "qemu-img must be installed in CI"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("disk.raw");
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(64 << 20).unwrap();
    let text: Vec<u8> = (0..3_000_000u32)
        .map(|i| b"dibkit "[(i % 7) as usize])
        .collect();
    f.write_all_at(&text, 1 << 20).unwrap();
    f.write_all_at(b"the end", (64 << 20) - 7).unwrap();
    drop(f);
    assert!(disk::builtin_writer("qcow2", true, Some("compat=0.10")));
    assert!(!disk::builtin_writer(
        "qcow2",
        true,
        Some("lazy_refcounts=on")
    ));
    assert_eq!(
        disk::convert_args("raw", false, Some("compat=0.10")),
        ["-f", "raw", "-O", "raw"]
    );
    let image = tmp.path().join("disk.qcow2");
    disk::convert(
        &raw,
        "qcow2",
        &image,
        true,
        Some("compat=0.10"),
        &AtomicBool::new(false),
    )
    .unwrap();
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output", "json"])
        .arg(&image)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format-specific"]["data"]["compat"], "0.10", "{info}");
    for args in [vec!["check"], vec!["compare", "-f", "raw", "-F", "qcow2"]] {
        let mut cmd = std::process::Command::new("qemu-img");
        cmd.args(&args);
        if args[0] == "compare" {
            cmd.arg(&raw);
        }
        let out = cmd.arg(&image).output().unwrap();
        assert!(
            out.status.success(),
            "qemu-img {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
