//! Hook calls at build time: `dibkit run-hook` runs a phase script of the hooks tree for the
//! script that calls it and records the run, with its caller, in the phase's status file
//! (`$DIBKIT_STATUS_FILE`, the file the phase runner writes its `start`/`end` lines to):
//!
//! ```text
//! call    CALLER  PHASE/SCRIPT  EPOCH
//! called  CALLER  PHASE/SCRIPT  STATUS  SECONDS
//! skip    CALLER  PHASE/SCRIPT  REASON
//! ```
//!
//! The build reads them into [`CallRecord`]s for the manifest, and [`drift`] compares them
//! with the calls the plan declares (`order::calls`).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::order::plan::Plan;

/// One call a script made (or reported skipping).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CallRecord {
    /// `PHASE/SCRIPT` of the calling script.
    pub caller: String,
    pub phase: String,
    pub script: String,
    pub element: String,
    /// The script's exit status; -1 when it never ended (killed with the caller).
    pub status: i32,
    pub seconds: f64,
    /// Why the caller did not run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// `PHASE/SCRIPT` of a hooks-tree path (a caller's `$0`), or the argument as given.
#[must_use]
pub fn hook_name(path: &str) -> String {
    let parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(2).collect();
    match parts.as_slice() {
        [name, phase] => format!("{phase}/{name}"),
        _ => path.to_owned(),
    }
}

/// How `run-hook` runs the script.
#[derive(Debug, Clone)]
pub struct Call {
    /// `PHASE/SCRIPT` of the caller.
    pub caller: String,
    /// `PHASE/SCRIPT` of the script to run, in `hooks`.
    pub hook: String,
    pub hooks: PathBuf,
    /// Run it in this root: `chroot ROOT bash -s -- ARGS` with the script on standard input,
    /// dib's PATH and no `TMPDIR`.
    pub chroot: Option<PathBuf>,
    pub args: Vec<String>,
    /// `$DIBKIT_STATUS_FILE`, when run by dibkit's phase runner.
    pub status_file: Option<PathBuf>,
}

fn append(file: Option<&Path>, line: &str) -> Result<()> {
    let Some(file) = file else {
        return Ok(());
    };
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening status file {}", file.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing status file {}", file.display()))
}

/// Records that `call.caller` did not run `call.hook`, and why.
///
/// # Errors
/// The status file cannot be written.
pub fn skip(call: &Call, reason: &str) -> Result<()> {
    check_hook(&call.hook)?;
    let reason = reason.replace(['\t', '\n'], " ");
    append(
        call.status_file.as_deref(),
        &format!("skip\t{}\t{}\t{reason}", call.caller, call.hook),
    )
}

/// Checks that `hook` is `PHASE/SCRIPT`: a phase directory and a file name in it, nothing that
/// could leave the hooks tree or break a status-file line.
///
/// # Errors
/// Anything else, said in words.
pub fn check_hook(hook: &str) -> Result<()> {
    let Some((phase, name)) = hook.split_once('/') else {
        return Err(anyhow!("`{hook}` is not PHASE/SCRIPT"));
    };
    if crate::element::model::Phase::from_dir(phase).is_none() {
        return Err(anyhow!("`{phase}` in `{hook}` is not a phase directory"));
    }
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(anyhow!("`{name}` in `{hook}` is not a script name"));
    }
    Ok(())
}

/// Runs the script and records the run; returns its exit status (128 + signal when killed).
/// In a chroot, the script is copied to a temporary directory in the root's `/tmp` (as
/// `PHASE/SCRIPT`, so its `$0` names it) and run by path with its own shebang, standard input
/// from `/dev/null`, dib's PATH and neither `TMPDIR` nor the host's status file.
///
/// # Errors
/// The script is not in the hooks tree, cannot be started, or the status file cannot be
/// written.
pub fn run(call: &Call) -> Result<i32> {
    check_hook(&call.hook)?;
    let path = call.hooks.join(&call.hook);
    if !path.is_file() {
        return Err(anyhow!(
            "{} is not a script of the hooks tree {}",
            call.hook,
            call.hooks.display()
        ));
    }
    let cmd = match &call.chroot {
        None => {
            let mut cmd = Command::new(&path);
            cmd.args(&call.args);
            cmd
        }
        Some(root) => {
            let tmp = root.join("tmp");
            let staged = tempfile::Builder::new()
                .prefix("dibkit-run-hook.")
                .tempdir_in(&tmp)
                .with_context(|| format!("making a directory in {}", tmp.display()))?;
            let copy = staged.path().join(&call.hook);
            if let Some(dir) = copy.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::copy(&path, &copy)
                .with_context(|| format!("copying {} into the root", path.display()))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", copy.display()))?;
            let inside = Path::new("/").join(
                copy.strip_prefix(root)
                    .context("the staged script is in the root")?,
            );
            let mut cmd = Command::new("chroot");
            cmd.arg(root)
                .args([
                    "env",
                    "-u",
                    "TMPDIR",
                    "-u",
                    "DIBKIT_STATUS_FILE",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ])
                .arg(inside)
                .args(&call.args)
                .stdin(Stdio::null());
            return record(call, &path, cmd, Some(staged));
        }
    };
    record(call, &path, cmd, None)
}

