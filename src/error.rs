//! The one failure type: what went wrong in words (a message, notes, a hint) and the exit
//! status it maps to. Every command returns it; only `cli::run` prints it.
//!
//! Exit statuses (each command's `--help` lists the ones it uses): 0 success; 1 the input
//! cannot work (findings, an unresolvable element set, a plan dib would refuse); 2 usage,
//! configuration or I/O error; 3 a build hook failed; 4 the host is not ready for a build;
//! 5 the build machinery failed; 130 interrupted.

/// Exit statuses, by meaning.
pub mod exit {
    /// The input cannot work: findings at error level, a set that does not resolve.
    pub const REJECTED: u8 = 1;
    /// Usage, configuration or I/O error.
    pub const USAGE: u8 = 2;
    /// A build hook failed.
    pub const HOOK: u8 = 3;
    /// The host is not ready for a build (not root, missing tools, space, output exists).
    pub const PREFLIGHT: u8 = 4;
    /// The build machinery failed (a mount, a host tool, the disk image).
    pub const MACHINERY: u8 = 5;
    /// Interrupted by SIGINT, SIGTERM or SIGHUP.
    pub const INTERRUPTED: u8 = 130;
}

/// A failure the user must see: one line, notes, a hint, and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub notes: Vec<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Failure {
    /// A failure with no notes.
    pub fn new(code: u8, message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            notes: Vec::new(),
            hint,
        }
    }

    /// A usage, configuration or I/O error (exit status 2).
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Self {
        Self::new(exit::USAGE, message, hint)
    }

    /// The host is not ready for a build (exit status 4).
    pub fn preflight(message: impl Into<String>) -> Self {
        Self::new(exit::PREFLIGHT, message, None)
    }

    /// The build was interrupted (exit status 130).
    #[must_use]
    pub fn interrupted() -> Self {
        Self::new(exit::INTERRUPTED, "interrupted", None)
    }

    #[must_use]
    pub fn is_interrupted(&self) -> bool {
        self.code == exit::INTERRUPTED
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Anything else the build machinery reports (exit status 5), with its whole context chain.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::new(exit::MACHINERY, format!("{e:#}"), None)
    }
}

/// The last `n` lines of `text`, for a failure's notes.
#[must_use]
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_lines_keeps_the_end_in_order() {
        assert_eq!(super::last_lines("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(super::last_lines("a\nb", 5), ["a", "b"]);
        assert!(super::last_lines("", 3).is_empty());
    }
}
