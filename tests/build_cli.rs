//! `dibkit build` checks that happen before anything is touched: these need no root, no
//! network and no time. The real builds are in tests/e2e.rs.

use crate::common::{dibkit, fixtures, run_normalized, settings};

fn snap(name: &str, cmd: &mut assert_cmd::Command, tmp: &std::path::Path) {
    let text = run_normalized(cmd, &[(tmp, "[TMP]")]);
    settings().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn dry_run_shows_plan_and_host_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd2 = dibkit();
    cmd2.current_dir(tmp.path()).args([
        "build",
        "--dry-run",
        "debian-minimal",
        "openssh-server",
        "-o",
        "rootfs",
    ]);
    snap("build-dry-run", &mut cmd2, tmp.path());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "dry run wrote files"
    );
}

#[test]
fn existing_output_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("rootfs.tar"), "keep me").unwrap();
    let mut cmd = dibkit();
    cmd.current_dir(tmp.path())
        .args(["build", "debian-minimal", "-t", "tar", "-o", "rootfs"]);
    snap("build-output-exists", &mut cmd, tmp.path());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("rootfs.tar")).unwrap(),
        "keep me"
    );
}

#[test]
fn unsupported_type_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = dibkit();
    cmd.current_dir(tmp.path())
        .args(["build", "debian-minimal", "-t", "vmdk", "-o", "img"]);
    snap("build-unsupported-type", &mut cmd, tmp.path());
}

