//! End-to-end builds, as root, with the network to the Debian mirror. They run only with
//! `DIBKIT_E2E=1` (set by `.ci/run`); otherwise each test prints why it is skipped.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "e2e/redhat.rs"]
mod redhat;

/// Builds share the machine's mounts, the image cache and the apt cache, and the checks
/// below look at every mount: one build at a time, however the harness schedules tests.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[path = "e2e/cache.rs"]
mod cache;

fn enabled(name: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if std::env::var("DIBKIT_E2E").as_deref() == Ok("1") {
        return Some(
            SERIAL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }
    eprintln!("skipping {name}: set DIBKIT_E2E=1 (needs root and the Debian mirror)");
    None
}

/// `dibkit`, run from cargo's scratch directory for tests: a build given a relative path, and
/// the manifests element's `<IMAGE_NAME>.d/` copy, must never land in the repository, as four
/// `*.d/dib-manifests` trees once did when `IMAGE_NAME` was the output's bare file name.
fn dibkit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dibkit"));
    cmd.env_remove("ELEMENTS_PATH")
        .env("NO_COLOR", "1")
        // The build cache would skip phases these tests watch; tests/e2e/cache.rs turns it on.
        .env("DIBKIT_NO_CACHE", "1")
        // The build cache would skip phases these tests watch; tests/e2e/cache.rs turns it on.
        .env("DIBKIT_NO_CACHE", "1")
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    cmd
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build/elements")
}

/// Nothing of a build may survive it: no mount, no build directory.
fn assert_nothing_left(tmp: &Path) {
    // Only this test's builds: other builds on the machine may be running.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = tmp.display().to_string();
    let ours: Vec<&str> = mounts.lines().filter(|l| l.contains(&prefix)).collect();
    assert!(ours.is_empty(), "mounts left behind: {ours:?}");
    let dirs: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dibkit_build."))
        .collect();
    assert!(dirs.is_empty(), "build directories left behind: {dirs:?}");
}

/// Waits until the probe element's hook pauses in `phase` (the build must still be running).
fn wait_for_pause(child: &mut std::process::Child, log: &Path, phase: &str) {
    let marker = format!("probe: paused in {phase}");
    let start = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(&marker)
    {
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "{phase} never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "build ended before {phase}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs a build; a failure shows its log.
fn built(cmd: &mut Command, out: &Path) {
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "build failed; log: {}",
        std::fs::read_to_string(out.with_extension("log")).unwrap_or_default()
    );
}

/// `dibkit boot` under TCG (with `extra` options) reaches its prompt; a failure shows its
/// report with the last console lines.
fn assert_boots(image: &Path, extra: &[&std::ffi::OsStr]) {
    let boot = dibkit()
        .args(["boot", "--accel", "tcg", "--timeout", "600"])
        .args(extra)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        boot.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&boot.stderr)
    );
}

/// The attached loop devices (`losetup -a`).
fn loop_devices() -> Vec<u8> {
    Command::new("losetup").arg("-a").output().unwrap().stdout
}

/// A partition of a raw image as sfdisk reads it, without a loop device.
#[derive(Debug, PartialEq)]
struct Part {
    /// The partition number (the node name's suffix).
    number: String,
    start_sector: u64,
    ptype: String,
}

/// The label (`dos`, `gpt`) and partitions of a raw image.
fn partitions(raw: &Path) -> (String, Vec<Part>) {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(raw)
        .output()
        .unwrap();
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = &table["partitiontable"];
    let parts = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Part {
            number: p["node"]
                .as_str()
                .unwrap()
                .rsplit(".raw")
                .next()
                .unwrap()
                .to_owned(),
            start_sector: p["start"].as_u64().unwrap(),
            ptype: p["type"].as_str().unwrap().to_owned(),
        })
        .collect();
    (table["label"].as_str().unwrap().to_owned(), parts)
}

