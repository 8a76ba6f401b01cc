//! The one way the engine runs a host tool: [`run`] checks the exit status and puts the
//! command line and its stderr into the error; [`best_effort`] is for steps whose failure
//! does not stop the build (a trim, a sync), and logs it instead; [`run_until`] is for a
//! long-running tool that an interrupt must stop.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// The error [`run_until`] returns when `stop` was raised: the tool was killed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// [`run`] for a long-running tool that an interrupt must not outlive: while it runs,
/// `stop` is polled, and once raised the tool is killed and reaped and [`Interrupted`] is
/// returned; it is killed too when this process is (SIGKILL). Its stdout is discarded
/// (the tool writes to a file); stderr goes into the error.
///
/// # Errors
/// The tool cannot be started, exits unsuccessfully, or `stop` was raised.
pub fn run_until(cmd: &mut Command, stop: &AtomicBool) -> Result<()> {
    let shown = shown(cmd);
    super::sys::proc::die_with_parent(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown} (is it installed and on PATH?)"))?;
    // Read stderr on the side, so a chatty tool never blocks on a full pipe.
    let mut stderr = child.stderr.take().context("the tool's stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).ok();
        text
    });
    let status = loop {
        if stop.load(Ordering::SeqCst) {
            // Already gone is fine: it is reaped below either way.
            child.kill().ok();
            child.wait().ok();
            reader.join().ok();
            return Err(Interrupted.into());
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{shown} failed ({status}): {}",
            String::from_utf8_lossy(&err).trim()
        );
    }
    Ok(())
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

/// Runs `first | second`, with `second`'s stdout going to `out` (a file opened to append,
/// say); both must succeed. A failure carries the failing command line and its stderr.
///
/// # Errors
/// Either tool cannot be started or exits unsuccessfully.
pub fn pipeline(first: &mut Command, second: &mut Command, out: std::fs::File) -> Result<()> {
    let (shown_first, shown_second) = (shown(first), shown(second));
    let mut head = first
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown_first} (is it installed and on PATH?)"))?;
    let pipe = head.stdout.take().context("the tool's stdout")?;
    let tail = second
        .stdin(pipe)
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown_second} (is it installed and on PATH?)"));
    let tail = match tail {
        Ok(t) => t,
        Err(e) => {
            // Nothing reads its output any more; it ends on the broken pipe.
            head.kill().ok();
            head.wait().ok();
            return Err(e);
        }
    };
    let head_out = head.wait_with_output()?;
    let tail_out = tail.wait_with_output()?;
    for (shown, out) in [(shown_first, head_out), (shown_second, tail_out)] {
        if !out.status.success() {
            bail!(
                "{shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_until_kills_the_tool_when_stopped_and_reports_failures() {
        let stop = AtomicBool::new(false);
        run_until(Command::new("true").arg("x"), &stop).unwrap();
        let e = run_until(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            &stop,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("broken"), "{e:#}");
        stop.store(true, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let e = run_until(Command::new("sleep").arg("30"), &stop).unwrap_err();
        assert!(e.is::<Interrupted>(), "{e:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_pipeline_appends_to_the_file_and_reports_the_failing_side() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "first\n").unwrap();
        let append = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
        };
        pipeline(
            Command::new("printf").arg("second\\n"),
            Command::new("tr").args(["a-z", "A-Z"]),
            append(),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nSECOND\n");
        let e = pipeline(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            &mut Command::new("cat"),
            append(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("broken"), "{e:#}");
        let e = pipeline(
            Command::new("printf").arg("x"),
            Command::new("sh").args(["-c", "cat >/dev/null; exit 4"]),
            append(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("exit status: 4"), "{e:#}");
    }
}
