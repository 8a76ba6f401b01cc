//! How bad a finding is: one type for the plan's problems and lint's diagnostics, so a plan
//! problem and the lint finding that reports it cannot disagree on the scale.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. `Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// dib runs, but not as the author probably expects, or not reproducibly.
    Warning,
    /// dib fails on this (or, in lint, the rule is an error by default).
    Error,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