fn tar_list(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn tar_read(tar: &Path, member: &str) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(tar)
        .arg(member)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `debian-minimal openssh-server devuser` (and a fixture that configures initramfs-tools) to
/// a root filesystem tar: the plan ran exactly, the user and key are in, the initramfs follows
/// its configuration, nothing is left behind.
#[test]
fn debian_rootfs_with_ssh_and_devuser() {
    let Some(_serial) = enabled("debian_rootfs_with_ssh_and_devuser") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDibkitTestKeyOnly dibkit@test\n",
    )
    .unwrap();
    let out = tmp.path().join("out/rootfs");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    built(
        dibkit()
            .args([
                "build",
                "debian-minimal",
                "openssh-server",
                "devuser",
                "initramfs-gzip",
                "-t",
                "tar",
                "-o",
            ])
            .arg(&out)
            .env("ELEMENTS_PATH", fixtures())
            .env("TMPDIR", tmp.path())
            .env("DIB_DEV_USER_AUTHORIZED_KEYS", &key)
            .env("DIB_DEV_USER_PWDLESS_SUDO", "yes"),
        &out,
    );
    let tar = out.with_extension("tar");
    let files = tar_list(&tar);
    for want in [
        "./etc/debian_version",
        "./usr/sbin/sshd",
        "./home/devuser/.ssh/authorized_keys",
        "./usr/local/bin/install-packages",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} missing from the tar"
        );
    }
    assert!(tar_read(&tar, "./home/devuser/.ssh/authorized_keys").contains("dibkit@test"));
    // One kernel, and its initramfs rebuilt after a pre-install.d script configured
    // initramfs-tools (the kernel came with the prepared tree, in root.d): gzip, not zstd.
    let kernels: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("./boot/vmlinuz-"))
        .collect();
    assert_eq!(kernels.len(), 1, "{kernels:?}");
    let initrd = kernels[0].replace("vmlinuz", "initrd.img");
    // The kernel's links, /initrd.img included (made by the debootstrap element when it made
    // the initramfs of a prepared tree itself).
    let links = Command::new("tar")
        .arg("-tvf")
        .arg(&tar)
        .args([
            "./vmlinuz",
            "./vmlinuz.old",
            "./initrd.img",
            "./initrd.img.old",
        ])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    for (link, to) in [("initrd.img", &initrd), ("vmlinuz", kernels[0])] {
        for name in [link.to_string(), format!("{link}.old")] {
            assert!(
                links.contains(&format!("./{name} -> {}", &to[2..])),
                "{links}"
            );
        }
    }
    let head = Command::new("sh")
        .arg("-c")
        .arg("tar -xOf \"$0\" \"$1\" | head -c 2 | od -An -tx1")
        .arg(&tar)
        .arg(&initrd)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "1f 8b",
        "{initrd} is not gzip"
    );
    // Each machine makes its own iSCSI initiator name.
    assert!(tar_read(&tar, "./etc/iscsi/initiatorname.iscsi").contains("\nGenerateName=yes\n"));
    assert!(tar_read(&tar, "./etc/passwd").contains("devuser:"));
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("./tmp/") && f != "./tmp/"),
        "/tmp was not emptied"
    );
    // The manifest records every planned script, and nothing else.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_extension("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["drift"], serde_json::json!([]), "{manifest}");
    let plan = dibkit()
        .args([
            "order",
            "--format",
            "json",
            "debian-minimal",
            "openssh-server",
            "devuser",
            "initramfs-gzip",
        ])
        .env("ELEMENTS_PATH", fixtures())
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let planned: usize = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"] != "block-device.d")
        .map(|p| p["scripts"].as_array().unwrap().len())
        .sum();
    assert_eq!(manifest["scripts"].as_array().unwrap().len(), planned);
    assert!(
        manifest["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == 0)
    );
    assert_nothing_left(tmp.path());
}

