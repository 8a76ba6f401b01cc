//! What the user sees while a build runs: one status line on a terminal (phase, script,
//! element, elapsed), plain lines otherwise, and the timing table at the end.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Progress reporting on stderr.
pub struct Progress {
    tty: bool,
    start: Instant,
    pub verbose: bool,
}

impl Progress {
    #[must_use]
    pub fn new(verbose: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            verbose,
        }
    }

    fn elapsed(&self) -> String {
        format!("{:>6.1}s", self.start.elapsed().as_secs_f64())
    }

    /// A build step that is not a script (mounting, exporting).
    pub fn step(&self, text: &str) {
        self.line(&format!("{} {text}", self.elapsed()), true);
    }

    /// A script starts.
    pub fn script(&self, phase: &str, index: usize, total: usize, name: &str, element: &str) {
        let text = format!(
            "{} {phase} [{index}/{total}] {name} ({element})",
            self.elapsed()
        );
        self.line(&text, !self.tty || self.verbose);
    }

    /// Output of a script (shown only with --verbose).
    pub fn output(&self, line: &str) {
        if self.verbose {
            self.clear();
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "    {line}");
        }
    }

    fn clear(&self) {
        if self.tty {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }

    /// On a terminal a transient line is overwritten by the next one; `keep` keeps it.
    fn line(&self, text: &str, keep: bool) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{text}");
            if keep {
                let _ = writeln!(err);
            }
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "{text}");
        }
    }

    /// Ends a transient line.
    pub fn finish(&self) {
        self.clear();
    }
}