/// Runs `cmd` for `call`, with its `call` and `called` lines around it; removes the staged
/// copy of a chroot run afterwards.
fn record(
    call: &Call,
    path: &Path,
    mut cmd: Command,
    staged: Option<tempfile::TempDir>,
) -> Result<i32> {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let status_file = call.status_file.as_deref();
    append(
        status_file,
        &format!("call\t{}\t{}\t{epoch:.3}", call.caller, call.hook),
    )?;
    let started = Instant::now();
    let status = cmd.status();
    drop(staged);
    let status = status.with_context(|| format!("running {}", path.display()))?;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    append(
        status_file,
        &format!(
            "called\t{}\t{}\t{code}\t{:.3}",
            call.caller,
            call.hook,
            started.elapsed().as_secs_f64()
        ),
    )?;
    Ok(code)
}

/// The call records among a status file's lines (other lines are the runner's).
#[must_use]
pub fn read(plan: &Plan, text: &str) -> Vec<CallRecord> {
    let mut out: Vec<CallRecord> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        let record = |caller: &str, hook: &str| {
            let (phase, script) = hook.split_once('/').unwrap_or(("", hook));
            CallRecord {
                caller: caller.to_owned(),
                phase: phase.to_owned(),
                script: script.to_owned(),
                element: plan.element_of(phase, script),
                status: -1,
                seconds: 0.0,
                skipped: None,
            }
        };
        match parts.as_slice() {
            ["call", caller, hook, _] => out.push(record(caller, hook)),
            ["called", caller, hook, rc, secs] => {
                let found = out.iter_mut().rev().find(|r| {
                    r.caller == *caller
                        && format!("{}/{}", r.phase, r.script) == *hook
                        && r.skipped.is_none()
                        && r.status == -1
                });
                if let Some(r) = found {
                    r.status = rc.parse().unwrap_or(-1);
                    r.seconds = secs.parse().unwrap_or(0.0);
                }
            }
            ["skip", caller, hook, reason] => {
                let mut r = record(caller, hook);
                r.status = 0;
                r.skipped = Some((*reason).to_owned());
                out.push(r);
            }
            _ => {}
        }
    }
    out
}