/// A failing hook: exit status 3, its phase, element and output named, no partial output.
#[test]
fn failing_hook_stops_the_build_cleanly() {
    let Some(_serial) = enabled("failing_hook_stops_the_build_cleanly") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("failed");
    let result = dibkit()
        .args([
            "build",
            "debian-minimal",
            "fails-in-install",
            "-t",
            "tar",
            "-o",
        ])
        .arg(&out)
        .env("ELEMENTS_PATH", fixtures())
        .env("TMPDIR", tmp.path())
        .env("DIB_DEBIAN_KERNEL", "none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("install.d/50-fails-in-install from element `fails-in-install` failed with exit status 7"), "{stderr}");
    assert!(stderr.contains("about to fail on purpose"), "{stderr}");
    assert!(!out.with_extension("tar").exists());
    assert!(
        std::fs::read_to_string(out.with_extension("log"))
            .unwrap()
            .contains("about to fail on purpose")
    );
    assert_nothing_left(tmp.path());
}

/// Interrupts a build in each phase it runs (SIGINT and SIGTERM in turn): exit 130, the
/// hook's processes killed, no mount, no workspace, no output.
#[test]
fn interrupted_build_leaves_nothing_behind_in_any_phase() {
    let Some(_serial) = enabled("interrupted_build_leaves_nothing_behind_in_any_phase") else {
        return;
    };
    let phases = [
        "root.d",
        "extra-data.d",
        "pre-install.d",
        "install.d",
        "post-install.d",
        "post-root.d",
        "pre-finalise.d",
        "finalise.d",
        "cleanup.d",
    ];
    for (i, phase) in phases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("interrupted");
        let mut child = dibkit()
            .args(["build", "debian-minimal", "probe", "-t", "tar", "-o"])
            .arg(&out)
            .env("ELEMENTS_PATH", fixtures())
            .env("TMPDIR", tmp.path())
            .env("DIB_DEBIAN_KERNEL", "none")
            .env("DIB_PROBE_PAUSE", phase)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_pause(&mut child, &out.with_extension("log"), phase);
        let signal = if i % 2 == 0 {
            nix::sys::signal::Signal::SIGTERM
        } else {
            nix::sys::signal::Signal::SIGINT
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{phase}");
        assert!(!out.with_extension("tar").exists(), "{phase}: output left");
        assert_nothing_left(tmp.path());
        // The paused hook was killed with its build.
        let ps = Command::new("pgrep")
            .args(["-f", "sleep 600"])
            .output()
            .unwrap();
        assert!(
            ps.stdout.is_empty(),
            "{phase}: the hook survived the interrupt"
        );
    }
}

/// A hook that leaves a process in the background holding the phase's output does not hang
/// the build, and a hook that ignores SIGTERM does not survive an interrupt.
#[test]
fn stray_and_stubborn_hook_processes_are_stopped() {
    let Some(_serial) = enabled("stray_and_stubborn_hook_processes_are_stopped") else {
        return;
    };
    let gone = |pattern: &str| {
        Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("daemon");
    built(
        dibkit()
            .args([
                "build",
                "debian-minimal",
                "stray-processes",
                "-t",
                "tar",
                "-o",
            ])
            .arg(&out)
            .env("ELEMENTS_PATH", fixtures())
            .env("TMPDIR", tmp.path())
            .env("DIB_DEBIAN_KERNEL", "none")
            .env("DIB_TEST_STRAY", "daemon"),
        &out,
    );
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert!(log.contains("processes it left in the background"), "{log}");
    assert!(
        gone("sleep 607"),
        "the background process outlived its build"
    );
    assert_nothing_left(tmp.path());

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stubborn");
    let mut child = dibkit()
        .args([
            "build",
            "debian-minimal",
            "stray-processes",
            "-t",
            "tar",
            "-o",
        ])
        .arg(&out)
        .env("ELEMENTS_PATH", fixtures())
        .env("TMPDIR", tmp.path())
        .env("DIB_DEBIAN_KERNEL", "none")
        .env("DIB_TEST_STRAY", "stubborn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = out.with_extension("log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("stubborn hook waiting")
    {
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "never reached install.d"
        );
        assert!(child.try_wait().unwrap().is_none(), "build ended early");
        std::thread::sleep(Duration::from_millis(300));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let asked = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        gone("sleep 608"),
        "the stubborn hook survived the interrupt"
    );
    assert_nothing_left(tmp.path());
}

/// The probe element's hooks record themselves: the order they ran in, phase by phase,
/// is exactly `dibkit order`'s plan.
#[test]
fn executed_order_equals_the_plan() {
    let Some(_serial) = enabled("executed_order_equals_the_plan") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("probe");
    built(
        dibkit()
            .args(["build", "debian-minimal", "probe", "-t", "tar", "-o"])
            .arg(&out)
            .env("ELEMENTS_PATH", fixtures())
            .env("TMPDIR", tmp.path())
            .env("DIB_DEBIAN_KERNEL", "none"),
        &out,
    );
    let recorded: Vec<String> = tar_read(&out.with_extension("tar"), "./var/lib/dibkit-probe")
        .lines()
        .map(str::to_owned)
        .collect();
    let plan = dibkit()
        .args(["order", "--format", "json", "debian-minimal", "probe"])
        .env("ELEMENTS_PATH", fixtures())
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let planned: Vec<String> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let phase = p["phase"].as_str().unwrap().to_owned();
            p["scripts"]
                .as_array()
                .unwrap()
                .iter()
                // A tar build makes no disk, so block-device.d does not run.
                .filter(|s| {
                    s["element"] == "probe"
                        && s["name"] != "99-probe-pause"
                        && p["phase"] != "block-device.d"
                })
                .map(move |s| format!("{phase} {}", s["name"].as_str().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(recorded, planned);
    assert!(recorded.len() >= 35, "{recorded:?}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_extension("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["drift"], serde_json::json!([]));
    // What scripts ran themselves, with their callers (all declared in hook-calls, or the
    // drift above would name them): the base install updated the lists with dpkg's script,
    // and debootstrap ran each prepare script on a fresh tree or reported why it did not.
    let calls = manifest["calls"].as_array().unwrap();
    let by = |caller: &str, script: &str| -> Vec<&serde_json::Value> {
        calls
            .iter()
            .filter(|c| c["caller"] == caller && c["script"] == script)
            .collect()
    };
    assert!(
        by("root.d/60-debian-minimal-baseinstall", "85-dpkg-apt-update")
            .iter()
            .any(|c| c["phase"] == "pre-install.d" && c["status"] == 0),
        "{manifest}"
    );
    for prepare in [
        "20-dpkg-apt-config",
        "55-debian-apt-sources",
        "60-debian-minimal-baseinstall",
    ] {
        let runs = by("root.d/10-debootstrap", prepare);
        assert_eq!(runs.len(), 1, "{manifest}");
        assert!(
            runs[0]["status"] == 0 || runs[0]["skipped"].is_string(),
            "{manifest}"
        );
    }
    eprintln!("calls: {}", serde_json::Value::Array(calls.clone()));
    assert_nothing_left(tmp.path());
}

/// The example CI worker as a VM image: package-installs and pkg-map installed its packages
/// (`java` mapped to Debian's JDK), the jenkins user has the key and passwordless sudo (read
/// from the raw image's root filesystem, mounted read-only), and the qcow2 boots.
#[test]
fn jenkins_slave_vm() {
    let Some(_serial) = enabled("jenkins_slave_vm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("jenkins.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJenkinsTestKeyOnly jenkins@test\n",
    )
    .unwrap();
    let out = tmp.path().join("jenkins-worker");
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/elements");
    built(
        dibkit()
            .args([
                "build",
                "debian-minimal",
                "vm",
                "jenkins-slave",
                "-t",
                "qcow2,raw",
                "-o",
            ])
            .arg(&out)
            .env("ELEMENTS_PATH", &examples)
            .env("TMPDIR", tmp.path())
            .env("JENKINS_PUBLIC_SSH_KEY_PATH", &key),
        &out,
    );
    assert_nothing_left(tmp.path());

    // The root filesystem of the raw image, through a read-only offset loop device.
    let raw = out.with_extension("raw");
    let offset = partitions(&raw).1[0].start_sector * 512;
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let dev = Command::new("losetup")
        .args(["--show", "-f", "-r", "-o", &offset.to_string()])
        .arg(&raw)
        .output()
        .unwrap();
    let dev = String::from_utf8_lossy(&dev.stdout).trim().to_owned();
    assert!(dev.starts_with("/dev/loop"), "losetup: {dev}");
    let mounted = Command::new("mount")
        .args(["-o", "ro", &dev])
        .arg(&mnt)
        .status()
        .unwrap();
    let read = |p: &str| std::fs::read_to_string(mnt.join(p)).unwrap_or_default();
    let checks = || {
        assert!(mounted.success(), "mounting the root filesystem failed");
        for bin in ["usr/bin/git", "usr/bin/curl", "usr/bin/gcc", "usr/bin/java"] {
            assert!(mnt.join(bin).exists(), "{bin} missing from the image");
        }
        assert!(read("etc/passwd").contains("jenkins:"));
        assert!(read("home/jenkins/.ssh/authorized_keys").contains("jenkins@test"));
        let sudoers: String = std::fs::read_dir(mnt.join("etc/sudoers.d"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .collect();
        assert!(
            sudoers.contains("jenkins") && sudoers.contains("NOPASSWD"),
            "{sudoers}"
        );
    };
    let result = std::panic::catch_unwind(checks);
    let _ = Command::new("umount").arg(&mnt).status();
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    // dibkit's own qcow2 writer: qemu-img finds the image consistent and equal to the raw.
    let qcow2 = out.with_extension("qcow2");
    let check = Command::new("qemu-img")
        .arg("check")
        .arg(&qcow2)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let compare = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .output()
        .unwrap();
    assert!(compare.status.success(), "{compare:?}");
    assert_boots(&qcow2, &[]);
}

/// `debian-minimal vm` to qcow2 boots to a login prompt under `dibkit boot`, and the build
/// leaves no loop device behind.
#[test]
fn vm_qcow2_boots() {
    let Some(_serial) = enabled("vm_qcow2_boots") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("debian");
    let before = loop_devices();
    built(
        dibkit()
            .args(["build", "debian-minimal", "vm", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path()),
        &out,
    );
    let image = out.with_extension("qcow2");
    assert!(image.is_file());
    assert_eq!(loop_devices(), before, "a loop device was left attached");
    assert_nothing_left(tmp.path());
    assert_boots(&image, &[]);
}

/// `debian-minimal vm growroot` to qcow2, made 1 GiB bigger with `qemu-img resize` before its
/// first boot: growroot.service grows the root partition and then its ext4 filesystem, and
/// says so on the serial console.
#[test]
fn growroot_grows_resized_qcow2() {
    let Some(_serial) = enabled("growroot_grows_resized_qcow2") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("growroot");
    built(
        dibkit()
            .args(["build", "debian-minimal", "vm", "growroot", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path()),
        &out,
    );
    let image = out.with_extension("qcow2");
    assert_nothing_left(tmp.path());
    let resize = Command::new("qemu-img")
        .arg("resize")
        .arg(&image)
        .arg("+1G")
        .output()
        .unwrap();
    assert!(
        resize.status.success(),
        "{}",
        String::from_utf8_lossy(&resize.stderr)
    );
    // The filesystem line comes last and only when it really grew, which needs the
    // partition to have grown first.
    let console = tmp.path().join("growroot.boot.log");
    assert_boots(
        &image,
        &[
            "--expect".as_ref(),
            "growroot: grew the ext4 filesystem on / from".as_ref(),
            "--log".as_ref(),
            console.as_os_str(),
        ],
    );
    let console = String::from_utf8_lossy(&std::fs::read(&console).unwrap()).replace('\r', "");
    assert!(
        console.contains("growroot: grew /dev/vda1 from"),
        "the partition line is missing:\n{console}"
    );
}

/// Interrupting a disk build while the image is attached (block-device.d, then finalise.d on
/// the mounted image) releases every mount, partition device and loop device.
#[test]
fn interrupted_disk_build_releases_loop_devices() {
    let Some(_serial) = enabled("interrupted_disk_build_releases_loop_devices") else {
        return;
    };
    for phase in ["block-device.d", "finalise.d"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("disk");
        let before = loop_devices();
        let mut child = dibkit()
            .args(["build", "debian-minimal", "vm", "probe", "-o"])
            .arg(&out)
            .env("ELEMENTS_PATH", fixtures())
            .env("TMPDIR", tmp.path())
            .env("DIB_DEBIAN_KERNEL", "none")
            .env("DIB_PROBE_PAUSE", phase)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_pause(&mut child, &out.with_extension("log"), phase);
        if phase == "finalise.d" {
            // The image is attached while finalise.d runs.
            assert_ne!(loop_devices(), before);
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(130), "{phase}");
        assert!(
            !out.with_extension("qcow2").exists(),
            "{phase}: output left"
        );
        assert_eq!(loop_devices(), before, "{phase}: loop device left");
        assert_nothing_left(tmp.path());
    }
}

/// `debian-minimal vm block-device-efi`: one GPT image that boots with UEFI (OVMF, GRUB on
/// the ESP's removable-media path) and with a BIOS; the ESP was filled without mounting FAT.
#[test]
fn efi_image_boots_with_uefi_and_bios() {
    let Some(_serial) = enabled("efi_image_boots_with_uefi_and_bios") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("efi");
    let before = loop_devices();
    built(
        dibkit()
            .args([
                "build",
                "debian-minimal",
                "vm",
                "block-device-efi",
                "-t",
                "qcow2,raw",
                "-o",
            ])
            .arg(&out)
            .env("TMPDIR", tmp.path()),
        &out,
    );
    assert_eq!(loop_devices(), before, "a loop device was left attached");
    assert_nothing_left(tmp.path());
    // The partition table and the ESP, read from the raw image without a loop device.
    let raw = out.with_extension("raw");
    let (label, parts) = partitions(&raw);
    assert_eq!(label, "gpt");
    let types: Vec<&str> = parts.iter().map(|p| p.ptype.as_str()).collect();
    assert_eq!(
        types,
        [
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "21686148-6449-6E6F-744E-656564454649",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
        ]
    );
    let esp_offset = parts[0].start_sector * 512;
    let listing = Command::new("mdir")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-/", "-b", "-i"])
        .arg(format!("{}@@{esp_offset}", raw.display()))
        .arg("::/")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("::/EFI/BOOT/BOOTX64.EFI"),
        "ESP holds: {listing}"
    );
    let image = out.with_extension("qcow2");
    assert_boots(&image, &["--uefi".as_ref()]);
    assert_boots(&image, &[]);
}

/// A user layout through `DIB_BLOCK_DEVICE_CONFIG`: a primary `/boot`, then logical
/// partitions (swap and the root) in an extended partition; the image boots.
#[test]
fn logical_partitions_and_separate_boot() {
    let Some(_serial) = enabled("logical_partitions_and_separate_boot") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout.yaml");
    std::fs::write(
        &layout,
        "- local_loop:
    name: image0
- partitioning:
    base: image0
    label: mbr
    partitions:
      - name: boot
        flags: [ boot, primary ]
        size: 300MiB
        mkfs:
          type: ext4
          label: img-boot
          mount:
            mount_point: /boot
            fstab:
              options: defaults
              fsck-passno: 2
      - name: swap
        type: '0x82'
        size: 64MiB
        mkfs:
          type: swap
          mount:
            mount_point: none
            fstab:
              options: sw
      - name: root
        size: 100%
        mkfs:
          type: ext4
          mount:
            mount_point: /
            fstab:
              options: defaults
              fsck-passno: 1
",
    )
    .unwrap();
    let out = tmp.path().join("logical");
    built(
        dibkit()
            .args(["build", "debian-minimal", "vm", "-t", "qcow2,raw", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path())
            .env(
                "DIB_BLOCK_DEVICE_CONFIG",
                format!("file://{}", layout.display()),
            ),
        &out,
    );
    assert_nothing_left(tmp.path());
    let (label, parts) = partitions(&out.with_extension("raw"));
    assert_eq!(label, "dos");
    let nodes: Vec<(&str, &str)> = parts
        .iter()
        .map(|p| (p.number.as_str(), p.ptype.as_str()))
        .collect();
    assert_eq!(nodes, [("1", "83"), ("2", "5"), ("5", "82"), ("6", "83")]);
    assert_boots(&out.with_extension("qcow2"), &[]);
}

/// debootstrap from the local, cut-down index makes the very tree it makes from the mirror's
/// own: the same files, modes, owners and contents (its logs aside), sources.list and apt
/// index files included.
#[test]
fn local_index_tree_equals_plain_debootstrap() {
    let Some(_serial) = enabled("local_index_tree_equals_plain_debootstrap") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/elements/debootstrap/root.d/10-debootstrap"
    );
    for (name, local) in [("local", "1"), ("plain", "0")] {
        let root = tmp.path().join(name);
        let build = tmp.path().join(format!("{name}.build"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&build).unwrap();
        let out = Command::new(script)
            .current_dir(tmp.path())
            .env("DIBKIT", env!("CARGO_BIN_EXE_dibkit"))
            .env("TARGET_ROOT", &root)
            .env("TMP_BUILD_DIR", &build)
            .env("TMP_HOOKS_PATH", tmp.path())
            .env("DIB_IMAGE_CACHE", tmp.path().join("cache"))
            .env("DISTRO_NAME", "debian")
            .env("DIB_RELEASE", "bookworm")
            .env("DIB_DEBOOTSTRAP_CACHE", "0")
            .env("DIB_DEBOOTSTRAP_LOCAL_INDEX", local)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert_eq!(
            stdout.contains("resolving from a local copy of the index"),
            local == "1",
            "{stdout}"
        );
        assert!(
            !stderr.contains("the run from the local index failed"),
            "{stderr}"
        );
    }
    let diff = Command::new("bash")
        .args([
            "-c",
            r#"set -u
            cd "$1"
            list() { (cd "$1" && find . -xdev -printf '%p %y %m %U %G %l\n' | LC_ALL=C sort); }
            diff <(list local) <(list plain) || exit 1
            (cd local && find . -xdev -type f -printf '%p\n') | while read -r f; do
                case $f in ./var/log/* | ./var/cache/ldconfig/aux-cache) continue ;; esac
                cmp -s "local/$f" "plain/$f" || echo "contents differ: $f"
            done | grep . && exit 1
            exit 0"#,
            "diff",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
}

/// The steps a build runs are the steps `--dry-run` lists: each step's line in the log is the
/// dry run's line for it, in the same order, none missing and none added.
/// See: issue 17 ("a staged build you can read").
#[test]
fn the_build_runs_the_steps_the_dry_run_lists() {
    let Some(_serial) = enabled("the_build_runs_the_steps_the_dry_run_lists") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("steps");
    let command = |dry_run: bool| {
        let mut cmd = dibkit();
        cmd.args(["build", "debian-minimal", "-t", "tar", "-p", "less", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path())
            .env("DIB_DEBIAN_KERNEL", "none");
        if dry_run {
            cmd.arg("--dry-run");
        }
        cmd
    };
    let dry = command(true).output().unwrap();
    assert!(dry.status.success(), "{dry:?}");
    let dry = String::from_utf8_lossy(&dry.stdout).into_owned();
    let listed: Vec<&str> = dry
        .lines()
        .skip_while(|l| !l.starts_with("build steps (tar)"))
        .skip(1)
        .take_while(|l| l.starts_with("  - "))
        .map(|l| &l[4..])
        .collect();
    assert!(listed.len() > 20, "{dry}");
    built(&mut command(false), &out);
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    let ran: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("dibkit step: "))
        .collect();
    assert_eq!(ran, listed);
    assert!(
        tar_list(&out.with_extension("tar"))
            .iter()
            .any(|f| f == "./usr/bin/less"),
        "-p less was not installed"
    );
    assert_nothing_left(tmp.path());
}

/// A sudo stand-in for upstream's hooks (the machine has no sudo; we are root already): `-E`
/// keeps the environment, otherwise it is reset as sudo's env_reset does.
const SUDO_SHIM: &str = r#"#!/bin/bash
keep=
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        --) shift; break ;;
        -E | --preserve-env) keep=1; shift ;;
        -u | -g | -C | -D) shift 2 ;;
        *) shift ;;
    esac
done
[[ -n $keep ]] && exec "$@"
exec env -i PATH="$PATH" HOME=/root TERM="${TERM:-dumb}" LOGNAME=root USER=root SHELL=/bin/bash "$@"
"#;

/// Upstream dib's own `debian-minimal vm`, its elements given with `--builtins`: dibkit
/// exports that directory on `ELEMENTS_PATH` after the user's entries, as dib does, so
/// upstream's package-installs finds every element's packages (`locales` among them, which
/// install.d then configures) and the image boots. Needs the oracle (tests/oracle/setup).
/// See: issue 17, item 9.
#[test]
fn upstream_debian_minimal_vm_with_builtins_boots() {
    let Some(_serial) = enabled("upstream_debian_minimal_vm_with_builtins_boots") else {
        return;
    };
    let upstream = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/upstream");
    let elements = upstream.join("src/diskimage_builder/elements");
    let python = upstream.join("venv/bin/python");
    if !elements.is_dir() || !python.is_file() {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "the upstream oracle must be installed (tests/oracle/setup)"
        );
        eprintln!("skipping: the upstream oracle is not installed (tests/oracle/setup)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shim = tmp.path().join("shim");
    std::fs::create_dir(&shim).unwrap();
    std::fs::write(shim.join("sudo"), SUDO_SHIM).unwrap();
    std::fs::set_permissions(
        shim.join("sudo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Upstream points apt at a separate security host; use the main mirror's -security
    // sibling, the mirror being debootstrap's own default (read from its script).
    let debootstrap = std::fs::read_to_string("/usr/sbin/debootstrap").unwrap();
    let mirror = debootstrap
        .lines()
        .find_map(|l| l.strip_prefix("DEF_MIRROR=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("debootstrap names its default mirror");
    let security = format!("{}/debian-security", &mirror[..mirror.rfind('/').unwrap()]);
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tmp.path().join("upstream");
    let before = loop_devices();
    built(
        dibkit()
            .args(["build", "--builtins"])
            .arg(&elements)
            // Uncompressed: the test binary's qcow2 writer is a debug build.
            .args(["debian-minimal", "vm", "-u", "-o"])
            .arg(&out)
            .env("TMPDIR", tmp.path())
            .env("PATH", path)
            .env("DIB_PYTHON_EXEC", &python)
            .env("DIB_RELEASE", "bookworm")
            .env("DIB_DEBIAN_SECURITY_MIRROR", security)
            .env("DIB_DEBOOTSTRAP_CACHE", "1"),
        &out,
    );
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert!(!log.contains("locales is not installed"), "{log}");
    assert_eq!(loop_devices(), before, "a loop device was left attached");
    assert_nothing_left(tmp.path());
    assert_boots(&out.with_extension("qcow2"), &[]);
}

#[path = "e2e/images.rs"]
mod images;
#[path = "e2e/local_image.rs"]
mod local_image;
#[path = "e2e/simple_init.rs"]
mod simple_init;
