//! The debootstrap element's tree cache, run as a script (no root): a stand-in `debootstrap`
//! on PATH makes the tree, and stand-in prepare scripts record that they ran.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Setup {
    /// A hooks tree with debootstrap's script, dpkg's three scripts (no-ops) and two prepare
    /// scripts that append their names to `$TARGET_ROOT/prepared`.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/elements/debootstrap/root.d/10-debootstrap"
        );
        write(
            &dir.join("hooks/root.d/10-debootstrap"),
            &fs::read_to_string(script).unwrap(),
            0o755,
        );
        let setup = Setup { _tmp: tmp, dir };
        for name in [
            "20-dpkg-apt-config",
            "25-dpkg-block-daemons",
            "30-dpkg-shared-apt-cache",
        ] {
            setup.hook(name, "exit 0");
        }
        for name in ["55-os-sources", "60-os-base"] {
            setup.hook(
                name,
                "set -eu\necho \"${0##*/}\" >> \"$TARGET_ROOT/prepared\"",
            );
        }
        // debootstrap stand-in: no mirror is given, so its last argument is the target.
        write(
            &setup.dir.join("bin/debootstrap"),
            "#!/bin/bash\nset -eu\nargs=(\"$@\")\nroot=${args[-1]}\n\
             mkdir -p \"$root/etc\" \"$root/usr/sbin\" \"$root/var/cache/apt/archives\"\n\
             echo bootstrapped > \"$root/etc/debootstrapped\"\n",
            0o755,
        );
        setup
    }

    /// Writes the executable bash script `root.d/NAME` of the hooks tree.
    fn hook(&self, name: &str, body: &str) {
        write(
            &self.dir.join("hooks/root.d").join(name),
            &format!("#!/bin/bash\n{body}\n"),
            0o755,
        );
    }

    /// Runs 10-debootstrap into a fresh root, with a fresh build directory `<root>.build`;
    /// returns (root, stdout).
    fn run(&self, env: &[(&str, &str)]) -> (PathBuf, String) {
        let root = self
            .dir
            .join(format!("root{}", fs::read_dir(&self.dir).unwrap().count()));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(root.with_extension("build")).unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(self.dir.join("hooks/root.d/10-debootstrap"));
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &self.dir)
            .env("TARGET_ROOT", &root)
            .env("TMP_BUILD_DIR", root.with_extension("build"))
            .env("TMP_HOOKS_PATH", self.dir.join("hooks"))
            .env("DIB_IMAGE_CACHE", self.dir.join("cache"))
            .env("DISTRO_NAME", "debian")
            .env("DIB_RELEASE", "bookworm")
            .env("ARCH", "amd64")
            .env("DIB_DEBOOTSTRAP_PREFETCH", "0")
            .env("DIB_DEBOOTSTRAP_PREPARE", "55-os-sources 60-os-base")
            .env(
                "DIB_DEBOOTSTRAP_PREPARE_COMPATIBLE",
                "20-dpkg-apt-config 25-dpkg-block-daemons 30-dpkg-shared-apt-cache",
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (root, stdout)
    }

    fn tarballs(&self) -> usize {
        fs::read_dir(self.dir.join("cache/debootstrap"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tar.")
            })
            .count()
    }
}

/// A fresh tree is prepared (the prepare scripts run, in order, daemons blocked only while
/// they run), then cached; the next build unpacks it without running debootstrap or them.
#[test]
fn fresh_tree_is_prepared_then_cached_and_reused() {
    let s = Setup::new();
    let (root, out) = s.run(&[]);
    assert!(
        out.contains("preparing the tree with root.d/55-os-sources"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.join("prepared")).unwrap(),
        "55-os-sources\n60-os-base\n"
    );
    assert!(!root.join("usr/sbin/policy-rc.d").exists());
    assert_eq!(s.tarballs(), 1);
    // Outside the tree, for the scripts' second run: which of them have run on it.
    let listed = root.with_extension("build").join("debootstrap-prepared");
    assert_eq!(
        fs::read_to_string(&listed).unwrap(),
        "55-os-sources\n60-os-base\n"
    );

    fs::remove_file(s.dir.join("bin/debootstrap")).unwrap();
    let (root, out) = s.run(&[]);
    assert!(out.contains("unpacking cached tree"), "{out}");
    assert_eq!(
        fs::read_to_string(root.join("prepared")).unwrap(),
        "55-os-sources\n60-os-base\n",
        "the cached tree is the prepared one; the scripts did not run again here"
    );
    assert!(
        !root
            .with_extension("build")
            .join("debootstrap-prepared")
            .exists(),
        "nothing ran on this tree yet: the scripts must run in their turn"
    );
}

/// Another element's root.d script between debootstrap and the prepare scripts could change
/// what they do (an apt proxy, a pin): then the tree is cached as debootstrap made it, under
/// another key.
#[test]
fn a_foreign_root_d_script_in_between_turns_preparing_off() {
    let s = Setup::new();
    let (_, _) = s.run(&[]);
    s.hook("50-apt-proxy", "exit 0");
    let (root, out) = s.run(&[]);
    assert!(
        out.contains("root.d/50-apt-proxy runs before root.d/60-os-base; caching the tree as debootstrap made it, not prepared"),
        "{out}"
    );
    assert!(!root.join("prepared").exists());
    assert_eq!(s.tarballs(), 2);
    // A script sorting after the last prepare script does not matter.
    fs::remove_file(s.dir.join("hooks/root.d/50-apt-proxy")).unwrap();
    s.hook("70-later", "exit 0");
    let (_, out) = s.run(&[]);
    assert!(out.contains("unpacking cached tree"), "{out}");
}

/// The prepare scripts' contents and DIB_DEBOOTSTRAP_PREPARE_KEY are part of the key; without
/// a cache nothing is prepared.
#[test]
fn prepare_inputs_are_in_the_key() {
    let s = Setup::new();
    s.run(&[]);
    s.run(&[("DIB_DEBOOTSTRAP_PREPARE_KEY", "packages=a b")]);
    assert_eq!(s.tarballs(), 2);
    s.hook(
        "60-os-base",
        "set -eu\necho changed >> \"$TARGET_ROOT/prepared\"",
    );
    let (root, _) = s.run(&[]);
    assert_eq!(
        fs::read_to_string(root.join("prepared")).unwrap(),
        "55-os-sources\nchanged\n"
    );
    assert_eq!(s.tarballs(), 3);
    let (root, out) = s.run(&[("DIB_DEBOOTSTRAP_CACHE", "0")]);
    assert!(!out.contains("preparing"), "{out}");
    assert!(!root.join("prepared").exists());
}
