//! Runs one phase: lists the hooks tree when the phase starts (`order::tree`, the plan's
//! rules) and hands exactly that list to the tree's `dibkit-run-parts`, on the host or in the
//! chroot; its output goes to the log and the sink, progress comes from its
//! `dib-run-parts Running` lines, and per-script status from its status file.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::element::model::Phase;
use crate::engine::context::{Build, ScriptRecord};
use crate::engine::hooks::RUN_PARTS_NAME;
use crate::engine::sink::Event;
use crate::engine::sys;
use crate::error::Failure;
use crate::order::tree::{self, PhaseList};

/// Where the hooks tree is inside the chroot.
const IN_TARGET: &str = "/tmp/in_target.d";

/// The phase's hooks and environment.d files as the hooks tree has them now.
fn list(b: &Build<'_>, phase: Phase) -> Result<PhaseList, Failure> {
    let paths = b.paths();
    let listed = if phase.chroot() {
        tree::list_phase(
            &paths.mnt,
            &Path::new(IN_TARGET).join(phase.dir()),
            &b.opts.run_parts,
        )
    } else {
        tree::list_phase(
            Path::new("/"),
            &paths.hooks.join(phase.dir()),
            &b.opts.run_parts,
        )
    };
    listed
        .with_context(|| format!("listing {} in the hooks tree", phase.dir()))
        .map_err(Failure::from)
}

/// Runs `phase`: the hooks the tree has when it starts, in the plan's order. Returns what
/// ran; a failing hook is a hook failure (exit status 3).
pub fn run(b: &mut Build<'_>, phase: Phase) -> Result<Vec<ScriptRecord>, Failure> {
    run_part(b, phase, None)
}

