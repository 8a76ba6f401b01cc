//! Logging in to a booted guest with the host's OpenSSH client, through the port qemu forwards
//! to the guest's sshd: waiting until a login works, and running commands with their output
//! and exit status captured. No host key is trusted or remembered (the guest is new each time).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

/// How to log in.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    /// The private key.
    pub key: PathBuf,
    pub port: u16,
    /// A control socket: one connection carries the login and every command (a TCG guest
    /// takes seconds per key exchange). It lives in a directory only this boot uses.
    pub control: Option<PathBuf>,
}

/// A command run in the guest.
#[derive(Debug, Clone)]
pub struct Exec {
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// `None`: it did not end in time (or was killed by a signal).
    pub status: Option<i32>,
    pub seconds: f64,
}

impl Exec {
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status == Some(0)
    }
}

/// The public half of a private key: `KEY.pub` beside it, else `ssh-keygen -y`.
pub fn public_key(key: &Path) -> Result<String> {
    let mut pubfile = key.as_os_str().to_owned();
    pubfile.push(".pub");
    if let Ok(text) = std::fs::read_to_string(&pubfile) {
        if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
            return Ok(line.trim().to_owned());
        }
    }
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen -y (install openssh-client)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "{}: cannot read the key's public half: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The ssh command line for `login`, ending before the remote command.
fn ssh(login: &Login) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.arg("-i")
        .arg(&login.key)
        .args(["-p", &login.port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
        ])
        .stdin(Stdio::null());
    if let Some(control) = &login.control {
        cmd.arg("-o")
            .arg(format!("ControlPath={}", control.display()))
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=yes"]);
    }
    cmd.arg(format!("{}@127.0.0.1", login.user));
    cmd
}

/// Ends the shared connection, if there is one.
pub fn close(login: &Login) {
    if login.control.is_some() {
        let _ = ssh(login)
            .args(["-O", "exit"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `command` in the guest, for at most `limit`.
pub fn exec(login: &Login, command: &str, limit: Duration) -> Result<Exec> {
    let start = Instant::now();
    let mut child = ssh(login)
        .arg("--")
        .arg(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ssh (install openssh-client)")?;
    let mut out = child.stdout.take().context("ssh stdout")?;
    let mut err = child.stderr.take().context("ssh stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Exec {
        command: command.to_owned(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        status,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Tries to log in (`true`) until it works or `deadline` passes; returns the last attempt's
/// error output on failure. `alive` stops the wait early (the VM ended).
pub fn wait(
    login: &Login,
    deadline: Instant,
    alive: &mut dyn FnMut() -> bool,
) -> Result<std::result::Result<(), String>> {
    let mut last = String::new();
    while Instant::now() < deadline {
        if !alive() {
            return Ok(Err(format!("the VM stopped; last ssh error: {last}")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = exec(login, "true", left.min(Duration::from_secs(30)))?;
        if attempt.succeeded() {
            return Ok(Ok(()));
        }
        attempt.stderr.trim().clone_into(&mut last);
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(Err(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_half_is_read_beside_the_key_or_derived() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("id");
        std::fs::write(&key, "not a key").unwrap();
        std::fs::write(tmp.path().join("id.pub"), "\nssh-ed25519 AAAA me@host\n").unwrap();
        assert_eq!(public_key(&key).unwrap(), "ssh-ed25519 AAAA me@host");
        let lone = tmp.path().join("lone");
        std::fs::write(&lone, "not a key").unwrap();
        if super::super::config_drive::which("ssh-keygen").is_some() {
            let err = public_key(&lone).unwrap_err().to_string();
            assert!(err.contains("lone"), "{err}");
        }
    }
}
