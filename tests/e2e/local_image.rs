//! `dibkit extract-image` and the `local-image` element: one full pair of builds (a qcow2
//! dibkit built, customised by a second build that boots), and extraction of small disks
//! made here (xfs root with a separate /boot and an ESP, a btrfs `root` subvolume, an LVM
//! physical volume, an interrupted extraction), which need no mirror.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{assert_boots, assert_nothing_left, built, dibkit, enabled};

/// Runs a bash script (`set -eu -o pipefail`) with `$1`... as `args`; panics with its
/// output when it fails.
fn sh(script: &str, args: &[&Path]) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -eu -o pipefail\n{script}"))
        .arg("sh")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "script failed: {}\n{}{}",
        script,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loop devices whose backing file is below `dir`.
fn loops_below(dir: &Path) -> Vec<String> {
    let out = Command::new("losetup").arg("-a").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_owned)
        .collect()
}

/// Mounts below `dir` (from this process's mountinfo).
fn mounts_below(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_owned)
        .collect()
}

/// No mount, no loop device, no work directory of the extraction is left.
fn assert_extraction_left_nothing(tmp: &Path, cache: &Path) {
    assert_eq!(mounts_below(tmp), Vec::<String>::new(), "mounts left");
    assert_eq!(loops_below(tmp), Vec::<String>::new(), "loop devices left");
    let work: Vec<String> = std::fs::read_dir(cache.join("extract-image"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".work-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(work.is_empty(), "work directories left: {work:?}");
}

/// `dibkit extract-image` with its own cache.
fn extract(cache: &Path, args: &[&std::ffi::OsStr]) -> Output {
    dibkit()
        .arg("extract-image")
        .args(args)
        .env("DIB_IMAGE_CACHE", cache)
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The cache's entries (directories named by a hash).
fn entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("extract-image"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().len() == 64)
                .collect()
        })
        .unwrap_or_default()
}

