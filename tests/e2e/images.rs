//! Many images on one machine and the engines that drive dib: an image file built with
//! `--jobs 2` against the same builds run one after the other; nodepool-builder 11 with
//! dibkit as its `dib-cmd` against a real ZooKeeper; a build killed with SIGKILL in its disk
//! stage, released by the next run; a tmpfs too small for the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use super::{assert_boots, assert_nothing_left, dibkit, enabled, fixtures, wait_for_pause};

fn image_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/elements")
}

/// Loop devices whose backing file is below `dir`.
fn loops_below(dir: &Path) -> Vec<String> {
    let out = Command::new("losetup").arg("-a").output().unwrap().stdout;
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_owned)
        .collect()
}

/// Mount points below `dir`.
fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// On drop (a failed assertion included), lazily unmounts everything below a directory and
/// detaches loop devices backed there, so removing the temporary directory never reaches
/// into the chroot's /proc, /sys or /dev of a killed build.
struct Unmounted(PathBuf);

impl Drop for Unmounted {
    fn drop(&mut self) {
        let mut mounts = mounts_below(&self.0);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            Command::new("umount").args(["-l", &m]).status().ok();
        }
        for l in loops_below(&self.0) {
            let dev = l.split(':').next().unwrap_or_default().to_owned();
            Command::new("losetup").args(["-d", &dev]).status().ok();
        }
    }
}

