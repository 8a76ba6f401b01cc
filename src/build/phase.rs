//! Runs one phase: the hooks tree's `dibkit-run-parts` on the host or in the chroot, its
//! output streamed to the log (and the terminal with --verbose), progress from its
//! `dib-run-parts Running` lines, and per-script status from its status file.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use super::{Build, Failure, sys};
use crate::element::model::Phase;

/// What ran, for the manifest and the timing table.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptRecord {
    pub phase: String,
    pub script: String,
    pub element: String,
    pub status: i32,
    pub seconds: f64,
}

/// How a phase is run.
pub enum Where {
    /// On the host, with `TARGET_ROOT` set when given.
    Host { target_root: bool },
    /// Inside the chroot at the image root.
    Chroot,
}

fn element_of(b: &Build, phase: &str, name: &str) -> String {
    b.plan
        .phases
        .iter()
        .find(|p| p.phase == phase)
        .and_then(|p| p.scripts.iter().find(|s| s.name == name))
        .map_or_else(
            || "(added during the build)".to_owned(),
            |s| s.element.clone(),
        )
}

/// Runs `phase`. Returns what ran; a failing hook is a [`Failure::Hook`].
pub fn run(b: &mut Build, phase: Phase, place: &Where) -> Result<Vec<ScriptRecord>, Failure> {
    let dir = b.paths.hooks.join(phase.dir);
    if !dir.is_dir() {
        return Ok(Vec::new()); // dib does nothing at all, not even environment.d.
    }
    let total = b
        .plan
        .phases
        .iter()
        .find(|p| p.phase == phase.dir)
        .map_or(0, |p| p.scripts.len());
    let (mut cmd, status_file) = match place {
        Where::Host { target_root } => {
            let status = b.paths.build.join(format!("status-{}", phase.dir));
            let mut cmd = Command::new("bash");
            cmd.arg(b.paths.hooks.join(super::hooks::RUN_PARTS_NAME))
                .arg(&dir)
                .arg(&status);
            cmd.env_clear()
                .envs(b.env_outside.iter().map(|(k, v)| (k, v)));
            if *target_root {
                cmd.env("TARGET_ROOT", &b.paths.mnt);
            }
            // Where `dibkit run-hook` records the scripts a hook runs itself.
            cmd.env("DIBKIT_STATUS_FILE", &status);
            (cmd, status)
        }
        Where::Chroot => {
            let inner = format!("/tmp/dibkit-status-{}", phase.dir);
            let mut cmd = Command::new("/bin/bash");
            cmd.arg(format!("/tmp/in_target.d/{}", super::hooks::RUN_PARTS_NAME))
                .arg(format!("/tmp/in_target.d/{}", phase.dir))
                .arg(&inner);
            cmd.env_clear()
                .envs(b.env_inside.iter().map(|(k, v)| (k, v)))
                .env("DIBKIT_STATUS_FILE", &inner);
            sys::proc::chroot(&mut cmd, &b.paths.mnt);
            (cmd, b.paths.mnt.join(inner.trim_start_matches('/')))
        }
    };
    let _ = fs::remove_file(&status_file);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so an interrupt reaches every process of the hook.
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Other(anyhow::anyhow!("starting {} runner: {e}", phase.dir)))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut index = 0;
    let mut interrupted = false;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let _ = writeln!(b.log, "{line}");
                if let Some(path) = line.strip_prefix("dib-run-parts Running ") {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    index += 1;
                    let element = element_of(b, phase.dir, name);
                    b.progress
                        .script(phase.dir, index, total.max(index), name, &element);
                    tail.clear();
                } else {
                    b.progress.output(&line);
                    tail.push_back(line);
                    if tail.len() > 20 {
                        tail.pop_front();
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break child.wait().map_err(|e| Failure::Other(e.into()))?;
            }
        }
        if b.interrupted.load(Ordering::SeqCst) && !interrupted {
            interrupted = true;
            let group = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0));
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        }
    };
    b.progress.finish();
    let records = read_status(b, phase.dir, &status_file);
    let calls = super::calls::read(
        &b.plan,
        &fs::read_to_string(&status_file).unwrap_or_default(),
    );
    b.calls.extend(calls);
    let _ = fs::remove_file(&status_file);
    if interrupted {
        return Err(Failure::Interrupted);
    }
    if !status.success() {
        let failed = records.iter().rev().find(|r| r.status != 0).cloned();
        let (script, element, code) = match failed {
            Some(r) => (r.script, r.element, r.status),
            None => (
                "(environment.d)".to_owned(),
                String::new(),
                status.code().unwrap_or(-1),
            ),
        };
        // Point at the element's own file; the hooks tree is gone after cleanup.
        let path = b
            .plan
            .phases
            .iter()
            .find(|p| p.phase == phase.dir)
            .and_then(|p| p.scripts.iter().find(|s| s.name == script))
            .map_or_else(|| dir.join(&script), |s| std::path::PathBuf::from(&s.path));
        return Err(Failure::Hook {
            path,
            phase: phase.dir.to_owned(),
            script,
            element,
            status: code,
            tail: tail.into_iter().collect(),
        });
    }
    b.records.extend(records.clone());
    Ok(records)
}

fn read_status(b: &Build, phase: &str, file: &Path) -> Vec<ScriptRecord> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut out: Vec<ScriptRecord> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["start", name, _] => out.push(ScriptRecord {
                phase: phase.to_owned(),
                script: (*name).to_owned(),
                element: element_of(b, phase, name),
                // Started and never ended: killed with the runner.
                status: -1,
                seconds: 0.0,
            }),
            ["end", name, rc, secs] => {
                if let Some(r) = out.iter_mut().rev().find(|r| r.script == *name) {
                    r.status = rc.parse().unwrap_or(-1);
                    r.seconds = secs.parse().unwrap_or(0.0);
                }
            }
            _ => {}
        }
    }
    out
}
