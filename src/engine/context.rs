//! A build in progress: the resolved options and plan, the build's directories, the
//! environment hooks see, the ledger of mounts and loop devices, what ran, the log and the
//! progress sink. Every stage is a function of it.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::disk::Image;
use super::ledger::Ledger;
use super::options::{Options, OutputType};
use super::sink::{Event, Sink};
use crate::error::Failure;
use crate::order::plan::Plan;

/// The build's directories.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `$TMP_BUILD_DIR`.
    pub build: PathBuf,
    pub hooks: PathBuf,
    /// The image root (`$TMP_MOUNT_PATH`, `$TARGET_ROOT`).
    pub mnt: PathBuf,
    pub image_dir: PathBuf,
    /// The embedded elements written out for hooks that read element directories.
    pub builtin_dir: PathBuf,
    /// Where the tree waits while the disk image is made.
    pub built: PathBuf,
}

impl Paths {
    /// The directories of a build directory.
    #[must_use]
    pub fn new(build: PathBuf) -> Self {
        Self {
            hooks: build.join("hooks"),
            mnt: build.join("mnt"),
            image_dir: build.join("image"),
            builtin_dir: build.join("builtin-elements"),
            built: build.join("built"),
            build,
        }
    }
}

/// What ran, for the manifest and the timing table.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScriptRecord {
    pub phase: String,
    pub script: String,
    pub element: String,
    pub status: i32,
    pub seconds: f64,
    /// The script ran in the build that made a tree this build reused from the build cache
    /// (`seconds` are that build's); it did not run in this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// What a finished build produced.
#[derive(Debug)]
pub struct Summary {
    /// Each output written, with its type.
    pub outputs: Vec<(OutputType, PathBuf)>,
    pub manifest: PathBuf,
    pub log: PathBuf,
    pub records: Vec<ScriptRecord>,
    /// Where the plan and what ran differ (scripts added or removed during the build).
    pub drift: Vec<String>,
}

/// The build log: held in memory until the workspace step opens the file (preflight must
/// not write anything when it refuses to build), then written straight to it.
#[derive(Debug, Default)]
pub struct Log {
    file: Option<File>,
    pending: Vec<u8>,
}

impl Log {
    /// Opens the log file, with what was logged so far.
    pub fn open(&mut self, mut file: File) -> std::io::Result<()> {
        file.write_all(&std::mem::take(&mut self.pending))?;
        self.file = Some(file);
        Ok(())
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => self.pending.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// A build in progress.
pub struct Build<'a> {
    pub opts: Options,
    pub plan: Plan,
    pub lib: &'a crate::element::discover::Library,
    /// Set once the workspace step made the build directory.
    pub paths: Option<Paths>,
    pub env_outside: Vec<(String, String)>,
    pub env_inside: Vec<(String, String)>,
    pub ledger: Ledger,
    pub records: Vec<ScriptRecord>,
    /// Scripts run (or skipped) by other scripts through `dibkit run-hook`.
    pub calls: Vec<super::calls::CallRecord>,
    pub sink: &'a mut dyn Sink,
    pub log: Log,
    pub interrupted: Arc<AtomicBool>,
    /// The disk image while it exists.
    pub image: Option<Image>,
    pub outputs: Vec<(OutputType, PathBuf)>,
    pub summary: Option<Summary>,
    /// The build's entry in the registry of running builds, from the workspace step on.
    pub registration: Option<super::stale::Registration>,
    /// The build cache: its keys, and which phases' tree came from it.
    pub cache: super::stages::cache::State,
}

impl Build<'_> {
    /// The build's directories (the workspace step comes first in every step list).
    ///
    /// # Panics
    /// Before the workspace step: a step list out of order.
    #[must_use]
    pub fn paths(&self) -> &Paths {
        self.paths
            .as_ref()
            .expect("the workspace step comes before every step that uses it")
    }

    /// Sets a variable for every later hook, on the host and in the chroot.
    pub fn set_env(&mut self, key: &str, value: &str) {
        for env in [&mut self.env_outside, &mut self.env_inside] {
            env.retain(|(k, _)| k != key);
            env.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Tells the user about a step, and writes it to the log.
    pub fn step(&mut self, text: &str) {
        self.sink.event(Event::Step(text));
        self.log_line(text);
    }

    /// A line in the build log. A log that cannot be written loses the line; the build
    /// goes on (its outcome is reported on the terminal either way).
    pub fn log_line(&mut self, text: &str) {
        writeln!(self.log, "{text}").ok();
    }

    /// Stops the build when a signal came in.
    pub fn check_interrupted(&self) -> Result<(), Failure> {
        if self.interrupted.load(Ordering::SeqCst) {
            Err(Failure::interrupted())
        } else {
            Ok(())
        }
    }
}
