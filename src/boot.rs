//! `dibkit boot`: starts an image in QEMU with the serial console captured, and waits for a
//! login prompt (or any pattern). The image is never changed (`-snapshot`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use regex::bytes::Regex;

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
}

/// The outcome of a boot.
#[derive(Debug)]
pub struct Outcome {
    pub booted: bool,
    pub seconds: f64,
    pub accel: &'static str,
    /// The last console lines (for a failure report).
    pub tail: Vec<String>,
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

fn spawn(opts: &Options, accel: &str) -> Result<Child> {
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
    .args(["-nic", "user,model=virtio-net-pci"])
    .arg("-drive")
    .arg(format!(
        "file={},format={},if=virtio",
        opts.image.display(),
        format_of(&opts.image)
    ));
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

/// Boots once with `accel`. `give_up_silent`: stop early if the console stays silent that
/// long (a hung KVM guest).
fn attempt(
    opts: &Options,
    accel: &'static str,
    expect: &Regex,
    give_up_silent: Option<Duration>,
    log: &mut File,
) -> Result<Option<Outcome>> {
    let mut child = spawn(opts, accel)?;
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
    let mut console: Vec<u8> = Vec::new();
    let result = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => {
                log.write_all(&chunk)?;
                console.extend_from_slice(&chunk);
                if expect.is_match(&console[console.len().saturating_sub(64 * 1024)..]) {
                    break Some(true);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break Some(false),
        }
        if let Some(limit) = give_up_silent {
            if console.is_empty() && start.elapsed() > limit {
                break None;
            }
        }
        if start.elapsed() > opts.timeout {
            break Some(false);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let seconds = start.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&console).replace('\r', "");
    let tail = crate::error::last_lines(&text, 20);
    Ok(result.map(|booted| Outcome {
        booted,
        seconds,
        accel,
        tail,
    }))
}

/// Boots the image and waits for the pattern.
///
/// # Errors
/// The image is missing, QEMU or OVMF are not installed, or the log cannot be written.
pub fn boot(opts: &Options) -> Result<Outcome> {
    if !opts.image.is_file() {
        return Err(anyhow!("{} is not a file", opts.image.display()));
    }
    let expect = Regex::new(&opts.expect).map_err(|e| anyhow!("--expect: {e}"))?;
    let mut log =
        File::create(&opts.log).with_context(|| format!("creating {}", opts.log.display()))?;
    let use_kvm = match opts.accel.as_str() {
        "kvm" => true,
        "tcg" => false,
        _ => kvm_usable(),
    };
    if use_kvm {
        // /dev/kvm can exist while guests hang in it: a silent console means fall back.
        let silent = (opts.accel == "auto").then(|| Duration::from_secs(20));
        if let Some(outcome) = attempt(opts, "kvm", &expect, silent, &mut log)? {
            return Ok(outcome);
        }
        writeln!(
            log,
            "\n[dibkit: no console output under KVM in 20 s; retrying with TCG]"
        )?;
    }
    attempt(opts, "tcg", &expect, None, &mut log)?
        .ok_or_else(|| anyhow!("qemu stopped unexpectedly"))
}
