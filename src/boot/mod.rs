//! `dibkit boot`: starts an image in QEMU as a cloud would, with the serial console captured,
//! and waits for a login prompt (or any pattern); then, if asked, logs in over SSH and runs
//! commands there. The NIC is on qemu's user network with the guest's sshd forwarded to a port
//! on 127.0.0.1; an OpenStack config drive ([`config_drive`]) may be attached; the disk may be
//! grown first, on a temporary overlay. The image is never changed (`-snapshot`, and the
//! overlay is the only file written to).

pub mod config_drive;
pub mod ssh;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use regex_lite::Regex;

/// How to boot.
#[derive(Debug, Clone)]
pub struct Options {
    pub image: PathBuf,
    pub uefi: bool,
    pub timeout: Duration,
    pub expect: String,
    pub memory_mib: u32,
    pub log: PathBuf,
    /// `auto`, `kvm` or `tcg`.
    pub accel: String,
    /// An OpenStack config drive to attach.
    pub config_drive: Option<config_drive::Drive>,
    /// Grow the disk first (on an overlay): `+SIZE` or a new total `SIZE` (`K`, `M`, `G`, `T`).
    pub resize: Option<String>,
    /// Log in over SSH after the prompt, and run commands.
    pub ssh: Option<SshCheck>,
    /// The port on 127.0.0.1 forwarded to the guest's sshd (default: a free one).
    pub ssh_port: Option<u16>,
}

/// What to do over SSH once the guest is up.
#[derive(Debug, Clone)]
pub struct SshCheck {
    pub user: String,
    pub key: PathBuf,
    /// Commands to run, in order; all run even when one fails.
    pub exec: Vec<String>,
    /// The longest one command may take.
    pub exec_timeout: Duration,
}

/// The outcome of a boot.
#[derive(Debug)]
pub struct Outcome {
    pub booted: bool,
    pub seconds: f64,
    pub accel: &'static str,
    /// The last console lines (for a failure report).
    pub tail: Vec<String>,
    /// The port on 127.0.0.1 that was forwarded to the guest's sshd, and where to.
    pub ssh_port: u16,
    pub ssh_target: String,
    /// The SSH part, when asked for and the prompt was reached.
    pub ssh: Option<SshOutcome>,
    /// The disk's virtual size after `resize`.
    pub disk_bytes: Option<u64>,
}

/// What happened over SSH.
#[derive(Debug)]
pub struct SshOutcome {
    /// Seconds from the start of the boot to the first login, or why no login worked.
    pub login: std::result::Result<f64, String>,
    pub exec: Vec<ssh::Exec>,
}

impl Outcome {
    /// Booted, logged in if asked, and every command succeeded.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.booted
            && self
                .ssh
                .as_ref()
                .is_none_or(|s| s.login.is_ok() && s.exec.iter().all(ssh::Exec::succeeded))
    }
}

/// A size as `qemu-img` writes it: digits and an optional binary unit.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The disk size `--resize` asks for, given the current one: `+SIZE` grows by SIZE, `SIZE` is
/// the new total, which may not be smaller.
///
/// # Errors
/// Not a size, or a shrink.
pub fn resized(current: u64, spec: &str) -> Result<u64> {
    let (grow, text) = match spec.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let n = parse_size(text)
        .ok_or_else(|| anyhow!("--resize {spec}: not a size (e.g. +2G, 10G, +512M)"))?;
    let total = if grow { current.saturating_add(n) } else { n };
    if total < current {
        return Err(anyhow!(
            "--resize {spec}: smaller than the disk ({current} bytes); images are only grown"
        ));
    }
    Ok(total)
}

fn virtual_size(image: &Path, format: &str) -> Result<u64> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-f", format])
        .arg(image)
        .output()
        .context("running qemu-img info (install qemu-utils)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "qemu-img info {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| anyhow!("qemu-img info {}: no virtual-size", image.display()))
}