/// A tree as a map from path to what it is: type, mode, owner, and the target of a link or
/// the sha256 of a file's content. Timestamps are left out.
fn tree(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_file() {
                let mut hasher = sha2::Sha256::new();
                let mut file = std::fs::File::open(&path).unwrap();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = file.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                format!("file {:x}", hasher.finalize())
            } else {
                format!("special {:o} {}", meta.mode() & 0o170_000, meta.rdev())
            };
            out.insert(
                rel,
                format!(
                    "{what} {:o} {}:{}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }
    out
}

fn untar(tar: &Path, into: &Path) -> BTreeMap<String, String> {
    std::fs::create_dir_all(into).unwrap();
    let st = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success(), "extracting {}", tar.display());
    tree(into)
}

/// Files whose content differs between two builds of the same image however they are run,
/// each for a reason that is not the build's order: filesystem UUIDs chosen when the disk
/// image is made (fstab, grub.cfg, the initramfs that embeds them), logs and caches that hold
/// times, the random seeds and ids made at install time, and the manifests, which record the
/// image's name (`-o`: the two runs write to different names).
fn differs_by_nature(path: &str) -> bool {
    path.starts_with("etc/dib-manifests/")
        || path == "etc/fstab"
        || path.starts_with("boot/grub/")
        || path.starts_with("boot/initrd.img")
        || path.starts_with("var/log/")
        || path == "var/cache/ldconfig/aux-cache"
        || path.starts_with("var/cache/debconf/")
        || path.starts_with("var/lib/dpkg/")
        || path.starts_with("var/lib/apt/")
        || path.starts_with("var/lib/systemd/")
        || path == "etc/machine-id"
        || path.starts_with("etc/ssh/ssh_host_")
        || path.starts_with("var/cache/apt/")
        || path == "etc/shadow"
        || path == "etc/shadow-"
}

fn write_image_file(path: &Path, out: &Path, prefix: &str, cache: &Path) {
    let text = format!(
        "# two Debian images, sharing one image cache (qcow2 uncompressed: quicker to write)\n\
         - imagename: {o}/{prefix}-one\n\
         \x20 types: [qcow2, tar]\n\
         \x20 uncompressed: true\n\
         \x20 image-cache: {c}\n\
         \x20 elements: [debian-minimal, vm]\n\
         - imagename: {o}/{prefix}-two\n\
         \x20 types: [qcow2, tar]\n\
         \x20 uncompressed: true\n\
         \x20 image-cache: {c}\n\
         \x20 packages: [less]\n\
         \x20 elements: [debian-minimal]\n\
         - elements: [vm]\n",
        o = out.display(),
        c = cache.display()
    );
    std::fs::write(path, text).unwrap();
}

/// An image file with two Debian images built with `--jobs 2` from one cold cache: both
/// boot, and their root trees equal those of the same builds run one after the other
/// (apart from the files that differ between any two builds, `differs_by_nature`).
#[test]
fn image_file_jobs_2_equals_serial_and_boots() {
    let Some(_serial) = enabled("image_file_jobs_2_equals_serial_and_boots") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let file = tmp.path().join("parallel.yaml");
    write_image_file(&file, tmp.path(), "parallel", &cache);
    let start = Instant::now();
    let run = dibkit()
        .args(["build", "--jobs", "2", "--file"])
        .arg(&file)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    eprintln!(
        "two images with --jobs 2, cold cache: {:?}",
        start.elapsed()
    );
    // The summary table: one row per image, built, with its size and log.
    for name in ["parallel-one", "parallel-two"] {
        let row = stderr
            .lines()
            .find(|l| l.contains(&format!("/{name} ")))
            .unwrap_or_else(|| panic!("no summary row for {name}: {stderr}"));
        assert!(row.contains("built") && row.contains("MiB"), "{row}");
        assert!(row.contains(&format!("{name}.d/dibkit.log")), "{row}");
    }
    assert!(
        stderr.contains("2 at a time"),
        "the jobs line is missing: {stderr}"
    );
    assert_nothing_left(tmp.path());

    let serial = tmp.path().join("serial.yaml");
    write_image_file(&serial, tmp.path(), "serial", &cache);
    let start = Instant::now();
    let run = dibkit()
        .args(["build", "--jobs", "1", "--file"])
        .arg(&serial)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!(
        "the same two images one after the other, warm cache: {:?}",
        start.elapsed()
    );
    assert_nothing_left(tmp.path());

    for which in ["one", "two"] {
        let p = untar(
            &tmp.path().join(format!("parallel-{which}.tar")),
            &tmp.path().join(format!("tree-parallel-{which}")),
        );
        let s = untar(
            &tmp.path().join(format!("serial-{which}.tar")),
            &tmp.path().join(format!("tree-serial-{which}")),
        );
        let only_p: Vec<&String> = p.keys().filter(|k| !s.contains_key(*k)).collect();
        let only_s: Vec<&String> = s.keys().filter(|k| !p.contains_key(*k)).collect();
        let differ: Vec<&String> = p
            .iter()
            .filter(|(k, v)| s.get(*k).is_some_and(|w| w != *v) && !differs_by_nature(k))
            .map(|(k, _)| k)
            .collect();
        let unexplained_only: Vec<&&String> = only_p
            .iter()
            .chain(only_s.iter())
            .filter(|k| !differs_by_nature(k))
            .collect();
        assert!(
            differ.is_empty() && unexplained_only.is_empty(),
            "{which}: trees differ: changed {differ:?}; in one only {unexplained_only:?}"
        );
        // `two` has `less` from -p; the shared apt cache kept what it downloaded.
        if which == "two" {
            assert!(p.contains_key("usr/bin/less"));
        }
        std::fs::remove_dir_all(tmp.path().join(format!("tree-parallel-{which}"))).unwrap();
        std::fs::remove_dir_all(tmp.path().join(format!("tree-serial-{which}"))).unwrap();
    }
    let debs = std::fs::read_dir(cache.join("apt/debian"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("less_")
        })
        .count();
    assert_eq!(debs, 1, "the apt cache should hold less once");
    for which in ["one", "two"] {
        assert_boots(&tmp.path().join(format!("parallel-{which}.qcow2")), &[]);
    }
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, in `dir` (ca.pem,
/// server.pem with its key, client.crt, client.key): nodepool 11 talks to ZooKeeper over TLS
/// only.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let req = |key: &str, out: &str, cn: &str| {
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", out, "-subj", cn,
            ],
        );
    };
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=dibkit test CA",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    req("server.key", "server.csr", "/CN=localhost");
    req("client.key", "client.csr", "/CN=nodepool-builder");
    for (csr, crt, ext) in [
        ("server.csr", "server.crt", Some("san.ext")),
        ("client.csr", "client.crt", None),
    ] {
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            crt,
            "-days",
            "2",
        ];
        if let Some(e) = ext {
            args.extend(["-extfile", e]);
        }
        openssl(dir, &args);
    }
    let pem = [
        std::fs::read_to_string(dir.join("server.key")).unwrap(),
        std::fs::read_to_string(dir.join("server.crt")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("server.pem"), pem).unwrap();
}

