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
                "set -eu\necho \"${0##*/}\" >> \"$TARGET_ROOT/prepared\"\n\
                 echo \"${INITRD-unset}\" > \"$TARGET_ROOT/initrd-setting\"",
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
        let (root, mut cmd) = self.command(env);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (root, stdout)
    }

    /// The command [`Setup::run`] runs, and its root (`tag` tells roots of builds started
    /// at once apart).
    fn command_tagged(&self, env: &[(&str, &str)], tag: &str) -> (PathBuf, Command) {
        let root = self.dir.join(format!(
            "root{tag}{}",
            fs::read_dir(&self.dir).unwrap().count()
        ));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(root.with_extension("build")).unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(self.dir.join("hooks/root.d/10-debootstrap"));
        cmd.current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            // The element's logic is dibkit's (`dibkit debootstrap`, `dibkit run-hook`).
            .env("DIBKIT", env!("CARGO_BIN_EXE_dibkit"))
            .env("HOME", &self.dir)
            .env("TARGET_ROOT", &root)
            .env("TMP_BUILD_DIR", root.with_extension("build"))
            .env("TMP_HOOKS_PATH", self.dir.join("hooks"))
            .env("DIB_IMAGE_CACHE", self.dir.join("cache"))
            .env("DISTRO_NAME", "debian")
            .env("DIB_RELEASE", "bookworm")
            .env("ARCH", "amd64")
            .env("DIB_DEBOOTSTRAP_LOCAL_INDEX", "0")
            .env("DIB_DEBOOTSTRAP_PREPARE", "55-os-sources 60-os-base")
            .env(
                "DIB_DEBOOTSTRAP_PREPARE_COMPATIBLE",
                "20-dpkg-apt-config 25-dpkg-block-daemons 30-dpkg-shared-apt-cache",
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        (root, cmd)
    }

    fn command(&self, env: &[(&str, &str)]) -> (PathBuf, Command) {
        self.command_tagged(env, "")
    }

    /// The debootstrap stand-in, made slow (`seconds`) and counting its runs in `runs`,
    /// optionally writing `mib` MiB of incompressible data into the tree.
    fn slow_debootstrap(&self, seconds: u32, mib: u32) {
        write(
            &self.dir.join("bin/debootstrap"),
            &format!(
                "#!/bin/bash\nset -eu\nargs=(\"$@\")\nroot=${{args[-1]}}\n\
                 echo run >> \"{runs}\"\nsleep {seconds}\n\
                 mkdir -p \"$root/etc\" \"$root/usr/sbin\" \"$root/var/cache/apt/archives\"\n\
                 echo bootstrapped > \"$root/etc/debootstrapped\"\n\
                 head -c {mib}M /dev/urandom > \"$root/etc/bulk\"\n",
                runs = self.dir.join("runs").display()
            ),
            0o755,
        );
    }

    fn debootstrap_runs(&self) -> usize {
        fs::read_to_string(self.dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// What is in the cache's temporaries directory.
    fn temporaries(&self) -> Vec<PathBuf> {
        fs::read_dir(self.dir.join("cache/debootstrap/.tmp"))
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
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
    // initramfs-tools' kernel hook makes no initramfs while they run (debootstrap makes it).
    assert_eq!(
        fs::read_to_string(root.join("initrd-setting")).unwrap(),
        "No\n"
    );
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

/// A caller's INITRD is theirs: the prepare scripts see it unchanged.
#[test]
fn a_callers_initrd_setting_is_kept() {
    let s = Setup::new();
    let (root, _) = s.run(&[("INITRD", "Yes")]);
    assert_eq!(
        fs::read_to_string(root.join("initrd-setting")).unwrap(),
        "Yes\n"
    );
}

/// debootstrap stand-in for the local index: logs its arguments to `$DEBOOTSTRAP_CALLS`; with
/// `--print-debs` keeps the index it was given (`$DEBOOTSTRAP_CALLS.index`) and names three
/// packages; otherwise makes a tree with lists for its mirror and the names in its cache, or
/// fails when its mirror contains `$FAIL_ON`.
const INDEX_STAND_IN: &str = r#"#!/bin/bash
set -eu
echo "$*" >> "$DEBOOTSTRAP_CALLS"
pos=()
cache=
for a in "$@"; do
    case $a in
        --cache-dir=*) cache=${a#*=} ;;
        --*) ;;
        *) pos+=("$a") ;;
    esac
done
release=${pos[0]} root=${pos[1]} mirror=${pos[2]:-}
if [[ " $* " == *" --print-debs "* ]]; then
    cp "${mirror#file://}/dists/$release/main/binary-amd64/Packages" "$DEBOOTSTRAP_CALLS.index"
    echo "base-files libc6 curl"
    exit 0
fi
if [ -n "${FAIL_ON:-}" ] && [[ $mirror == *"$FAIL_ON"* ]]; then
    exit 1
fi
mkdir -p "$root/etc/apt" "$root/usr/sbin" "$root/var/lib/apt/lists" "$root/var/cache/apt/archives"
name=$(printf '%s' "$mirror" | sed -e 's,^[^:]*://,,' -e 's,/,_,g')
echo "$mirror" > "$root/var/lib/apt/lists/${name}_dists_${release}_Release"
: > "$root/etc/apt/sources.list"
ls "$cache" > "$root/cached-debs"
"#;

/// The Release file of the test mirror, as signed inside its InRelease.
const RELEASE_HEAD: &str =
    "Origin: Debian\nSuite: oldstable\nCodename: bookworm\nComponents: main\nSHA256:\n";

impl Setup {
    /// A file mirror in `mirror/` from tests/fixtures/debootstrap-mirror: its Packages index
    /// (plain and gzip), an InRelease with a stand-in signature, and every pool file; the
    /// index stand-in as debootstrap. Returns the environment for a build from it.
    fn mirror(&self) -> Vec<(String, String)> {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/debootstrap-mirror"
        );
        let mirror = self.dir.join("mirror");
        let status = Command::new("bash")
            .args(["-euc", r#"
                m=$1 f=$2 head=$3
                d=$m/dists/bookworm
                mkdir -p "$d/main/binary-amd64"
                cp "$f/Packages" "$d/main/binary-amd64/Packages"
                gzip -9n -c "$f/Packages" > "$d/main/binary-amd64/Packages.gz"
                sed -n 's/^Filename: //p' "$f/Packages" | while read -r file; do
                    mkdir -p "$m/${file%/*}"
                    echo "${file##*/}" > "$m/$file"
                done
                {
                    printf "$head"
                    for p in main/binary-amd64/Packages main/binary-amd64/Packages.gz; do
                        printf ' %s %s %s\n' "$(sha256sum < "$d/$p" | cut -d' ' -f1)" \
                            "$(stat -c %s "$d/$p")" "$p"
                    done
                } > "$m/release"
                {
                    printf -- '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n'
                    cat "$m/release"
                    printf -- '-----BEGIN PGP SIGNATURE-----\n\nstand-in\n-----END PGP SIGNATURE-----\n'
                } > "$d/InRelease"
            "#, "mirror"])
            .arg(&mirror)
            .arg(fixture)
            .arg(RELEASE_HEAD)
            .status()
            .unwrap();
        assert!(status.success());
        write(&self.dir.join("bin/debootstrap"), INDEX_STAND_IN, 0o755);
        [
            (
                "DIB_DISTRIBUTION_MIRROR",
                format!("file://{}", mirror.display()),
            ),
            ("DEBOOTSTRAP_DIR", fixture.to_string()),
            (
                "DEBOOTSTRAP_CALLS",
                self.dir.join("calls").display().to_string(),
            ),
            ("DIB_DEBOOTSTRAP_LOCAL_INDEX", "1".to_string()),
            ("DIB_DEBOOTSTRAP_CACHE", "0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn run_with(&self, env: &[(String, String)], more: &[(&str, &str)]) -> (PathBuf, String) {
        let mut all: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(more);
        self.run(&all)
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// debootstrap resolves from a local copy of the index cut down to what it can reach (every
/// alternative, the extra packages, the names in its release script, nothing else); the
/// packages it names are fetched into its cache first, under its names; the tree then gets the
/// sources.list and index files debootstrap leaves from the real mirror, and no trace of the
/// local one.
#[test]
fn debootstrap_resolves_from_a_local_cut_down_index() {
    let s = Setup::new();
    let env = s.mirror();
    let (root, out) = s.run_with(
        &env,
        &[
            ("DIB_DEBOOTSTRAP_EXTRA_ARGS", "--no-check-gpg"),
            ("DIB_DEBOOTSTRAP_INCLUDE", "curl"),
        ],
    );
    assert!(
        out.contains("resolving from a local copy of the index, cut down to 9 packages"),
        "{out}"
    );
    let calls = s.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let local = format!(
        "file://{}/debootstrap.",
        root.with_extension("build").display()
    );
    assert!(
        calls[0].contains("--print-debs") && calls[0].contains(&local),
        "{calls:?}"
    );
    assert!(
        !calls[1].contains("--print-debs") && calls[1].contains(&local),
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| !c.contains("--keyring")), "{calls:?}");

    let index = fs::read_to_string(s.dir.join("calls.index")).unwrap();
    let mut kept: Vec<&str> = index
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        [
            "apt",
            "base-files",
            "curl",
            "gcc-12-base",
            "libapt-pkg6.0",
            "libc6",
            "libgcc-s1",
            "libgcc1",
            "usr-is-merged"
        ]
    );
    assert_eq!(
        fs::read_to_string(root.join("cached-debs")).unwrap(),
        "base-files_12.4_amd64.deb\ncurl_7.88_amd64.deb\nlibc6_1%3a2.36-9_amd64.deb\n"
    );

    // For a mirror other than http(s), debootstrap leaves sources.list empty.
    let mirror = s.dir.join("mirror");
    assert_eq!(
        fs::read_to_string(root.join("etc/apt/sources.list")).unwrap(),
        ""
    );
    let prefix = mirror.display().to_string().replace('/', "_") + "_dists_bookworm_";
    let lists = root.join("var/lib/apt/lists");
    let mut names: Vec<String> = fs::read_dir(&lists)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "InRelease",
            "Release",
            "Release.gpg",
            "main_binary-amd64_Packages"
        ]
        .map(|n| format!("{prefix}{n}"))
    );
    let release = fs::read_to_string(mirror.join("release")).unwrap();
    assert_eq!(
        fs::read_to_string(lists.join(format!("{prefix}Release"))).unwrap(),
        release.strip_suffix('\n').unwrap(),
        "Release is InRelease's signed text without its last newline, as debootstrap cuts it"
    );
    assert_eq!(
        fs::read_to_string(lists.join(format!("{prefix}Release.gpg"))).unwrap(),
        "-----BEGIN PGP SIGNATURE-----\n\nstand-in\n-----END PGP SIGNATURE-----\n"
    );
    assert_eq!(
        fs::read(lists.join(format!("{prefix}main_binary-amd64_Packages"))).unwrap(),
        fs::read(mirror.join("dists/bookworm/main/binary-amd64/Packages")).unwrap()
    );
    let leftovers: Vec<_> = fs::read_dir(root.with_extension("build"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An index whose signature does not check out, or that does not match its Release file, is
/// not used: debootstrap then reads the mirror itself, with the keyring. A failed run from the
/// local index is retried at once from the mirror.
#[test]
fn the_local_index_falls_back_to_the_mirror() {
    let s = Setup::new();
    let env = s.mirror();
    let mirror = format!("file://{}", s.dir.join("mirror").display());
    let bogus = s.dir.join("bogus.gpg");
    fs::write(&bogus, "not a keyring").unwrap();
    let (_, out) = s.run_with(&env, &[("DIB_APT_KEYRING", bogus.to_str().unwrap())]);
    assert!(
        out.contains("no local index; debootstrap reads the mirror's own"),
        "{out}"
    );
    let calls = s.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains(&format!("--keyring={}", bogus.display()))
            && calls[0].ends_with(&format!(" {mirror}")),
        "{calls:?}"
    );

    fs::remove_file(s.dir.join("calls")).unwrap();
    fs::write(
        s.dir
            .join("mirror/dists/bookworm/main/binary-amd64/Packages.gz"),
        "corrupt",
    )
    .unwrap();
    let (_, out) = s.run_with(&env, &[("DIB_DEBOOTSTRAP_EXTRA_ARGS", "--no-check-gpg")]);
    assert!(out.contains("no local index"), "{out}");
    assert_eq!(s.calls().len(), 1);

    fs::remove_file(s.dir.join("calls")).unwrap();
    let env = s.mirror();
    let started = std::time::Instant::now();
    let (root, out) = s.run_with(
        &env,
        &[
            ("DIB_DEBOOTSTRAP_EXTRA_ARGS", "--no-check-gpg"),
            ("FAIL_ON", "/debootstrap."),
        ],
    );
    assert!(root.join("cached-debs").exists());
    let calls = s.calls();
    assert!(out.contains("resolving from a local copy"), "{out}");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[2].ends_with(&format!(" {mirror}")), "{calls:?}");
    assert!(
        started.elapsed().as_secs() < 10,
        "no pause before trying the mirror"
    );
}

/// The prepare scripts run through `dibkit run-hook`, which records each run with its caller
/// in the phase's status file; a tree from the cache records them as skipped, and why.
#[test]
fn prepare_runs_are_recorded_with_their_caller() {
    let s = Setup::new();
    let status = s.dir.join("status-root.d");
    let status_env = status.display().to_string();
    s.run(&[("DIBKIT_STATUS_FILE", &status_env)]);
    let lines: Vec<Vec<String>> = fs::read_to_string(&status)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let shape: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l[0].as_str(), l[1].as_str(), l[2].as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("call", "root.d/10-debootstrap", "root.d/55-os-sources"),
            ("called", "root.d/10-debootstrap", "root.d/55-os-sources"),
            ("call", "root.d/10-debootstrap", "root.d/60-os-base"),
            ("called", "root.d/10-debootstrap", "root.d/60-os-base"),
        ]
    );
    assert_eq!(lines[1][3], "0", "exit status");

    fs::remove_file(&status).unwrap();
    s.run(&[("DIBKIT_STATUS_FILE", &status_env)]);
    assert_eq!(
        fs::read_to_string(&status).unwrap(),
        "skip\troot.d/10-debootstrap\troot.d/55-os-sources\tthe tree came prepared from the cache\n\
         skip\troot.d/10-debootstrap\troot.d/60-os-base\tthe tree came prepared from the cache\n"
    );
}

/// Two builds that need the same tree at once make it once: the second waits on the
/// tarball's lock while the first makes it, then unpacks it.
#[test]
fn parallel_builds_make_a_tree_once() {
    let s = Setup::new();
    s.slow_debootstrap(2, 0);
    let (root_a, mut a) = s.command_tagged(&[], "a");
    let (root_b, mut b) = s.command_tagged(&[], "b");
    let a = a.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b = b.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    assert_eq!(s.debootstrap_runs(), 1, "debootstrap ran once");
    let out_b = String::from_utf8_lossy(&b.stdout);
    assert!(out_b.contains("unpacking cached tree"), "{out_b}");
    for root in [&root_a, &root_b] {
        assert_eq!(
            fs::read_to_string(root.join("etc/debootstrapped")).unwrap(),
            "bootstrapped\n"
        );
    }
    assert_eq!(s.tarballs(), 1);
    assert!(s.temporaries().is_empty());
}

/// A build killed (SIGKILL) while it writes the tarball leaves no tarball: the next build
/// does not use what it wrote, makes the tree again, and the killed one's temporary goes.
#[test]
fn a_tarball_a_killed_build_was_writing_is_never_used() {
    use std::os::unix::process::CommandExt;
    let s = Setup::new();
    // Incompressible, so packing takes a moment to kill it in.
    s.slow_debootstrap(0, 300);
    let (_, mut cmd) = s.command(&[]);
    let mut child = cmd
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let writing = s
            .temporaries()
            .iter()
            .any(|t| fs::metadata(t).is_ok_and(|m| m.len() > 0));
        if writing {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before it wrote the tarball"
        );
        assert!(start.elapsed().as_secs() < 120, "never started writing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pgid = nix::unistd::Pid::from_raw(-i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // The killed pipeline's last processes may still be going for a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        s.tarballs(),
        0,
        "a half-written tarball under the entry's name"
    );
    assert_eq!(s.temporaries().len(), 1);

    s.slow_debootstrap(0, 1);
    let (root, out) = s.run(&[]);
    assert!(!out.contains("unpacking cached tree"), "{out}");
    assert_eq!(s.debootstrap_runs(), 2, "made again");
    assert!(root.join("etc/debootstrapped").exists());
    assert_eq!(s.tarballs(), 1);
    assert!(s.temporaries().is_empty(), "{:?}", s.temporaries());
    let (_, out) = s.run(&[]);
    assert!(out.contains("unpacking cached tree"), "{out}");
}