/// A qcow2 overlay in `dir` on top of `image` (never written to), `bytes` big.
fn grow_overlay(image: &Path, dir: &Path, bytes: u64) -> Result<PathBuf> {
    let overlay = dir.join("disk.qcow2");
    let backing =
        std::fs::canonicalize(image).with_context(|| format!("resolving {}", image.display()))?;
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", format_of(image), "-b"])
        .arg(&backing)
        .arg(&overlay)
        .arg(bytes.to_string())
        .output()
        .context("running qemu-img create (install qemu-utils)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "qemu-img create (the resized overlay): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(overlay)
}

/// What one qemu run is given: the disk, the config drive, the NIC.
struct Machine {
    disk: PathBuf,
    disk_format: &'static str,
    iso: Option<PathBuf>,
    nic: String,
    /// The port on 127.0.0.1 forwarded to the guest's sshd.
    port: u16,
    /// This boot's temporary directory.
    work: PathBuf,
}

/// OVMF firmware for `--uefi`.
fn ovmf() -> Result<PathBuf> {
    [
        "/usr/share/ovmf/OVMF.fd",
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/qemu/OVMF.fd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| anyhow!("no OVMF firmware found; install it with `apt-get install ovmf`"))
}

fn format_of(image: &Path) -> &'static str {
    match image.extension().and_then(|e| e.to_str()) {
        Some("qcow2") => "qcow2",
        Some("vhd") => "vpc",
        _ => "raw",
    }
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn spawn(opts: &Options, machine: &Machine, accel: &str) -> Result<Child> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-m",
        &opts.memory_mib.to_string(),
        "-smp",
        "2",
        "-accel",
        accel,
    ])
    .args([
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-snapshot",
    ])
    .args(["-nic", &machine.nic])
    .arg("-drive")
    .arg(format!(
        "file={},format={},if=virtio",
        machine.disk.display(),
        machine.disk_format
    ));
    if let Some(iso) = &machine.iso {
        cmd.arg("-drive").arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            iso.display()
        ));
    }
    if opts.uefi {
        cmd.arg("-bios").arg(ovmf()?);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().map_err(|e| {
        anyhow!(
            "starting qemu-system-x86_64 ({e}); install it with `apt-get install qemu-system-x86`"
        )
    })
}

/// How far back before the new console output a search for `--expect` starts: a match
/// must lie within this many bytes before the latest output.
const EXPECT_OVERLAP: usize = 4096;

/// The serial console so far, and the `--expect` pattern searched in it.
struct Watch<'a> {
    expect: &'a Regex,
    console: Vec<u8>,
    /// How much of `console` the pattern has been searched in.
    searched: usize,
}

impl<'a> Watch<'a> {
    fn new(expect: &'a Regex) -> Self {
        Self {
            expect,
            console: Vec::new(),
            searched: 0,
        }
    }

    fn add(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }

    /// Whether the pattern matches the text no search has seen yet, with the
    /// [`EXPECT_OVERLAP`] bytes before it (a match may straddle two reads). The console
    /// arrives a few bytes at a time: searching all of it each time kept a core busy.
    fn found(&mut self) -> bool {
        let from = self.start();
        self.searched = self.console.len();
        self.expect
            .is_match(&String::from_utf8_lossy(&self.console[from..]))
    }

    /// Where the next [`Watch::found`] starts searching.
    fn start(&self) -> usize {
        self.searched.saturating_sub(EXPECT_OVERLAP)
    }

    /// The bytes the next [`Watch::found`] searches.
    #[cfg(test)]
    fn window(&self) -> usize {
        self.console.len() - self.start()
    }
}

/// One boot's result: reached the pattern, seconds to it, the last console lines, the SSH part.
type Attempt = (bool, f64, Vec<String>, Option<SshOutcome>);

