//! Findings: what a rule reports, where, and how it could be fixed. Rules build these through
//! a [`Sink`]; only `render.rs` turns them into text.

use std::ops::Range;

use super::registry::Rule;

pub use crate::severity::Severity;

/// Index of a file in [`super::model::Files`].
pub type FileId = usize;

/// A change that resolves a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Replace the whole content of a file.
    Content { file: FileId, text: String },
    /// Set the permission bits of a file.
    Mode { file: FileId, mode: u32 },
    /// Rename a file within its directory (changes run order, so never a safe fix).
    Rename { file: FileId, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub edit: Edit,
    /// Safe fixes keep behaviour apart from the defect; unsafe ones need `--unsafe-fixes`.
    pub safe: bool,
    /// What the fix does, for `--diff` and the summary.
    pub title: String,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub rule: &'static Rule,
    /// A code other than the rule's (ShellCheck findings: `SC2086`).
    pub code: Option<String>,
    pub severity: Severity,
    pub file: FileId,
    /// Byte range in the file; `None` for findings about a file or directory as a whole.
    pub span: Option<Range<usize>>,
    pub message: String,
    /// Related places: `(file, span, text)`.
    pub related: Vec<(FileId, Option<Range<usize>>, String)>,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

/// Where rules put their findings.
#[derive(Debug, Default)]
pub struct Sink {
    pub diagnostics: Vec<Diagnostic>,
}

impl Sink {
    /// Starts a finding of `rule` in `file`. The returned builder records it when dropped.
    pub fn report(
        &mut self,
        rule: &'static Rule,
        file: FileId,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic {
            rule,
            code: None,
            severity: rule.severity,
            file,
            span,
            message: message.into(),
            related: Vec::new(),
            help: None,
            fix: None,
        });
        self.diagnostics.last_mut().expect("just pushed")
    }
}

impl Diagnostic {
    /// The code shown to users.
    #[must_use]
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or(self.rule.code)
    }

    pub fn help(&mut self, text: impl Into<String>) -> &mut Self {
        self.help = Some(text.into());
        self
    }

    pub fn related(
        &mut self,
        file: FileId,
        span: Option<Range<usize>>,
        text: impl Into<String>,
    ) -> &mut Self {
        self.related.push((file, span, text.into()));
        self
    }

    pub fn fix(&mut self, edit: Edit, safe: bool, title: impl Into<String>) -> &mut Self {
        self.fix = Some(Fix {
            edit,
            safe,
            title: title.into(),
        });
        self
    }
}