/// Starts Debian's ZooKeeper on 127.0.0.1 with a configuration, certificates and data in
/// `dir`, and waits until it answers. Returns it and its TLS port (a plain port, for the
/// readiness check only, is on too).
fn zookeeper(dir: &Path) -> (Killed, u16) {
    let plain = free_port();
    let port = free_port();
    certificates(dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let cfg = dir.join("zoo.cfg");
    let d = dir.display();
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={d}/data\nclientPort={plain}\nclientPortAddress=127.0.0.1\n\
             secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={d}/server.pem\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={d}/ca.pem\nssl.trustStore.type=PEM\n\
             admin.enableServer=false\n4lw.commands.whitelist=srvr\n"
        ),
    )
    .unwrap();
    // Debian's zookeeper.jar names its other jars in its manifest, all but netty's codec,
    // which the TLS (Netty) connection factory needs.
    let child = Command::new("java")
        .args([
            "-cp",
            "/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar",
        ])
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(&cfg)
        .stdout(std::fs::File::create(dir.join("zk.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let zk = Killed(child);
    let start = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", plain)) {
            use std::io::Write;
            let mut answer = String::new();
            if s.write_all(b"srvr").is_ok()
                && s.read_to_string(&mut answer).is_ok()
                && answer.contains("Mode: standalone")
            {
                return (zk, port);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ZooKeeper did not start: {}",
            std::fs::read_to_string(dir.join("zk.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// nodepool 11.0.0's venv (tests/e2e/nodepool-setup makes it).
fn nodepool_venv() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/nodepool");
    if !venv.join("bin/nodepool-builder").is_file() {
        let st = Command::new(root.join("tests/e2e/nodepool-setup"))
            .status()
            .unwrap();
        assert!(st.success(), "tests/e2e/nodepool-setup failed");
    }
    venv
}

/// nodepool-builder 11.0.0 against a real ZooKeeper, with `dib-cmd` a `disk-image-create`
/// symlink to dibkit and a Debian diskimage with formats qcow2 and raw: the build reaches
/// `ready` in ZooKeeper, and the files are where nodepool looks for them (NAME-ID.qcow2 in
/// compat 0.10, .raw, each with the .md5 and .sha256 nodepool reads), with nothing else left
/// in images-dir but the NAME-ID.d directory nodepool deletes with them. TMPDIR comes from
/// nodepool's env-vars: the build directory is made there and it does not reach the chroot
/// (the tmpdir-check element, with ca-certificates' postinst).
#[test]
fn nodepool_builder_builds_with_dibkit() {
    let Some(_serial) = enabled("nodepool_builder_builds_with_dibkit") else {
        return;
    };
    let venv = nodepool_venv();
    let tmp = tempfile::tempdir().unwrap();
    let zk_dir = tmp.path().join("zk");
    let (_zk, port) = zookeeper(&zk_dir);
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let dic = bin.join("disk-image-create");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dibkit"), &dic).unwrap();
    let images = tmp.path().join("images");
    let logs = tmp.path().join("logs");
    let build_tmp = tmp.path().join("tmp");
    for d in [&images, &logs, &build_tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let config = tmp.path().join("nodepool.yaml");
    std::fs::write(
        &config,
        format!(
            "zookeeper-servers:\n  - host: 127.0.0.1\n    port: {port}\n\
             zookeeper-tls:\n  ca: {zk}/ca.pem\n  cert: {zk}/client.crt\n  key: {zk}/client.key\n\
             images-dir: {images}\n\
             build-log-dir: {logs}\n\
             elements-dir: {elements}\n\
             labels: []\n\
             providers: []\n\
             diskimages:\n\
             \x20 - name: debian\n\
             \x20   elements: [debian-minimal, vm, tmpdir-check]\n\
             \x20   release: bookworm\n\
             \x20   formats: [qcow2, raw]\n\
             \x20   dib-cmd: {dic}\n\
             \x20   build-timeout: 3600\n\
             \x20   env-vars:\n\
             \x20     TMPDIR: {tmpdir}\n",
            images = images.display(),
            logs = logs.display(),
            elements = image_fixtures().display(),
            dic = dic.display(),
            tmpdir = build_tmp.display(),
            zk = zk_dir.display(),
        ),
    )
    .unwrap();
    let start = Instant::now();
    let builder = Killed(
        Command::new(venv.join("bin/nodepool-builder"))
            .arg("-f")
            .arg("-c")
            .arg(&config)
            .args(["-p", &tmp.path().join("builder.pid").display().to_string()])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    venv.join("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .stdout(std::fs::File::create(tmp.path().join("builder.out")).unwrap())
            .stderr(std::fs::File::create(tmp.path().join("builder.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let build_log = || -> String {
        std::fs::read_dir(&logs)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    let listing = loop {
        let out = Command::new(venv.join("bin/nodepool"))
            .arg("-c")
            .arg(&config)
            .arg("dib-image-list")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("ready") {
            break text;
        }
        assert!(
            !text.contains("failed") && !build_log().contains("Exit code: 1"),
            "the build failed:\n{text}\n{}",
            build_log()
        );
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "no ready build after 30 minutes:\n{text}\nbuild log:\n{}\nbuilder:\n{}",
            build_log(),
            std::fs::read_to_string(tmp.path().join("builder.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(5));
    };
    eprintln!("nodepool build ready after {:?}", start.elapsed());
    drop(builder);
    let log = build_log();
    // nodepool's own command line, as nodepool 11 runs it.
    assert!(listing.contains("debian-"), "{listing}");
    assert!(log.contains("tmpdir-check: build directory"), "{log}");
    assert!(
        log.contains("tmpdir-check: no TMPDIR in the chroot"),
        "{log}"
    );
    // nodepool keeps its builder's id in images-dir too.
    let mut names: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "builder_id.txt")
        .collect();
    names.sort();
    let base = names
        .iter()
        .find_map(|n| n.strip_suffix(".qcow2"))
        .expect("a qcow2 in images-dir")
        .to_owned();
    let expected: Vec<String> = [
        ".d",
        ".qcow2",
        ".qcow2.md5",
        ".qcow2.sha256",
        ".raw",
        ".raw.md5",
        ".raw.sha256",
    ]
    .iter()
    .map(|s| format!("{base}{s}"))
    .collect();
    assert_eq!(
        names, expected,
        "images-dir holds exactly what nodepool reads and deletes"
    );
    for ext in ["qcow2", "raw"] {
        let image = images.join(format!("{base}.{ext}"));
        for (tool, file_ext, len) in [("md5sum", "md5", 32), ("sha256sum", "sha256", 64)] {
            let written =
                std::fs::read_to_string(images.join(format!("{base}.{ext}.{file_ext}"))).unwrap();
            let actual =
                String::from_utf8(Command::new(tool).arg(&image).output().unwrap().stdout).unwrap();
            // nodepool reads the first 32 (md5) or 64 (sha256) characters.
            assert_eq!(written[..len], actual[..len], "{ext}.{file_ext}");
        }
    }
    let info = Command::new("qemu-img")
        .args(["info", "--output", "json"])
        .arg(images.join(format!("{base}.qcow2")))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        info["format-specific"]["data"]["compat"], "0.10",
        "nodepool asks for compat=0.10: {info}"
    );
    assert!(
        std::fs::read_dir(&build_tmp).unwrap().next().is_none(),
        "the build directory in TMPDIR was left"
    );
    assert_nothing_left(&build_tmp);
}

/// SIGKILL (nodepool's build timeout) while the disk image is attached and mounted, in
/// finalise.d (a hook still running in the chroot): the loop device, its partition devices
/// and the mounts stay behind; the next dibkit build
/// on the machine releases them, says so, and touches nothing else.
#[test]
fn killed_disk_build_is_released_by_the_next_run() {
    let Some(_serial) = enabled("killed_disk_build_is_released_by_the_next_run") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let _unmounted = Unmounted(tmp.path().to_path_buf());
    let out = tmp.path().join("disk");
    let log = tmp.path().join("disk.log");
    let mut child = dibkit()
        .args(["disk-image-create", "-o"])
        .arg(&out)
        .args(["--logfile"])
        .arg(&log)
        .args(["debian-minimal", "vm", "probe"])
        .env("ELEMENTS_PATH", fixtures())
        .env("TMPDIR", tmp.path())
        .env("DIB_DEBIAN_KERNEL", "none")
        .env("DIB_PROBE_PAUSE", "finalise.d")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_pause(&mut child, &log, "finalise.d");
    child.kill().unwrap();
    child.wait().unwrap();
    let loops = loops_below(tmp.path());
    let mounts = mounts_below(tmp.path());
    assert!(!loops.is_empty(), "the killed build had a loop device");
    assert!(mounts.len() > 2, "the killed build had mounts: {mounts:?}");
    let dev = loops[0].split(':').next().unwrap().to_owned();

    // A build elsewhere, which fails at once: it releases the dead build on its way in.
    let other = tempfile::tempdir().unwrap();
    let next = dibkit()
        .args(["build", "--elements-path"])
        .arg(image_fixtures())
        .args(["-n", "root-fails", "-t", "tar", "-o"])
        .arg(other.path().join("next"))
        .env("TMPDIR", other.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("(no longer running) left in")
            && stderr.contains(&format!("detached {dev}")),
        "the next run did not say what it released: {stderr}"
    );
    assert!(stderr.contains("unmounted"), "{stderr}");
    assert!(loops_below(tmp.path()).is_empty(), "loop device left");
    assert!(mounts_below(tmp.path()).is_empty(), "mounts left");
    assert_nothing_left(tmp.path());
    assert_nothing_left(other.path());
}

/// A tmpfs too small for the image: the build fails naming the phase and the full tmpfs, and
/// leaves nothing behind.
#[test]
fn too_small_tmpfs_fails_cleanly() {
    let Some(_serial) = enabled("too_small_tmpfs_fails_cleanly") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("small");
    let run = dibkit()
        .args(["build", "debian-minimal", "-t", "tar", "-o"])
        .arg(&out)
        .env("TMPDIR", tmp.path())
        .env("DIBKIT_TMPFS_SIZE", "96M")
        .env("DIB_DEBIAN_KERNEL", "none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        first.starts_with("error: out of space in phase root.d: the build directory's tmpfs (")
            && first.contains("is full, "),
        "{stderr}"
    );
    assert!(
        stderr.contains("--no-tmpfs"),
        "the hint is missing: {stderr}"
    );
    assert!(!out.with_extension("tar").exists());
    assert_nothing_left(tmp.path());
}
