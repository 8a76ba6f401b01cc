//! simple-init end to end, as dib's own gate does it: a Jenkins worker image booted as a cloud
//! server (config drive, grown disk, SSH as `jenkins`), booted again with no config drive
//! (DHCP), and the host's CAs trusted by pip in the chroot without a trace in the image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{assert_nothing_left, dibkit, enabled, partitions};

/// One `--exec` report of `dibkit boot`: the command, its exit status, stdout and stderr.
#[derive(Debug)]
struct Exec {
    command: String,
    status: String,
    stdout: String,
    stderr: String,
}

/// The `== exec i/n: CMD (exit status S, T s)` blocks of `dibkit boot`'s stdout.
fn exec_reports(stdout: &str) -> Vec<Exec> {
    let header = regex::Regex::new(r"^== exec \d+/\d+: (.*) \((.*), [0-9.]+ s\)$").unwrap();
    let mut out: Vec<Exec> = Vec::new();
    let mut in_stderr = false;
    for line in stdout.lines() {
        if let Some(c) = header.captures(line) {
            out.push(Exec {
                command: c[1].to_owned(),
                status: c[2].to_owned(),
                stdout: String::new(),
                stderr: String::new(),
            });
            in_stderr = false;
        } else if line == "-- stderr" {
            in_stderr = true;
        } else if let Some(last) = out.last_mut() {
            let text = if in_stderr {
                &mut last.stderr
            } else {
                &mut last.stdout
            };
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

fn report<'a>(reports: &'a [Exec], command: &str) -> &'a Exec {
    reports
        .iter()
        .find(|e| e.command == command)
        .unwrap_or_else(|| panic!("no report for `{command}` in {reports:?}"))
}

/// The PEM blocks of a bundle, as their base64 lines.
fn pem_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            cur = Some(Vec::new());
        } else if line == "-----END CERTIFICATE-----" {
            blocks.extend(cur.take());
        } else if let Some(c) = cur.as_mut() {
            c.push(line.to_owned());
        }
    }
    blocks
}

/// A line that identifies a certificate (its first lines are shared by many: the header and
/// the issuer).
fn marker_line(block: &[String]) -> String {
    block[block.len() / 2].clone()
}