#[test]
fn missing_host_tool_names_the_package() {
    if !nix::unistd::geteuid().is_root() {
        return; // The root check comes first; covered by not_root_is_refused.
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = dibkit();
    // debootstrap lives in /usr/sbin: leave it off PATH.
    cmd.current_dir(tmp.path())
        .env("PATH", "/usr/bin:/bin")
        .args(["build", "debian-minimal", "-t", "tar", "-o", "img"]);
    snap("build-missing-tool", &mut cmd, tmp.path());
}

#[test]
fn not_root_is_refused() {
    let runuser = std::path::Path::new("/usr/sbin/runuser");
    if !nix::unistd::geteuid().is_root() || !runuser.exists() {
        let mut cmd = dibkit();
        let tmp = tempfile::tempdir().unwrap();
        cmd.current_dir(tmp.path())
            .args(["build", "debian-minimal", "-t", "tar", "-o", "img"]);
        if !nix::unistd::geteuid().is_root() {
            cmd.assert()
                .code(4)
                .stderr(predicates::str::contains("must run as root"));
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = std::process::Command::new(runuser)
        .args(["-u", "nobody", "--"])
        .arg(env!("CARGO_BIN_EXE_dibkit"))
        .args(["build", "debian-minimal", "-o"])
        .arg(tmp.path().join("img"))
        .env_remove("ELEMENTS_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as root"));
}

#[test]
fn fatal_plan_is_refused_before_building() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = dibkit();
    cmd.current_dir(tmp.path())
        .env("ELEMENTS_PATH", fixtures().join("order/duplicate/elements"))
        .args([
            "build",
            "--builtins",
            "none",
            "-n",
            "os",
            "one",
            "two",
            "-o",
            "img",
        ]);
    snap("build-fatal-plan", &mut cmd, tmp.path());
}

/// qcow2 is compressed (zlib) unless `-u`, by dibkit's own writer; `--qemu-img-options`
/// reaches qemu-img's `-o`, so qemu-img writes that image.
#[test]
fn dry_run_shows_how_images_are_converted() {
    let convert = |extra: &[&str]| {
        let out = dibkit()
            .args([
                "build",
                "--dry-run",
                "debian-minimal",
                "vm",
                "-t",
                "qcow2,raw",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("to a temporary name"))
            .map(|l| l.split(" (").nth(1).unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        convert(&[]),
        [
            "dibkit's qcow2 writer: compat=1.1, 64 KiB clusters, zlib level 3 on every core, reusing the previous build's compressed clusters from the image cache's dibkit-clusters index, to a temporary name, then rename)",
            "qemu-img convert -f raw -O raw to a temporary name, then rename)",
        ]
    );
    // Without the build cache, no cluster index either.
    assert_eq!(
        convert(&["--no-cache"])[0],
        "dibkit's qcow2 writer: compat=1.1, 64 KiB clusters, zlib level 3 on every core to a temporary name, then rename)"
    );
    assert_eq!(
        convert(&["-u", "--qemu-img-options", "compression_type=zstd"])[0],
        "qemu-img convert -f raw -O qcow2 -o compat=1.1 -o compression_type=zstd to a temporary name, then rename)"
    );
    assert_eq!(
        convert(&["--qemu-img-options", "cluster_size=2M"])[0],
        "qemu-img convert -f raw -O qcow2 -o compat=1.1 -c -W -m 8 -o cluster_size=2M to a temporary name, then rename)"
    );
}

/// The build directory is a tmpfs as in dib: `--no-tmpfs` / `DIB_NO_TMPFS` (but `0`) keep it on disk,
/// `--min-tmpfs` / `DIB_MIN_TMPFS` set the RAM it needs (twice the value), and
/// `--keep-on-error` keeps it on disk so that it outlives the build.
#[test]
fn dry_run_shows_where_the_build_directory_is() {
    let step = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = dibkit();
        cmd.args(["build", "--dry-run", "debian-minimal", "-t", "tar"])
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("build directory"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let tmpfs = |gib: u32| {
        format!(
            "- build directory on a tmpfs with {gib} GiB of RAM or more (else on disk, 2 GiB free)"
        )
    };
    let disk = "- preflight: root, host tools, 2 GiB free, outputs absent (or --force); build directory on disk";
    assert_eq!(step(&[], &[]), tmpfs(4));
    assert_eq!(step(&["--min-tmpfs", "8"], &[]), tmpfs(16));
    assert_eq!(step(&[], &[("DIB_MIN_TMPFS", "3")]), tmpfs(6));
    assert_eq!(step(&["--no-tmpfs"], &[]), disk);
    assert_eq!(step(&[], &[("DIB_NO_TMPFS", "1")]), disk);
    assert_eq!(step(&[], &[("DIB_NO_TMPFS", "yes")]), disk);
    assert_eq!(step(&[], &[("DIB_NO_TMPFS", "0")]), tmpfs(4));
    assert_eq!(step(&["--keep-on-error"], &[]), disk);
}

#[test]
fn bad_min_tmpfs_is_a_usage_error() {
    dibkit()
        .args(["build", "--dry-run", "debian-minimal"])
        .env("DIB_MIN_TMPFS", "lots")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "DIB_MIN_TMPFS is `lots`, not a whole number of GiB",
        ));
}

#[test]
fn dry_run_of_a_vm_shows_the_disk_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dibkit()
        .current_dir(tmp.path())
        .args(["build", "--dry-run", "debian-minimal", "vm", "-o", "vm"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let layout = &text[text.find("disk layout from").expect("layout shown")..];
    settings().bind(|| insta::assert_snapshot!("build-dry-run-vm-layout", layout));
}

#[test]
fn bad_block_device_config_names_the_node_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = dibkit();
    cmd.current_dir(tmp.path())
        .env(
            "DIB_BLOCK_DEVICE_CONFIG",
            "- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: root\n        flags: [ boot, sideways ]\n        size: 100%\n",
        )
        .args(["build", "--dry-run", "debian-minimal", "vm", "-o", "vm"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DIB_BLOCK_DEVICE_CONFIG:8: Unknown flag: sideways"),
        "{stderr}"
    );
}

/// `dibkit boot` on an image that never boots: exit 1 with the console's last lines.
#[test]
fn boot_reports_an_image_that_does_not_boot() {
    if std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "qemu-system-x86_64 must be installed in CI"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("blank.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let out = dibkit()
        .args(["boot", "--accel", "tcg", "--timeout", "8"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not reach"), "{stderr}");
    assert!(tmp.path().join("blank.raw.boot.log").is_file());
}

/// `RUN_PARTS_REGEX` decides which hooks each phase runs, so a bad one stops the build before
/// anything runs, in one line.
#[test]
fn bad_run_parts_regex_is_a_usage_error() {
    dibkit()
        .args(["build", "--dry-run", "debian-minimal", "-t", "tar"])
        .env("RUN_PARTS_REGEX", "(")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "error: RUN_PARTS_REGEX `(` is not a valid regular expression: found open group \
             without closing ')'\n",
        ));
}