/// [`run`], or with `head` one part of the phase's hooks, as the build cache splits
/// install.d ([`super::cache::State::install_part`]): the hooks before the first of an
/// element of the user's (`Some(true)`), or the rest (`Some(false)`). A part with no hooks
/// runs nothing.
pub fn run_part(
    b: &mut Build<'_>,
    phase: Phase,
    head: Option<bool>,
) -> Result<Vec<ScriptRecord>, Failure> {
    let paths = b.paths().clone();
    let dir = paths.hooks.join(phase.dir());
    if !dir.is_dir() {
        return Ok(Vec::new()); // dib does nothing at all, not even environment.d.
    }
    let listed = list(b, phase)?;
    if listed.environment.as_ref().is_some_and(Vec::is_empty) {
        // dib-run-parts' `grep` finds nothing and its pipeline fails the phase.
        return Err(super::chroot::hook_failure(
            phase.dir(),
            "(environment.d)",
            "",
            &paths.hooks.join("environment.d"),
            1,
            &["environment.d holds no file dib-run-parts sources".to_owned()],
        ));
    }
    let environment = listed.environment.unwrap_or_default();
    let total = listed.hooks.len();
    let hooks = match head {
        None => listed.hooks.as_slice(),
        Some(head) => b.cache.install_part(&listed.hooks, head),
    };
    if head.is_some() && hooks.is_empty() {
        return Ok(Vec::new());
    }
    // Progress counts the phase's hooks: the second part goes on from the first's.
    let mut index = if head == Some(false) {
        total - hooks.len()
    } else {
        0
    };
    let (mut cmd, status_file) = if phase.chroot() {
        let inner = format!("/tmp/dibkit-status-{}", phase.dir());
        let mut cmd = Command::new("/bin/bash");
        cmd.arg(format!("{IN_TARGET}/{RUN_PARTS_NAME}"))
            .arg(format!("{IN_TARGET}/{}", phase.dir()))
            .arg(&inner);
        // Where `dibkit run-hook` records the scripts a hook runs itself.
        cmd.env_clear()
            .envs(b.env_inside.iter().map(|(k, v)| (k, v)))
            .env("DIBKIT_STATUS_FILE", &inner);
        sys::proc::chroot(&mut cmd, &paths.mnt);
        (cmd, paths.mnt.join(inner.trim_start_matches('/')))
    } else {
        let status = paths.build.join(format!("status-{}", phase.dir()));
        let mut cmd = Command::new("bash");
        cmd.arg(paths.hooks.join(RUN_PARTS_NAME))
            .arg(&dir)
            .arg(&status);
        cmd.env_clear()
            .envs(b.env_outside.iter().map(|(k, v)| (k, v)));
        if phase.target_root() {
            cmd.env("TARGET_ROOT", &paths.mnt);
        }
        cmd.env("DIBKIT_STATUS_FILE", &status);
        (cmd, status)
    };
    cmd.arg(environment.len().to_string())
        .args(&environment)
        .args(hooks);
    // A status file of an earlier attempt must not count; usually there is none.
    fs::remove_file(&status_file).ok();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so an interrupt reaches every process of the hook.
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the {} runner", phase.dir()))?;
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
    let mut interrupted: Option<Instant> = None;
    // When the runner has exited but something it started in the background still holds its
    // output open: waited for briefly, then stopped, so a stray daemon cannot hang the build.
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                b.log_line(&line);
                if let Some(path) = line.strip_prefix("dib-run-parts Running ") {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    index += 1;
                    let element = b.plan.element_of(phase.dir(), name);
                    b.sink.event(Event::Script {
                        phase: phase.dir(),
                        index,
                        total: total.max(index),
                        name,
                        element: &element,
                    });
                    tail.clear();
                } else {
                    b.sink.event(Event::Output(&line));
                    tail.push_back(line);
                    if tail.len() > 20 {
                        tail.pop_front();
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if exited.is_none() {
                    let done = child
                        .try_wait()
                        .with_context(|| format!("waiting for the {} runner", phase.dir()))?;
                    exited = done.map(|s| (s, Instant::now()));
                }
                if let Some((status, at)) = exited {
                    if at.elapsed() > Duration::from_secs(5) {
                        b.log_line(&format!(
                            "note: {} has ended, but processes it left in the background \
                             still hold its output; stopping them",
                            phase.dir()
                        ));
                        sys::proc::terminate_group(pid);
                        std::thread::sleep(Duration::from_secs(1));
                        sys::proc::kill_group(pid);
                        break status;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break match exited {
                    Some((status, _)) => status,
                    None => child
                        .wait()
                        .with_context(|| format!("waiting for the {} runner", phase.dir()))?,
                };
            }
        }
        if b.interrupted.load(Ordering::SeqCst) {
            match interrupted {
                None => {
                    interrupted = Some(Instant::now());
                    sys::proc::terminate_group(pid);
                }
                // Hooks that ignore SIGTERM get SIGKILL after a grace period.
                Some(at) if at.elapsed() > Duration::from_secs(10) => {
                    sys::proc::kill_group(pid);
                }
                Some(_) => {}
            }
        }
    };
    if interrupted.is_some() {
        // The runner is gone; whatever of its group ignored SIGTERM goes now.
        sys::proc::kill_group(pid);
    }
    b.sink.event(Event::PhaseEnd);
    let records = read_status(b, phase.dir(), &status_file);
    let calls = crate::engine::calls::read(
        &b.plan,
        &fs::read_to_string(&status_file).unwrap_or_default(),
    );
    b.calls.extend(calls);
    // Inside the image it would end up in the output; it may be gone with a killed runner.
    fs::remove_file(&status_file).ok();
    if interrupted.is_some() {
        return Err(Failure::interrupted());
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
            .find(|p| p.phase == phase)
            .and_then(|p| p.scripts.iter().find(|s| s.name == script))
            .map_or_else(|| dir.join(&script), |s| std::path::PathBuf::from(&s.path));
        let tail: Vec<String> = tail.into_iter().collect();
        return Err(super::chroot::hook_failure(
            phase.dir(),
            &script,
            &element,
            &path,
            code,
            &tail,
        ));
    }
    b.records.extend(records.clone());
    Ok(records)
}

fn read_status(b: &Build<'_>, phase: &str, file: &Path) -> Vec<ScriptRecord> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut out: Vec<ScriptRecord> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["start", name, _] => out.push(ScriptRecord {
                phase: phase.to_owned(),
                script: (*name).to_owned(),
                element: b.plan.element_of(phase, name),
                // Started and never ended: killed with the runner.
                status: -1,
                seconds: 0.0,
                cached: false,
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