/// Boots once with `accel`. `give_up_silent`: stop early if the console stays silent that
/// long (a hung KVM guest). Once the pattern shows, the SSH part runs while the VM is up.
fn attempt(
    opts: &Options,
    machine: &Machine,
    accel: &'static str,
    expect: &Regex,
    give_up_silent: Option<Duration>,
    log: &mut File,
) -> Result<Option<Attempt>> {
    let mut child = spawn(opts, machine, accel)?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut watch = Watch::new(expect);
    let result = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => {
                log.write_all(&chunk)?;
                watch.add(&chunk);
                // Whatever else has arrived too, so that one search covers a burst.
                while let Ok(more) = rx.try_recv() {
                    log.write_all(&more)?;
                    watch.add(&more);
                }
                if watch.found() {
                    break Some(true);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break Some(false),
        }
        if let Some(limit) = give_up_silent {
            if watch.console.is_empty() && start.elapsed() > limit {
                break None;
            }
        }
        if start.elapsed() > opts.timeout {
            break Some(false);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let mut ssh_outcome = None;
    if result == Some(true) {
        if let Some(check) = &opts.ssh {
            let login = ssh::Login {
                user: check.user.clone(),
                key: check.key.clone(),
                port: machine.port,
                control: Some(machine.work.join(format!("ssh-{accel}"))),
            };
            // Login gets what is left of the timeout, and at least two minutes (sshd starts
            // after the prompt on a slow machine).
            let deadline = start + opts.timeout.max(start.elapsed() + Duration::from_secs(120));
            let mut alive = || matches!(child.try_wait(), Ok(None));
            let waited = ssh::wait(&login, deadline, &mut alive)?;
            let mut outcome = SshOutcome {
                login: waited.map(|()| start.elapsed().as_secs_f64()),
                exec: Vec::new(),
            };
            if outcome.login.is_ok() {
                for command in &check.exec {
                    outcome
                        .exec
                        .push(ssh::exec(&login, command, check.exec_timeout)?);
                }
            }
            ssh::close(&login);
            ssh_outcome = Some(outcome);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // What the console said meanwhile goes to the log too.
    while let Ok(chunk) = rx.try_recv() {
        log.write_all(&chunk)?;
        watch.add(&chunk);
    }
    let text = String::from_utf8_lossy(&watch.console).replace('\r', "");
    let tail = crate::error::last_lines(&text, 20);
    Ok(result.map(|booted| (booted, seconds, tail, ssh_outcome)))
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it is free again when this returns).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Boots the image and waits for the pattern, then logs in and runs commands if asked.
///
/// # Errors
/// The image is missing, QEMU, OVMF or an ISO tool are not installed, `resize` is not a
/// size, or the log cannot be written.
pub fn boot(opts: &Options) -> Result<Outcome> {
    if !opts.image.is_file() {
        return Err(anyhow!("{} is not a file", opts.image.display()));
    }
    let expect = Regex::new(&opts.expect).map_err(|e| anyhow!("--expect: {e}"))?;
    let work = tempfile::Builder::new()
        .prefix("dibkit-boot.")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut machine = Machine {
        disk: opts.image.clone(),
        disk_format: format_of(&opts.image),
        iso: None,
        nic: String::new(),
        port: 0,
        work: work.path().to_path_buf(),
    };
    let mut disk_bytes = None;
    if let Some(spec) = &opts.resize {
        let current = virtual_size(&opts.image, format_of(&opts.image))?;
        let total = resized(current, spec)?;
        machine.disk = grow_overlay(&opts.image, work.path(), total)?;
        machine.disk_format = "qcow2";
        disk_bytes = Some(total);
    }
    let mut mac = config_drive::MAC.to_owned();
    let mut guest = None;
    if let Some(drive) = &opts.config_drive {
        let iso = work.path().join("config-2.iso");
        config_drive::write_iso(drive, &work.path().join("config-2"), &iso)?;
        machine.iso = Some(iso);
        mac.clone_from(&drive.mac);
        guest = drive.guest_address;
    }
    let port = match opts.ssh_port {
        Some(p) => p,
        None => free_port()?,
    };
    machine.port = port;
    let ssh_target = guest.map_or_else(|| "10.0.2.15".to_owned(), |a| a.to_string());
    machine.nic = format!(
        "user,model=virtio-net-pci,mac={mac},hostfwd=tcp:127.0.0.1:{port}-{}:22",
        guest.map(|a| a.to_string()).unwrap_or_default()
    );
    let mut log =
        File::create(&opts.log).with_context(|| format!("creating {}", opts.log.display()))?;
    let use_kvm = match opts.accel.as_str() {
        "kvm" => true,
        "tcg" => false,
        _ => kvm_usable(),
    };
    let outcome = |(booted, seconds, tail, ssh), accel| Outcome {
        booted,
        seconds,
        accel,
        tail,
        ssh_port: port,
        ssh_target: ssh_target.clone(),
        ssh,
        disk_bytes,
    };
    if use_kvm {
        // /dev/kvm can exist while guests hang in it: a silent console means fall back.
        let silent = (opts.accel == "auto").then(|| Duration::from_secs(20));
        if let Some(done) = attempt(opts, &machine, "kvm", &expect, silent, &mut log)? {
            return Ok(outcome(done, "kvm"));
        }
        writeln!(
            log,
            "\n[dibkit: no console output under KVM in 20 s; retrying with TCG]"
        )?;
    }
    let done = attempt(opts, &machine, "tcg", &expect, None, &mut log)?
        .ok_or_else(|| anyhow!("qemu stopped unexpectedly"))?;
    Ok(outcome(done, "tcg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_searched_once_with_an_overlap() {
        let expect = Regex::new("login: ?$|login:").unwrap();
        let mut watch = Watch::new(&expect);
        // A prompt that arrives a few bytes at a time, after a long boot log.
        watch.add(&vec![b'x'; 100_000]);
        assert!(!watch.found());
        for part in ["\r\nhost lo", "gin", ": "] {
            watch.add(part.as_bytes());
            // Each search covers the new bytes and the overlap only, not the whole log.
            assert!(watch.window() <= EXPECT_OVERLAP + part.len());
            let found = watch.found();
            assert_eq!(found, part == ": ", "{part:?}");
        }
        // Invalid UTF-8 in the console does not hide a match after it.
        let custom = Regex::new("cloud-init .* finished").unwrap();
        let mut watch = Watch::new(&custom);
        watch.add(b"\xff\xfe cloud-init v. 22 fin");
        assert!(!watch.found());
        watch.add(b"ished at boot");
        assert!(watch.found());
    }

    #[test]
    fn resize_grows_by_or_to_a_size_and_never_shrinks() {
        let g = 1u64 << 30;
        assert_eq!(resized(3 * g, "+2G").unwrap(), 5 * g);
        assert_eq!(resized(3 * g, "+512M").unwrap(), 3 * g + (512 << 20));
        assert_eq!(resized(3 * g, "10G").unwrap(), 10 * g);
        assert_eq!(resized(3 * g, "3221225472").unwrap(), 3 * g);
        assert!(
            resized(3 * g, "2G")
                .unwrap_err()
                .to_string()
                .contains("only grown")
        );
        for bad in ["+2X", "", "+", "two", "-1G", "+1.5G"] {
            assert!(resized(g, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ssh_failure_or_failed_command_fails_the_outcome() {
        let exec = |status| ssh::Exec {
            command: "true".into(),
            stdout: String::new(),
            stderr: String::new(),
            status,
            seconds: 0.0,
        };
        let mut o = Outcome {
            booted: true,
            seconds: 1.0,
            accel: "tcg",
            tail: Vec::new(),
            ssh_port: 2222,
            ssh_target: "10.0.2.15".into(),
            ssh: None,
            disk_bytes: None,
        };
        assert!(o.passed());
        o.ssh = Some(SshOutcome {
            login: Ok(3.0),
            exec: vec![exec(Some(0)), exec(Some(1))],
        });
        assert!(!o.passed());
        o.ssh = Some(SshOutcome {
            login: Ok(3.0),
            exec: vec![exec(Some(0))],
        });
        assert!(o.passed());
        o.ssh = Some(SshOutcome {
            login: Ok(3.0),
            exec: vec![exec(None)],
        });
        assert!(!o.passed());
        o.ssh = Some(SshOutcome {
            login: Err("Permission denied".into()),
            exec: Vec::new(),
        });
        assert!(!o.passed());
        o.ssh = None;
        o.booted = false;
        assert!(!o.passed());
    }
}
