//! What the user sees while a build runs: the engine's progress events drawn on stderr, on
//! a terminal as an indicatif spinner line (phase, script, element, elapsed), plain lines
//! otherwise. The timing table is printed by `build.rs`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Event, Sink};

/// Progress reporting on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    verbose: bool,
}

impl Progress {
    #[must_use]
    pub fn new(verbose: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            start: Instant::now(),
            verbose,
        }
    }

    fn elapsed(&self) -> String {
        format!("{:>6.1}s", self.start.elapsed().as_secs_f64())
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                // A closed stderr loses progress, not the build.
                writeln!(std::io::stderr().lock(), "{text}").ok();
            }
        }
    }

    /// A build step that is not a script (mounting, exporting).
    fn step(&self, text: &str) {
        self.line(&format!("{} {text}", self.elapsed()));
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// A script starts.
    fn script(&self, phase: &str, index: usize, total: usize, name: &str, element: &str) {
        let text = format!("{phase} [{index}/{total}] {name} ({element})");
        match &self.bar {
            Some(bar) => {
                if self.verbose {
                    bar.println(format!("{} {text}", self.elapsed()));
                }
                bar.set_message(text);
            }
            None => self.line(&format!("{} {text}", self.elapsed())),
        }
    }

    /// Output of a script (shown only with --verbose).
    fn output(&self, line: &str) {
        if self.verbose {
            self.line(&format!("    {line}"));
        }
    }

    /// A transient status on the spinner line (nothing on a plain stream).
    fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// Clears the spinner line (before the summary or an error).
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(String::new());
        }
    }
}

impl Sink for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Step(text) => self.step(text),
            Event::Script {
                phase,
                index,
                total,
                name,
                element,
            } => self.script(phase, index, total, name, element),
            Event::Output(line) => self.output(line),
            Event::Status(text) => self.status(text),
            Event::PhaseEnd => self.finish(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
