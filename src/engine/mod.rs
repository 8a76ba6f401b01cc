//! The build engine behind `dibkit build`: runs the elements' scripts for real, on the host
//! and in a chroot, where and when dib would, and exports the root filesystem or disk image.
//!
//! The pipeline, from command to code:
//! - [`options`]: what to build, resolved once from the arguments and the environment at
//!   the CLI edge;
//! - [`steps`]: the build as one list of [`Step`]s, which `--dry-run` prints and [`run`]
//!   executes;
//! - [`stages`]: the functions the steps call, one module per part of the pipeline;
//! - [`context`]: the build in progress that every stage works on;
//! - [`ledger`]: every mount and loop device the build attached, released in reverse;
//! - [`space`]: a failure from a full filesystem, told as the step and what filled up;
//! - [`stale`]: the registry of running builds, and the release of what killed ones left;
//! - [`cmd`]: the one way a host tool is run; [`sys`]: the only system calls;
//! - [`sink`]: progress events for the caller to show (the engine never prints).
//!
//! Each phase's hooks come from the hooks tree when the phase starts, listed by
//! `order::tree` with the plan's own rules; `run-parts.bash` only runs that list.

pub mod calls;
pub mod cmd;
pub mod context;
pub mod disk;
pub mod env;
pub mod hooks;
pub mod host_ca;
pub mod ledger;
pub mod options;
pub mod qcow2;
pub mod sink;
pub mod space;
pub mod stages;
pub mod stale;
pub mod steps;
pub mod sys;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;

pub use context::{ScriptRecord, Summary};
pub use options::{DiskOptions, Library, Options, OutputType};
pub use sink::{Event, Sink};
pub use steps::{Step, render, steps};

use crate::element::discover;
use crate::error::{Failure, exit};
use crate::order::plan::Plan;

/// The prefix of the log line written as each step starts (the dry run prints the same
/// descriptions).
pub const STEP_LOG_PREFIX: &str = "dibkit step: ";

/// Runs `steps` (from [`steps()`]) for `plan`. Mounts, loop devices and the build directory
/// are released on every path out; the primary error is reported, cleanup problems go to
/// the log.
///
/// # Errors
/// A step failed (see [`crate::error::exit`] for the statuses) or the cleanup did.
pub fn run(
    opts: Options,
    lib: &discover::Library,
    plan: Plan,
    steps: &[Step],
    sink: &mut dyn Sink,
) -> Result<Summary, Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted))
            .context("installing the signal handlers")?;
    }
    let log_path = opts.log.clone();
    let keep_on_error = opts.keep_on_error;
    let mut b = context::Build {
        opts,
        plan,
        lib,
        paths: None,
        env_outside: Vec::new(),
        env_inside: Vec::new(),
        ledger: ledger::Ledger::default(),
        records: Vec::new(),
        calls: Vec::new(),
        sink,
        log: context::Log::default(),
        interrupted,
        image: None,
        outputs: Vec::new(),
        summary: None,
        registration: None,
        cache: stages::cache::State::default(),
    };
    let result = execute(&mut b, steps);
    stages::cache::settle(&mut b);
    let keep = result.is_err() && keep_on_error;
    b.sink
        .event(Event::Status("unmounting and removing the build directory"));
    let cleanup = stages::host::teardown(&mut b, keep);
    if cleanup.is_ok() {
        if let Some(r) = b.registration.take() {
            r.finish();
        }
    }
    let kept = if keep {
        b.paths.as_ref().map(|p| p.build.clone())
    } else {
        None
    };
    let result = match (result, cleanup) {
        (Ok(()), Ok(())) => b
            .summary
            .take()
            .context("the step list ends with the manifest")
            .map_err(Failure::from),
        (Ok(()), Err(e)) => Err(Failure::from(e)),
        (Err(failure), cleanup) => {
            if let Err(c) = cleanup {
                b.log_line(&format!("cleanup after the failure also failed: {c:#}"));
            }
            Err(failure)
        }
    };
    result.map_err(|mut failure| {
        if let Some(dir) = kept {
            failure.notes.insert(
                0,
                format!(
                    "kept the build directory {} (--keep-on-error); unmounted",
                    dir.display()
                ),
            );
        }
        if failure.code != exit::PREFLIGHT && failure.hint.is_none() {
            failure.hint = Some(format!("the full log is {}", log_path.display()));
        }
        failure
    })
}

/// Runs the steps in order, stopping at the first failure or signal.
fn execute(b: &mut context::Build<'_>, steps: &[Step]) -> Result<(), Failure> {
    for step in steps {
        b.check_interrupted()?;
        let text = step.describe(&b.opts, &b.plan);
        b.log_line(&format!("{STEP_LOG_PREFIX}{text}"));
        let started = std::time::Instant::now();
        // Diagnosed here, while the build's filesystems are still mounted.
        step.run(b).map_err(|f| space::diagnose(b, step, f))?;
        // Not a step line (those are the dry run's list): how long the step took.
        b.log_line(&format!(
            "dibkit step took {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    }
    b.check_interrupted()
}
