//! `dibkit extract-image` as the local-image element's hooks call it, without privileges
//! (bad arguments, a tree served from the cache), and the element's environment file turning
//! an os-release into DISTRO_NAME and DIB_RELEASE. Extraction itself (loop devices, mounts)
//! is in the e2e tests (`tests/e2e/local_image.rs`).

use std::fs;
use std::path::Path;

use sha2::Digest;

use crate::common::{dibkit, root};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_missing_image_is_a_usage_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.qcow2");
    let out = dibkit()
        .args(["extract-image", "--os-release", "--image"])
        .arg(&missing)
        .env("DIB_IMAGE_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}: No such file or directory (os error 2)\n  help: DIB_LOCAL_IMAGE (--image) must name a qcow2 or raw disk image\n",
            missing.display()
        )
    );
    assert!(!tmp.path().join("cache").exists());
}

#[test]
fn a_compressed_download_is_refused_with_the_command_to_unpack_it() {
    let tmp = tempfile::tempdir().unwrap();
    let xz = tmp.path().join("rhel-9.4-x86_64-kvm.qcow2.xz");
    let mut bytes = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    bytes.extend_from_slice(&[0; 64]);
    fs::write(&xz, bytes).unwrap();
    let out = dibkit()
        .args(["extract-image", "--os-release", "--image"])
        .arg(&xz)
        .env("DIB_IMAGE_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {0}: compressed with xz, not a disk image\n  help: uncompress it first (`unxz -k {0}`) and set DIB_LOCAL_IMAGE to the result\n",
            xz.display()
        )
    );
}

#[test]
fn root_or_os_release_one_of_them() {
    for args in [
        &["extract-image", "--image", "x"][..],
        &[
            "extract-image",
            "--image",
            "x",
            "--root",
            "r",
            "--os-release",
        ][..],
    ] {
        let out = dibkit().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("Usage: dibkit extract-image"));
    }
    // Internal: not in the command list.
    let help = dibkit().arg("--help").output().unwrap();
    assert!(!text(&help.stdout).contains("extract-image"));
}

/// A cache entry for the image's content hash serves both calls: no loop device, no mount,
/// so it works unprivileged; a renamed copy of the same image hits the same entry.
#[test]
fn a_cached_tree_is_unpacked_and_its_os_release_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("disk.raw");
    fs::write(&image, b"not really a disk, but its hash is what counts").unwrap();
    let hash =
        sha2::Sha256::digest(fs::read(&image).unwrap())
            .iter()
            .fold(String::new(), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            });
    let cache = tmp.path().join("cache");
    let entry = cache.join("extract-image").join(&hash);
    fs::create_dir_all(&entry).unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/hostname"), "cached\n").unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["--use-compress-program", "zstd -q", "-cf"])
        .arg(entry.join("tree.tar.zst"))
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    fs::write(
        entry.join("os-release"),
        "ID=debian\nVERSION_CODENAME=trixie\n",
    )
    .unwrap();

    let copy = tmp.path().join("renamed.img");
    fs::copy(&image, &copy).unwrap();
    let out = dibkit()
        .args(["extract-image", "--os-release", "--image"])
        .arg(&copy)
        .env("DIB_IMAGE_CACHE", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ID=debian\nVERSION_CODENAME=trixie\n");
    assert!(
        text(&out.stderr).contains("hashing"),
        "{}",
        text(&out.stderr)
    );
    // The hash is remembered for the unchanged file.
    let again = dibkit()
        .args(["extract-image", "--image"])
        .arg(&copy)
        .arg("--root")
        .arg(tmp.path().join("root"))
        .env("DIB_IMAGE_CACHE", &cache)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        !text(&again.stderr).contains("hashing"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("root/etc/hostname")).unwrap(),
        "cached\n"
    );

    // An image without an os-release: refused for --os-release, with what to do instead.
    fs::remove_file(entry.join("os-release")).unwrap();
    let out = dibkit()
        .args(["extract-image", "--os-release", "--image"])
        .arg(&image)
        .env("DIB_IMAGE_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).ends_with(&format!(
            "error: {}: the image has no /etc/os-release or /usr/lib/os-release\n  help: set DISTRO_NAME and DIB_RELEASE for it\n",
            image.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

/// Sources the element's environment file on the host side, with a `DIBKIT` that prints
/// `os_release` for `--os-release` (and records that it was called); returns the exit
/// status, what the file exported, and stderr.
fn source_env(dir: &Path, os_release: &str, preset: &str) -> (i32, String, String) {
    let fake = dir.join("dibkit");
    fs::write(dir.join("os-release"), os_release).unwrap();
    fs::write(
        &fake,
        format!(
            "#!/bin/bash\necho called >> {calls}\n[ \"$1 $2 $4\" = \"extract-image --image --os-release\" ] || exit 9\ncat {os}\n",
            calls = dir.join("calls").display(),
            os = dir.join("os-release").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env_file = root().join("elements/local-image/environment.d/05-local-image.bash");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -eu -o pipefail\n{preset}\nsource \"$0\"\necho \"$DISTRO_NAME|$DIB_RELEASE|$EFI_BOOT_DIR\""
        ))
        .arg(&env_file)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DIBKIT", &fake)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout).trim().to_owned(),
        text(&out.stderr),
    )
}

