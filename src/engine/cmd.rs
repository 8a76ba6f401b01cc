//! The one way the engine runs a host tool: [`run`] checks the exit status and puts the
//! command line and its stderr into the error; [`best_effort`] is for steps whose failure
//! does not stop the build (a trim, a sync), and logs it instead.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The command line as the user would type it again.
#[must_use]
pub fn shown(cmd: &Command) -> String {
    format!("{cmd:?}").replace('"', "")
}

/// Runs a host tool and returns its stdout; a failure carries the command line and stderr.
///
/// # Errors
/// The tool cannot be started or exits unsuccessfully.
pub fn run(cmd: &mut Command) -> Result<String> {
    let shown = shown(cmd);
    let out = cmd
        .output()
        .with_context(|| format!("running {shown} (is it installed and on PATH?)"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`run`] with `input` on the tool's stdin.
///
/// # Errors
/// The tool cannot be started, its stdin cannot be written, or it exits unsuccessfully.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Result<String> {
    let shown = shown(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown} (is it installed and on PATH?)"))?;
    child
        .stdin
        .take()
        .context("the tool's stdin")?
        .write_all(input)
        .with_context(|| format!("writing to {shown}"))?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a host tool whose failure the build survives; a failure is written to `log`.
/// Returns whether it succeeded.
pub fn best_effort(cmd: &mut Command, log: &mut dyn Write) -> bool {
    cmd.stdin(Stdio::null());
    match run(cmd) {
        Ok(_) => true,
        Err(e) => {
            // The log is the only place left to report to; a full disk loses the line.
            writeln!(log, "note (best effort, build continues): {e:#}").ok();
            false
        }
    }
}