/// A qcow2 that dibkit built (`debian-minimal vm` and a marker element) is the
/// `DIB_LOCAL_IMAGE` of `local-image vm jenkins-slave`: DISTRO_NAME and DIB_RELEASE come from
/// its os-release, package-installs installs the example's packages with the image's apt,
/// and the result holds the first build's files and the jenkins user, came without package
/// lists as its base did, and boots. The output, extracted in turn, is what is checked.
#[test]
fn local_image_customises_a_dibkit_qcow2() {
    let Some(_serial) = enabled("local_image_customises_a_dibkit_qcow2") else {
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let elements = tmp.path().join("elements");
    sh(
        r#"mkdir -p "$1/base-marker/install.d"
cat > "$1/base-marker/install.d/50-base-marker" <<'EOF'
#!/bin/bash
set -eu
echo "made by the first build" > /etc/dibkit-base-marker
EOF
chmod +x "$1/base-marker/install.d/50-base-marker""#,
        &[&elements],
    );
    let base = tmp.path().join("base");
    built(
        dibkit()
            // Uncompressed: the test binary's qcow2 writer is a debug build.
            .args(["build", "debian-minimal", "vm", "base-marker", "-u", "-o"])
            .arg(&base)
            .env("ELEMENTS_PATH", &elements)
            .env("TMPDIR", tmp.path()),
        &base,
    );
    let base_qcow2 = base.with_extension("qcow2");
    eprintln!("base image built after {:?}", started.elapsed());

    let key = tmp.path().join("jenkins.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJenkinsTestKeyOnly jenkins@test\n",
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("worker");
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/elements");
    built(
        dibkit()
            .args(["build", "local-image", "vm", "jenkins-slave", "-u", "-o"])
            .arg(&out)
            .env("ELEMENTS_PATH", &examples)
            .env("TMPDIR", tmp.path())
            .env("DIB_IMAGE_CACHE", &cache)
            .env("DIB_LOCAL_IMAGE", &base_qcow2)
            .env("JENKINS_PUBLIC_SSH_KEY_PATH", &key),
        &out,
    );
    eprintln!("local-image build done after {:?}", started.elapsed());
    assert_nothing_left(tmp.path());
    assert_extraction_left_nothing(tmp.path(), &cache);
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert!(
        log.contains(&format!(
            "local-image: debian bookworm tree from {}",
            base_qcow2.display()
        )),
        "{log}"
    );
    // Extracted once, in the first phase; every later phase found it cached.
    assert_eq!(log.matches("extract-image: packing the tree").count(), 1);
    let layout = std::fs::read_to_string(entries(&cache)[0].join("layout")).unwrap();
    assert!(layout.starts_with("/ partition 1 ext4 ro\n"), "{layout}");

    // The output, extracted with dibkit itself.
    let image = out.with_extension("qcow2");
    let tree = tmp.path().join("tree");
    let check_cache = tmp.path().join("check-cache");
    let r = extract(
        &check_cache,
        &[
            "--image".as_ref(),
            image.as_os_str(),
            "--root".as_ref(),
            tree.as_os_str(),
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    let read = |p: &str| std::fs::read_to_string(tree.join(p)).unwrap_or_default();
    assert_eq!(read("etc/dibkit-base-marker"), "made by the first build\n");
    assert!(read("etc/passwd").contains("\njenkins:"));
    assert!(read("home/jenkins/.ssh/authorized_keys").contains("jenkins@test"));
    for bin in ["usr/bin/git", "usr/bin/curl", "usr/bin/gcc", "usr/bin/java"] {
        assert!(
            tree.join(bin).symlink_metadata().is_ok(),
            "{bin} missing from the image"
        );
    }
    let lists: Vec<String> = std::fs::read_dir(tree.join("var/lib/apt/lists"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("_Packages"))
        .collect();
    assert!(lists.is_empty(), "package lists left: {lists:?}");
    let os = extract(
        &check_cache,
        &[
            "--image".as_ref(),
            image.as_os_str(),
            "--os-release".as_ref(),
        ],
    );
    assert!(text(&os.stdout).contains("VERSION_CODENAME=bookworm"));
    assert!(
        text(&os.stderr).contains("cached tree"),
        "{}",
        text(&os.stderr)
    );
    assert_extraction_left_nothing(tmp.path(), &check_cache);
    assert_boots(&image, &[]);
    eprintln!("booted after {:?}", started.elapsed());
}

/// A GPT disk like the Red Hat family's cloud images: an ESP (FAT, filled with mtools), a
/// `/boot` (ext4, label `boot`) and an xfs root, as qcow2; and an MBR disk with swap and a
/// btrfs root in a `root` subvolume, as raw. Each extracts with every file in its place,
/// owners and modes kept, the image unchanged, and a second call is served from the cache.
#[test]
fn extract_xfs_root_with_boot_and_esp_and_btrfs_subvolume() {
    let Some(_serial) = enabled("extract_xfs_root_with_boot_and_esp_and_btrfs_subvolume") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("el.raw");
    sh(
        r#"truncate -s 720M "$1"
printf 'label: gpt\nsize=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nsize=64MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$1"
dev=$(losetup --show -f "$1")
mnt=$(mktemp -d)
cleanup() { umount -R "$mnt" 2>/dev/null || true; partx -d "$dev" || true; losetup -d "$dev"; rmdir "$mnt"; }
trap cleanup EXIT
partx -a "$dev"
mkfs.vfat "${dev}p1" >/dev/null
mkfs.ext4 -q -L boot "${dev}p2"
mkfs.xfs -q -L root "${dev}p3"
mount "${dev}p3" "$mnt"
mkdir -p "$mnt/etc" "$mnt/usr/lib" "$mnt/boot" "$mnt/home/alice"
printf 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="9.4"\n' > "$mnt/usr/lib/os-release"
ln -s ../usr/lib/os-release "$mnt/etc/os-release"
echo secret > "$mnt/home/alice/notes"
chown 1234:99 "$mnt/home/alice/notes"
chmod 0640 "$mnt/home/alice/notes"
mount "${dev}p2" "$mnt/boot"
mkdir "$mnt/boot/efi" "$mnt/boot/loader"
echo kernel > "$mnt/boot/vmlinuz-6.0"
umount "$mnt/boot" "$mnt"
echo grub > "$mnt/BOOTX64.EFI"
export MTOOLS_SKIP_CHECK=1
mmd -i "${dev}p1" ::/EFI ::/EFI/BOOT
mcopy -i "${dev}p1" "$mnt/BOOTX64.EFI" ::/EFI/BOOT/
rm "$mnt/BOOTX64.EFI"
qemu-img convert -f raw -O qcow2 "$1" "${1%.raw}.qcow2""#,
        &[&raw],
    );
    let qcow2 = raw.with_extension("qcow2");
    let before = std::fs::read(&qcow2).unwrap();
    let cache = tmp.path().join("cache");
    let tree = tmp.path().join("el-tree");
    let r = extract(
        &cache,
        &[
            "--image".as_ref(),
            qcow2.as_os_str(),
            "--root".as_ref(),
            tree.as_os_str(),
        ],
    );
    let stderr = text(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    for line in [
        "/ partition 3 xfs nouuid,ro",
        "/boot partition 2 ext4 ro",
        "/boot/efi partition 1 vfat copied with mtools",
        "the image is Red Hat Enterprise Linux",
    ] {
        assert!(stderr.contains(line), "{line}: {stderr}");
    }
    let read = |p: &str| std::fs::read_to_string(tree.join(p)).unwrap_or_default();
    assert_eq!(read("boot/vmlinuz-6.0"), "kernel\n");
    assert_eq!(read("boot/efi/EFI/BOOT/BOOTX64.EFI"), "grub\n");
    assert!(tree.join("boot/loader").is_dir());
    assert_eq!(read("home/alice/notes"), "secret\n");
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(tree.join("home/alice/notes")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (1234, 99, 0o640)
        );
    }
    assert!(!tree.join("lost+found").exists() && !tree.join("boot/lost+found").exists());
    assert_eq!(
        std::fs::read(&qcow2).unwrap(),
        before,
        "the image was changed"
    );
    assert_extraction_left_nothing(tmp.path(), &cache);
    // Served from the cache: no loop device, no mount, not even as non-root.
    let again = extract(
        &cache,
        &[
            "--image".as_ref(),
            qcow2.as_os_str(),
            "--os-release".as_ref(),
        ],
    );
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.4\"\n"
    );
    assert!(
        !text(&again.stderr).contains("packing"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(entries(&cache).len(), 1);

    // btrfs: the root is the `root` subvolume, not the top level.
    let btrfs = tmp.path().join("fedora.raw");
    sh(
        r#"truncate -s 400M "$1"
printf 'label: dos\nsize=16MiB, type=82\ntype=83\n' | sfdisk -q "$1"
dev=$(losetup --show -f "$1")
mnt=$(mktemp -d)
cleanup() { umount "$mnt" 2>/dev/null || true; partx -d "$dev" || true; losetup -d "$dev"; rmdir "$mnt"; }
trap cleanup EXIT
partx -a "$dev"
mkswap -q "${dev}p1"
mkfs.btrfs -q -L fedora "${dev}p2"
mount "${dev}p2" "$mnt"
btrfs -q subvolume create "$mnt/root"
btrfs -q subvolume create "$mnt/home"
echo top > "$mnt/top-level-only"
mkdir -p "$mnt/root/etc"
printf 'ID=fedora\nVERSION_ID=40\n' > "$mnt/root/etc/os-release"
echo in-root > "$mnt/root/marker"
umount "$mnt""#,
        &[&btrfs],
    );
    let tree = tmp.path().join("fedora-tree");
    let r = extract(
        &cache,
        &[
            "--image".as_ref(),
            btrfs.as_os_str(),
            "--root".as_ref(),
            tree.as_os_str(),
        ],
    );
    let stderr = text(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stderr.contains("/ partition 2 btrfs ro,subvol=root"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("marker")).unwrap(),
        "in-root\n"
    );
    assert!(!tree.join("top-level-only").exists());
    assert!(!tree.join("root/marker").exists());
    assert_extraction_left_nothing(tmp.path(), &cache);
    assert_eq!(entries(&cache).len(), 2);
}

/// An image with an LVM physical volume is refused in one line naming the image and the
/// partition, with a hint; nothing is cached, mounted or attached. No activation happens:
/// the signature is enough.
#[test]
fn lvm_image_is_refused() {
    let Some(_serial) = enabled("lvm_image_is_refused") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("rhel-lvm.raw");
    sh(
        r#"truncate -s 200M "$1"
printf 'label: gpt\nsize=64MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\ntype=E6D6D379-F507-44C2-A23C-238F2A3DF928\n' | sfdisk -q "$1"
dev=$(losetup --show -f "$1")
cleanup() { partx -d "$dev" || true; losetup -d "$dev"; }
trap cleanup EXIT
partx -a "$dev"
mkfs.ext4 -q -L boot "${dev}p1"
pvcreate -qq "${dev}p2" </dev/null 9>&- 2>/dev/null"#,
        &[&raw],
    );
    let cache = tmp.path().join("cache");
    let r = extract(
        &cache,
        &[
            "--image".as_ref(),
            raw.as_os_str(),
            "--root".as_ref(),
            tmp.path().join("t").as_os_str(),
        ],
    );
    let stderr = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("extract-image: "))
        .collect();
    assert_eq!(
        lines,
        [
            format!(
                "error: {}: partition 2 is an LVM physical volume (`LVM2_member`); dibkit reads images without device-mapper and cannot extract it",
                raw.display()
            )
            .as_str(),
            "  help: start from an image whose root is a plain partition (a distribution's cloud image is), or on a machine with device-mapper activate the volume group and save the root logical volume as a raw image (`dd`), which dibkit reads",
        ]
    );
    assert!(entries(&cache).is_empty());
    assert!(!tmp.path().join("t").exists());
    assert_extraction_left_nothing(tmp.path(), &cache);
}

/// SIGTERM, then SIGINT, while the tree is being packed (the image attached and mounted):
/// exit 130, the packer stopped, nothing mounted or attached, no work directory, nothing
/// cached. After a SIGKILL, the next extraction cleans up what the killed one left.
#[test]
fn interrupted_extraction_leaves_nothing() {
    let Some(_serial) = enabled("interrupted_extraction_leaves_nothing") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("big.raw");
    // Incompressible data, so packing takes long enough to be interrupted.
    sh(
        r#"truncate -s 700M "$1"
printf 'label: dos\ntype=83\n' | sfdisk -q "$1"
dev=$(losetup --show -f "$1")
mnt=$(mktemp -d)
cleanup() { umount "$mnt" 2>/dev/null || true; partx -d "$dev" || true; losetup -d "$dev"; rmdir "$mnt"; }
trap cleanup EXIT
partx -a "$dev"
mkfs.ext4 -q "${dev}p1"
mount "${dev}p1" "$mnt"
mkdir "$mnt/etc"
echo ID=debian > "$mnt/etc/os-release"
for i in 1 2; do head -c 250M /dev/urandom > "$mnt/data$i"; done
umount "$mnt""#,
        &[&raw],
    );
    let cache = tmp.path().join("cache");
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let mut child = dibkit()
            .arg("extract-image")
            .arg("--image")
            .arg(&raw)
            .arg("--root")
            .arg(tmp.path().join("tree"))
            .env("DIB_IMAGE_CACHE", &cache)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while mounts_below(&cache).is_empty() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{signal}: extract-image ended before it mounted the image"
            );
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{signal}: never mounted"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!loops_below(tmp.path()).is_empty());
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "{signal}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("error: interrupted"),
            "{}",
            text(&out.stderr)
        );
        assert_extraction_left_nothing(tmp.path(), &cache);
        assert!(
            entries(&cache).is_empty(),
            "{signal}: a cache entry was published"
        );
        let ps = Command::new("pgrep")
            .args(["-f", &format!("tar -C {}", cache.display())])
            .output()
            .unwrap();
        assert!(ps.stdout.is_empty(), "{signal}: tar survived");
        assert!(!tmp.path().join("tree").exists());
    }
    // SIGKILL leaves the mounts and the loop device; the next extraction releases them,
    // removes the dead one's work directory, and does the work itself.
    let mut child = dibkit()
        .arg("extract-image")
        .arg("--image")
        .arg(&raw)
        .arg("--os-release")
        .env("DIB_IMAGE_CACHE", &cache)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while mounts_below(&cache).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before it mounted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "never mounted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!mounts_below(&cache).is_empty());
    let out = extract(
        &cache,
        &["--image".as_ref(), raw.as_os_str(), "--os-release".as_ref()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ID=debian\n");
    assert_extraction_left_nothing(tmp.path(), &cache);
    assert_eq!(entries(&cache).len(), 1);
}
