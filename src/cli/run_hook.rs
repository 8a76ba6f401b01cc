//! `dibkit run-hook`: how a phase script runs another phase script itself (a hook call
//! declared in an element's `hook-calls`), so the build records the run with its caller.
//! Internal: elements call it as `"${DIBKIT:-dibkit}" run-hook --caller "$0" PHASE/SCRIPT`.

use std::path::PathBuf;

use clap::Parser;

use super::Failure;
use crate::engine::calls;

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct Args {
    /// The calling script: its path in the hooks tree (`"$0"`) or `PHASE/SCRIPT`.
    #[arg(long, value_name = "PATH")]
    pub caller: String,
    /// Do not run the script; record that the caller skips it, and why.
    #[arg(long, value_name = "REASON")]
    pub skip: Option<String>,
    /// Run the script in this root: a copy in the root's /tmp, run by path with its shebang,
    /// standard input from /dev/null, dib's PATH and without TMPDIR.
    #[arg(long, value_name = "ROOT")]
    pub chroot: Option<PathBuf>,
    /// The hooks tree (default `$TMP_HOOKS_PATH`).
    #[arg(long, value_name = "DIR", env = "TMP_HOOKS_PATH")]
    pub hooks: PathBuf,
    /// The status file the run is recorded in (set by dibkit's phase runner; without it
    /// nothing is recorded).
    #[arg(long, value_name = "FILE", env = "DIBKIT_STATUS_FILE")]
    pub status_file: Option<PathBuf>,
    /// The script to run, as `PHASE/SCRIPT` (e.g. `root.d/55-debian-apt-sources`).
    #[arg(value_name = "PHASE/SCRIPT")]
    pub hook: String,
    /// Arguments for the script.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Runs (or records skipping) the script; the exit status is the script's.
///
/// # Errors
/// The script is not in the hooks tree or cannot be started, or the status file cannot be
/// written (exit status 2).
pub fn run(args: &Args) -> Result<u8, Failure> {
    let call = calls::Call {
        caller: calls::hook_name(&args.caller).replace(['\t', '\n'], " "),
        hook: args.hook.clone(),
        hooks: args.hooks.clone(),
        chroot: args.chroot.clone(),
        args: args.args.clone(),
        status_file: args.status_file.clone(),
    };
    let fail = |e: anyhow::Error| {
        Failure::usage(
            format!("run-hook {}: {e:#}", args.hook),
            Some(
                "run-hook runs a script of the hooks tree named PHASE/SCRIPT (e.g. \
                 `pre-install.d/85-dpkg-apt-update`); declare the call in the calling \
                 element's `hook-calls`"
                    .to_owned(),
            ),
        )
    };
    if let Some(reason) = &args.skip {
        calls::skip(&call, reason).map_err(fail)?;
        return Ok(0);
    }
    let code = calls::run(&call).map_err(fail)?;
    Ok(u8::try_from(code).unwrap_or(1))
}