/// The probe's encoding of a line: the build records DIB_* variables in the image, where the
/// line itself must not appear.
fn swap_case(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn host_bundle() -> PathBuf {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("the host has a CA bundle")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// With the raw image's root filesystem mounted read-only: no file holds any of `lines`, no
/// file is named like dibkit's copy of the host's bundle, and /etc/hosts names the host.
fn check_image_root(raw: &Path, mnt: &Path, lines: &[String]) {
    let offset = partitions(raw).1[0].start_sector * 512;
    std::fs::create_dir(mnt).unwrap();
    let dev = run(Command::new("losetup")
        .args(["--show", "-f", "-r", "-o", &offset.to_string()])
        .arg(raw));
    let dev = dev.trim().to_owned();
    let mounted = Command::new("mount")
        .args(["-o", "ro", &dev])
        .arg(mnt)
        .status()
        .unwrap();
    let checks = || {
        assert!(mounted.success(), "mounting the root filesystem failed");
        let patterns = mnt.parent().unwrap().join("ca-lines");
        std::fs::write(&patterns, lines.join("\n") + "\n").unwrap();
        let grep = Command::new("grep")
            .args(["-rlF", "--devices=skip", "-f"])
            .arg(&patterns)
            .arg(mnt)
            .output()
            .unwrap();
        assert_eq!(
            grep.status.code(),
            Some(1),
            "the host's extra CAs are in the image: {}",
            String::from_utf8_lossy(&grep.stdout)
        );
        let found = run(Command::new("find")
            .arg(mnt)
            .args(["-xdev", "-name", "dibkit-host-ca*"]));
        assert_eq!(found, "", "dibkit's CA files are in the image");
        let hosts = std::fs::read_to_string(mnt.join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.1.1 debian"), "{hosts}");
        // glean in its virtualenv, linked onto the PATH (an absolute link: not followed here).
        assert!(mnt.join("usr/glean/bin/glean-install").is_file());
        assert!(std::fs::symlink_metadata(mnt.join("usr/local/bin/glean-install")).is_ok());
        assert!(!mnt.join("usr/bin/cloud-init").exists());
    };
    let result = std::panic::catch_unwind(checks);
    let _ = Command::new("umount").arg(mnt).status();
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `debian-minimal vm simple-init growroot jenkins-slave`, built with a generated key and a
/// marker CA added to the host's bundle (`SSL_CERT_FILE`), glean pip-installed from PyPI in
/// the chroot (through this machine's TLS-intercepting proxy where there is one):
/// - `build --boot-test` grows the disk by 2 GiB and boots it with a config drive whose
///   network_data.json gives 10.0.2.50, an address qemu's DHCP never gives: the SSH port is
///   forwarded to that address, so the login as `jenkins` proves glean applied it; there the
///   hostname is the metadata's, `sudo -n true` passes silently, `java -version` runs, and the
///   root filesystem fills the grown disk;
/// - `dibkit boot` with no config drive reaches a login prompt, and over DHCP the image's own
///   host name resolves (`sudo` says nothing);
/// - neither boot changed the image; the image holds no trace of the host's extra CAs.
#[test]
fn jenkins_worker_boots_as_a_cloud_server() {
    let Some(_serial) = enabled("jenkins_worker_boots_as_a_cloud_server") else {
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("jenkins");
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "jenkins@dibkit-e2e",
            "-f",
        ])
        .arg(&key));
    // A CA only this test trusts, added to the host's bundle.
    let marker_pem = tmp.path().join("marker-ca.pem");
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=dibkit e2e marker CA", "-keyout"])
        .arg(tmp.path().join("marker-ca.key"))
        .arg("-out")
        .arg(&marker_pem));
    let host = std::fs::read_to_string(host_bundle()).unwrap();
    let marker = std::fs::read_to_string(&marker_pem).unwrap();
    let bundle = tmp.path().join("host-bundle.pem");
    std::fs::write(&bundle, format!("{host}\n{marker}")).unwrap();
    let marker_block = &pem_blocks(&marker)[0];

    let out = tmp.path().join("jenkins-worker");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let elements_path = format!(
        "{}:{}",
        repo.join("examples/elements").display(),
        repo.join("tests/fixtures/build/elements").display()
    );
    let build_out = dibkit()
        .args([
            "build",
            "debian-minimal",
            "vm",
            "simple-init",
            "growroot",
            "jenkins-slave",
            "host-ca-probe",
            "-u",
            "-t",
            "qcow2,raw",
            "-o",
        ])
        .arg(&out)
        .args(["--boot-test", "--resize", "+2G", "--config-drive"])
        .args(["--name", "jenkins-worker-7", "--address", "10.0.2.50/24"])
        .arg("--key")
        .arg(&key)
        .args(["--ssh", "jenkins"])
        .args(["--exec", "hostname", "--exec", "sudo -n true"])
        .args(["--exec", "java -version", "--exec", "ip -4 -o addr show"])
        .args(["--exec", "lsblk -bdno SIZE /dev/vda"])
        .args(["--exec", "lsblk -bno SIZE \"$(findmnt -no SOURCE /)\""])
        .args(["--exec", "df -B1 --output=size / | tail -n1"])
        .env("ELEMENTS_PATH", &elements_path)
        .env("TMPDIR", tmp.path())
        .env("SSL_CERT_FILE", &bundle)
        .env("DIB_HOST_CA_PROBE", swap_case(&marker_line(marker_block)))
        .env("JENKINS_PUBLIC_SSH_KEY_PATH", key.with_extension("pub"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&build_out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&build_out.stderr).into_owned();
    assert!(
        build_out.status.success(),
        "build --boot-test failed:\n{stdout}\n{stderr}\nlog: {}",
        std::fs::read_to_string(out.with_extension("log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "build and first boot: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert!(
        log.contains("host-ca-probe: the chroot trusts the host's CAs"),
        "the probe did not run"
    );
    assert!(
        log.contains("simple-init: glean "),
        "glean was not pip-installed"
    );
    assert_nothing_left(tmp.path());

    let reports = exec_reports(&stdout);
    for r in &reports {
        assert_eq!(r.status, "exit status 0", "{r:?}");
    }
    assert_eq!(report(&reports, "hostname").stdout, "jenkins-worker-7\n");
    let sudo = report(&reports, "sudo -n true");
    assert_eq!(sudo.stderr, "", "sudo complained: {sudo:?}");
    assert!(
        report(&reports, "java -version")
            .stderr
            .contains("version \""),
        "{reports:?}"
    );
    assert!(
        report(&reports, "ip -4 -o addr show")
            .stdout
            .contains("inet 10.0.2.50/24"),
        "{reports:?}"
    );
    let number = |cmd: &str| -> u64 { report(&reports, cmd).stdout.trim().parse().unwrap() };
    let qcow2 = out.with_extension("qcow2");
    let info: serde_json::Value = serde_json::from_str(&run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&qcow2)))
    .unwrap();
    let built_size = info["virtual-size"].as_u64().unwrap();
    let disk = number("lsblk -bdno SIZE /dev/vda");
    assert_eq!(
        disk,
        built_size + (2 << 30),
        "the disk was not grown by 2 GiB"
    );
    let part = number("lsblk -bno SIZE \"$(findmnt -no SOURCE /)\"");
    assert!(
        part + (16 << 20) >= disk,
        "root partition {part} on a disk of {disk}"
    );
    let fs = number("df -B1 --output=size / | tail -n1");
    assert!(
        fs >= part / 100 * 90,
        "root filesystem {fs} in a partition of {part}"
    );
    assert!(
        stderr.contains("config drive: name `jenkins-worker-7`, static address 10.0.2.50"),
        "{stderr}"
    );

    // No config drive: DHCP, the image's own name, a login prompt.
    let boot = dibkit()
        .args(["boot", "--accel", "tcg", "--timeout", "900"])
        .arg("--key")
        .arg(&key)
        .args([
            "--ssh",
            "jenkins",
            "--exec",
            "hostname",
            "--exec",
            "sudo -n true",
        ])
        .arg(&qcow2)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let boot_stdout = String::from_utf8_lossy(&boot.stdout).into_owned();
    assert!(
        boot.status.success(),
        "{boot_stdout}\n{}",
        String::from_utf8_lossy(&boot.stderr)
    );
    let console = std::fs::read_to_string(qcow2.with_extension("qcow2.boot.log")).unwrap();
    assert!(console.contains("login:"), "no login prompt");
    let dhcp = exec_reports(&boot_stdout);
    assert_eq!(report(&dhcp, "hostname").stdout, "debian\n");
    let sudo = report(&dhcp, "sudo -n true");
    assert_eq!(
        (sudo.status.as_str(), sudo.stderr.as_str()),
        ("exit status 0", "")
    );

    // Neither boot wrote to the image: the qcow2 still equals the raw written beside it.
    let raw = out.with_extension("raw");
    run(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(&raw)
        .arg(&qcow2));

    // No trace of the host's extra CAs: the marker, and any CA the host trusts that the
    // image's own bundle lacks (this machine's proxy CA, where there is one).
    let mnt = tmp.path().join("mnt");
    let image_bundle = {
        let offset = partitions(&raw).1[0].start_sector * 512;
        let dev = run(Command::new("losetup")
            .args(["--show", "-f", "-r", "-o", &offset.to_string()])
            .arg(&raw));
        let dev = dev.trim().to_owned();
        let peek = tmp.path().join("peek");
        std::fs::create_dir(&peek).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "ro", &dev])
            .arg(&peek)
            .status()
            .unwrap()
            .success();
        let text = std::fs::read_to_string(peek.join("etc/ssl/certs/ca-certificates.crt"))
            .unwrap_or_default();
        let _ = Command::new("umount").arg(&peek).status();
        let _ = Command::new("losetup").args(["-d", &dev]).status();
        assert!(ok, "mounting the root filesystem failed");
        text
    };
    let image_cas: BTreeSet<Vec<String>> = pem_blocks(&image_bundle).into_iter().collect();
    let mut lines: Vec<String> = pem_blocks(&host)
        .into_iter()
        .filter(|b| !image_cas.contains(b))
        .map(|b| marker_line(&b))
        .collect();
    eprintln!(
        "CAs the host trusts and the image does not: {} (and the marker)",
        lines.len()
    );
    lines.push(marker_line(marker_block));
    check_image_root(&raw, &mnt, &lines);
    eprintln!("total: {:.0} s", started.elapsed().as_secs_f64());
}
