//! The execution plan: what `dibkit order` prints and what `dibkit build` will execute. Plain
//! serialisable data; `simulate.rs` computes it.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything dib would do with a request, before any build.
#[derive(Debug, Clone, Serialize)]
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
    pub phase: &'static str,
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
    /// A stable reason code: `not-executable`, `bad-name`, `dangling-symlink`,
    /// `directory`, `hidden`, `not-a-file`.
    pub reason: &'static str,
    pub path: String,
    /// The reason in words.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// dib fails on this.
    Error,
    /// dib runs, but not as the author probably expects, or not reproducibly.
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A stable code: `duplicate-hook`, `unsafe-name`, `environment-empty`,
    /// `environment-overwritten`, `absolute-symlink`, `order-tie`, `set-order`, `hook-calls`.
    pub kind: &'static str,
    pub severity: Severity,
    pub message: String,
    pub elements: Vec<String>,
    pub paths: Vec<String>,
}
