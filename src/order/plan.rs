//! The execution plan: what `dibkit order` prints and what `dibkit build` will execute. Plain
//! serialisable data; `simulate.rs` computes it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::element::model::Phase;

/// Everything dib would do with a request, before any build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The request as disk-image-create forms it (`base` first, the `vm` rule applied).
    pub request: Vec<String>,
    /// The expanded element set, sorted by name.
    pub elements: Vec<PlanElement>,
    /// Virtual name → the element providing it.
    pub provided: BTreeMap<String, String>,
    /// All ten phases in run order.
    pub phases: Vec<PlanPhase>,
    /// environment.d files in the order they are sourced before each phase.
    pub environment: Vec<PlanScript>,
    /// Files in phase or environment.d directories that dib never runs or sources.
    pub skipped: Vec<Skipped>,
    pub problems: Vec<Problem>,
}

impl Plan {
    /// The element a planned script of the phase directory `phase` comes from, or
    /// `(added during the build)` for a script the plan does not have.
    #[must_use]
    pub fn element_of(&self, phase: &str, name: &str) -> String {
        self.phases
            .iter()
            .find(|p| p.phase.dir() == phase)
            .and_then(|p| p.scripts.iter().find(|s| s.name == name))
            .map_or_else(
                || "(added during the build)".to_owned(),
                |s| s.element.clone(),
            )
    }

    /// Whether any problem makes dib fail.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanElement {
    pub name: String,
    /// The element directory (`builtin:NAME` for the embedded library).
    pub path: String,
    /// The `ELEMENTS_PATH` entry it came from, or `builtin`.
    pub origin: String,
    pub requested: bool,
    /// For requested elements the user did not name: the disk-image-create rule that added it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_by: Option<&'static str>,
    /// Elements of the set whose `element-deps` name it (directly or through a virtual name).
    pub required_by: Vec<String>,
    /// The path the expansion took: a requested element first, this one last.
    pub chain: Vec<String>,
    pub deps: Vec<String>,
    pub provides: Vec<String>,
    /// Paths of other copies with the same name that this one hides.
    pub shadows: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanPhase {
    pub phase: Phase,
    /// Runs inside the image chroot.
    pub chroot: bool,
    /// Whether any element has this directory; without it dib skips the phase entirely,
    /// environment.d included.
    pub exists: bool,
    pub scripts: Vec<PlanScript>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanScript {
    pub name: String,
    pub element: String,
    pub path: String,
    /// For entries dib itself writes rather than an element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// Other phase scripts this one runs itself (declared in an element's `hook-calls`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<super::calls::PlanCall>,
}

/// The environment file disk-image-create writes into the hooks tree after `root.d`.
pub const INSTALL_TYPE_ENV: &str = "11-dib-install-type.bash";

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// `install.d`, ... or `environment.d`.
    pub phase: String,
    pub name: String,
    pub element: String,
    pub reason: SkipReason,
    pub path: String,
    /// The reason in words.
    pub message: String,
}

/// Why dib never runs (or sources) a file of a phase or environment.d directory. Serialised
/// as a stable kebab-case code (`not-executable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// A regular file without an exec bit (hooks only).
    NotExecutable,
    /// The name fails dib-run-parts' or environment.d's name filter.
    BadName,
    /// A symlink whose target is missing once copied into the hooks tree.
    DanglingSymlink,
    /// A directory: dib-run-parts never descends.
    Directory,
    /// A dotfile: dib copies with `ls`, which never lists it.
    Hidden,
    /// A socket, fifo or device.
    NotAFile,
}

impl SkipReason {
    pub const ALL: [SkipReason; 6] = [
        SkipReason::NotExecutable,
        SkipReason::BadName,
        SkipReason::DanglingSymlink,
        SkipReason::Directory,
        SkipReason::Hidden,
        SkipReason::NotAFile,
    ];

    /// The stable code, as serialised.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotExecutable => "not-executable",
            SkipReason::BadName => "bad-name",
            SkipReason::DanglingSymlink => "dangling-symlink",
            SkipReason::Directory => "directory",
            SkipReason::Hidden => "hidden",
            SkipReason::NotAFile => "not-a-file",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::severity::Severity;

/// What is wrong with a plan. Serialised as a stable kebab-case code (`duplicate-hook`).
/// Each kind has one severity, and lint reports each kind through exactly one rule
/// (`lint::registry::problem_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// dib's expansion of the request depends on Python set order.
    SetOrder,
    /// Two elements ship the same file name in the same hooks-tree directory.
    DuplicateHook,
    /// A hooks-tree entry has whitespace in its name, which dib's copy splits.
    UnsafeName,
    /// environment.d exists but dib sources none of its files.
    EnvironmentEmpty,
    /// An element's environment.d file is replaced by dib's own file of that name.
    EnvironmentOverwritten,
    /// A hook in a chroot phase is an absolute symlink, resolved inside the image.
    AbsoluteSymlink,
    /// Scripts of different elements share a numeric prefix in one phase.
    OrderTie,
    /// A line of an element's `hook-calls` is malformed.
    #[serde(rename = "hook-calls")]
    HookCallsInvalid,
    /// A declared hook call names a script no element of the set has.
    HookCallMissing,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 9] = [
        ProblemKind::SetOrder,
        ProblemKind::DuplicateHook,
        ProblemKind::UnsafeName,
        ProblemKind::EnvironmentEmpty,
        ProblemKind::EnvironmentOverwritten,
        ProblemKind::AbsoluteSymlink,
        ProblemKind::OrderTie,
        ProblemKind::HookCallsInvalid,
        ProblemKind::HookCallMissing,
    ];

    /// The stable code, as serialised.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::SetOrder => "set-order",
            ProblemKind::DuplicateHook => "duplicate-hook",
            ProblemKind::UnsafeName => "unsafe-name",
            ProblemKind::EnvironmentEmpty => "environment-empty",
            ProblemKind::EnvironmentOverwritten => "environment-overwritten",
            ProblemKind::AbsoluteSymlink => "absolute-symlink",
            ProblemKind::OrderTie => "order-tie",
            ProblemKind::HookCallsInvalid => "hook-calls",
            ProblemKind::HookCallMissing => "hook-call-missing",
        }
    }

    /// Whether dib fails on it ([`Severity::Error`]) or runs anyway.
    #[must_use]
    pub fn severity(self) -> Severity {
        match self {
            ProblemKind::DuplicateHook
            | ProblemKind::UnsafeName
            | ProblemKind::EnvironmentEmpty
            | ProblemKind::HookCallsInvalid => Severity::Error,
            ProblemKind::SetOrder
            | ProblemKind::EnvironmentOverwritten
            | ProblemKind::AbsoluteSymlink
            | ProblemKind::OrderTie
            | ProblemKind::HookCallMissing => Severity::Warning,
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub severity: Severity,
    pub message: String,
    pub elements: Vec<String>,
    pub paths: Vec<String>,
}

impl Problem {
    /// A problem of `kind`, with the kind's severity.
    #[must_use]
    pub fn new(
        kind: ProblemKind,
        message: String,
        elements: Vec<String>,
        paths: Vec<String>,
    ) -> Self {
        Self {
            kind,
            severity: kind.severity(),
            message,
            elements,
            paths,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_they_display() {
        for k in ProblemKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for r in SkipReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