#[test]
fn distro_name_and_release_come_from_the_os_release() {
    let tmp = tempfile::tempdir().unwrap();
    let image = "export DIB_LOCAL_IMAGE=/images/x.qcow2";
    for (os_release, want) in [
        (
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
            "debian|bookworm|EFI/debian",
        ),
        (
            "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\n",
            "centos|9-stream|EFI/centos",
        ),
        (
            "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.4\"\n",
            "rhel|9|EFI/rhel",
        ),
        (
            "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=40\n",
            "fedora|40|EFI/fedora",
        ),
        (
            "ID=ubuntu\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\n",
            "ubuntu|noble|EFI/ubuntu",
        ),
    ] {
        let (code, out, err) = source_env(tmp.path(), os_release, image);
        assert_eq!((code, out.as_str()), (0, want), "{err}");
    }
    // Set by the user: kept, and the image is not read at all.
    fs::remove_file(tmp.path().join("calls")).unwrap();
    let (code, out, err) = source_env(
        tmp.path(),
        "ID=debian\n",
        "export DISTRO_NAME=debian DIB_RELEASE=trixie",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "debian|trixie|EFI/debian"),
        "{err}"
    );
    assert!(!tmp.path().join("calls").exists());
    // Only the release set: the name still comes from the image.
    let (code, out, _) = source_env(
        tmp.path(),
        "ID=fedora\nVERSION_ID=41\n",
        &format!("{image}\nexport DIB_RELEASE=39"),
    );
    assert_eq!((code, out.as_str()), (0, "fedora|39|EFI/fedora"));

    let (code, _, err) = source_env(tmp.path(), "NAME=Something\n", image);
    assert_eq!(code, 1);
    assert!(
        err.contains("local-image: the os-release of /images/x.qcow2 has no ID; set DISTRO_NAME and DIB_RELEASE"),
        "{err}"
    );
    let (code, _, err) = source_env(tmp.path(), "ID=debian\n", "");
    assert_eq!(code, 1);
    assert!(
        err.contains("local-image: set DIB_LOCAL_IMAGE to the qcow2 or raw image to start from"),
        "{err}"
    );
}

/// `local-image` is an operating-system element: with `vm` and the example jenkins-slave it
/// resolves from the embedded library without debian-minimal, and its install-packages is
/// the one in the build.
#[test]
fn local_image_resolves_as_the_operating_system() {
    let out = dibkit()
        .args([
            "order",
            "--format",
            "json",
            "local-image",
            "vm",
            "jenkins-slave",
        ])
        .env("ELEMENTS_PATH", root().join("examples/elements"))
        .current_dir("/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = plan["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for want in [
        "local-image",
        "package-installs",
        "sysprep",
        "install-bin",
        "jenkins-slave",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    for unwanted in ["debian-minimal", "dpkg", "debootstrap"] {
        assert!(!names.contains(&unwanted), "{unwanted} in {names:?}");
    }
    let root_d: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "root.d")
        .unwrap()["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(root_d, ["10-local-image"]);
}