/// Where the calls made differ from the calls the plan declares: a call made that is not
/// declared, and a declared call without a condition whose caller ran but that never ran.
#[must_use]
pub fn drift(plan: &Plan, ran: &[(String, String)], calls: &[CallRecord]) -> Vec<String> {
    let mut out = Vec::new();
    for c in calls.iter().filter(|c| c.skipped.is_none()) {
        let declared = plan.phases.iter().any(|p| {
            p.scripts.iter().any(|s| {
                c.caller == format!("{}/{}", p.phase, s.name)
                    && s.calls
                        .iter()
                        .any(|d| d.phase == c.phase && d.name == c.script)
            })
        });
        if !declared {
            out.push(format!(
                "ran but not planned: {}/{} (run by {})",
                c.phase, c.script, c.caller
            ));
        }
    }
    for p in &plan.phases {
        for s in &p.scripts {
            let caller = format!("{}/{}", p.phase, s.name);
            let caller_ran = ran
                .iter()
                .any(|(ph, n)| *ph == p.phase.dir() && *n == s.name)
                || calls
                    .iter()
                    .any(|c| c.skipped.is_none() && c.phase == p.phase.dir() && c.script == s.name);
            if !caller_ran {
                continue;
            }
            for d in s.calls.iter().filter(|d| d.when.is_none()) {
                let made = calls.iter().any(|c| {
                    c.skipped.is_none()
                        && c.caller == caller
                        && c.phase == d.phase
                        && c.script == d.name
                });
                if !made {
                    out.push(format!(
                        "planned but not run: {}/{} (run by {caller})",
                        d.phase, d.name
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::calls::PlanCall;
    use crate::order::plan::{PlanPhase, PlanScript};

    fn script(name: &str, calls: Vec<PlanCall>) -> PlanScript {
        PlanScript {
            name: name.to_owned(),
            element: "e".to_owned(),
            path: String::new(),
            note: None,
            calls,
        }
    }

    fn call(name: &str, when: Option<&str>) -> PlanCall {
        PlanCall {
            phase: "root.d".to_owned(),
            name: name.to_owned(),
            element: "e".to_owned(),
            when: when.map(str::to_owned),
            declared: "e/hook-calls:1".to_owned(),
        }
    }

    fn plan() -> Plan {
        Plan {
            request: Vec::new(),
            elements: Vec::new(),
            provided: std::collections::BTreeMap::new(),
            phases: vec![PlanPhase {
                phase: crate::element::model::Phase::RootD,
                chroot: false,
                exists: true,
                scripts: vec![
                    script(
                        "10-a",
                        vec![call("55-b", Some("fresh")), call("60-c", Some("fresh"))],
                    ),
                    script("55-b", Vec::new()),
                    script("60-c", vec![call("85-d", None)]),
                    script("85-d", Vec::new()),
                ],
            }],
            environment: Vec::new(),
            skipped: Vec::new(),
            problems: Vec::new(),
        }
    }

    #[test]
    fn only_phase_scripts_of_the_hooks_tree_are_run() {
        assert!(check_hook("pre-install.d/85-dpkg-apt-update").is_ok());
        for bad in [
            "85-dpkg-apt-update",
            "/etc/passwd",
            "root.d/../../../bin/sh",
            "root.d/sub/script",
            "root.d/..",
            "root.d/",
            "nosuch.d/10-a",
            "root.d/10-a\tinjected",
        ] {
            assert!(check_hook(bad).is_err(), "{bad} accepted");
        }
        let call = Call {
            caller: "root.d/10-a".to_owned(),
            hook: "/bin/true".to_owned(),
            hooks: PathBuf::from("/"),
            chroot: None,
            args: Vec::new(),
            status_file: None,
        };
        assert!(run(&call).is_err(), "an absolute path runs nothing");
    }

    #[test]
    fn hook_names_come_from_the_callers_path() {
        assert_eq!(
            hook_name("/tmp/b/hooks/root.d/10-debootstrap"),
            "root.d/10-debootstrap"
        );
        assert_eq!(hook_name("root.d/10-a"), "root.d/10-a");
        assert_eq!(hook_name("10-a"), "10-a");
    }

    #[test]
    fn status_lines_become_call_records() {
        let text = "start\t10-a\t1.0\ncall\troot.d/10-a\troot.d/55-b\t1.5\ncalled\troot.d/10-a\troot.d/55-b\t0\t2.250\nskip\troot.d/10-a\troot.d/60-c\tthe tree came from the cache\ncall\troot.d/60-c\troot.d/85-d\t3\nend\t10-a\t0\t3.0\n";
        let got = read(&plan(), text);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (
                got[0].caller.as_str(),
                got[0].script.as_str(),
                got[0].status,
                got[0].seconds
            ),
            ("root.d/10-a", "55-b", 0, 2.25)
        );
        assert_eq!(
            got[1].skipped.as_deref(),
            Some("the tree came from the cache")
        );
        assert_eq!(got[2].status, -1, "never ended");
    }

    #[test]
    fn drift_names_undeclared_calls_and_missing_unconditional_ones() {
        let p = plan();
        let ran: Vec<(String, String)> = ["10-a", "55-b", "60-c", "85-d"]
            .iter()
            .map(|n| ("root.d".to_owned(), (*n).to_owned()))
            .collect();
        // Conditional calls may not happen; 60-c's unconditional call must.
        let none = drift(&p, &ran, &[]);
        assert_eq!(
            none,
            ["planned but not run: root.d/85-d (run by root.d/60-c)"]
        );
        let text = "call\troot.d/10-a\troot.d/55-b\t1\ncalled\troot.d/10-a\troot.d/55-b\t0\t1\ncall\troot.d/60-c\troot.d/85-d\t1\ncall\troot.d/55-b\troot.d/85-d\t1\n";
        let calls = read(&p, text);
        assert_eq!(
            drift(&p, &ran, &calls),
            ["ran but not planned: root.d/85-d (run by root.d/55-b)"]
        );
        // A skip is no run.
        let calls = read(&p, "skip\troot.d/60-c\troot.d/85-d\tno need\n");
        assert_eq!(drift(&p, &ran, &calls).len(), 1);
    }

    #[test]
    fn run_records_the_call_and_its_status() {
        let tmp = tempfile::tempdir().unwrap();
        let hooks = tmp.path().join("hooks");
        std::fs::create_dir_all(hooks.join("root.d")).unwrap();
        let script = hooks.join("root.d/55-b");
        std::fs::write(
            &script,
            "#!/bin/bash\necho \"$1\" > \"${0%/*}/out\"\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let status = tmp.path().join("status");
        let c = Call {
            caller: "root.d/10-a".to_owned(),
            hook: "root.d/55-b".to_owned(),
            hooks: hooks.clone(),
            chroot: None,
            args: vec!["arg".to_owned()],
            status_file: Some(status.clone()),
        };
        assert_eq!(run(&c).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(hooks.join("root.d/out")).unwrap(),
            "arg\n"
        );
        skip(&c, "a\treason").unwrap();
        let got = read(&plan(), &std::fs::read_to_string(&status).unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].status, got[0].skipped.as_deref()), (3, None));
        assert_eq!(got[1].skipped.as_deref(), Some("a reason"));
        let missing = Call {
            hook: "root.d/99-z".to_owned(),
            ..c
        };
        assert!(
            run(&missing)
                .unwrap_err()
                .to_string()
                .contains("root.d/99-z is not a script")
        );
    }
}
