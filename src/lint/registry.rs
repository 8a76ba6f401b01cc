//! The rule table. Codes are `DIB` + three digits, banded by what a rule inspects: `0xx`
//! element layout and metadata, `1xx` script hygiene, `2xx` dependencies, `3xx` run order,
//! `4xx` package-installs and pkg-map, `9xx` dibkit itself. Codes are never reused.

use std::collections::HashMap;

use super::diagnostic::{FileId, Severity, Sink};
use super::model::{LintElement, Workspace};
use super::rules;
use crate::deps::expand::Outcome;
use crate::element::discover::Library;
use crate::order::plan::{Plan, Problem};

/// What a rule looks at.
#[derive(Clone, Copy)]
pub enum Check {
    /// Each file of each element.
    File(fn(&Workspace, FileId, &mut Sink)),
    /// Each element.
    Element(fn(&Workspace, &LintElement, &mut Sink)),
    /// The resolved element set (`--elements`).
    Set(fn(&SetContext<'_>, &mut Sink)),
    /// Reported by the engine itself (suppressions, unreadable files, shellcheck).
    Engine,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::File(_) => "file",
            Check::Element(_) => "element",
            Check::Set(_) => "set",
            Check::Engine => "engine",
        })
    }
}

/// Input of set rules: the expansion and the plan `dibkit order` would print, and file ids
/// for every path they mention.
pub struct SetContext<'a> {
    pub ws: &'a Workspace,
    pub outcome: &'a Outcome,
    pub plan: Option<&'a Plan>,
    pub lib: &'a Library,
    pub ids: &'a HashMap<String, FileId>,
    /// Stands for the request itself (findings about the set as a whole).
    pub request_file: FileId,
}

impl SetContext<'_> {
    /// The file id of a plan path.
    #[must_use]
    pub fn id(&self, path: &str) -> FileId {
        self.ids.get(path).copied().unwrap_or(self.request_file)
    }

    /// The problems of one kind in the plan.
    pub fn problems(&self, kind: &str) -> impl Iterator<Item = &Problem> {
        self.plan
            .into_iter()
            .flat_map(|p| p.problems.iter())
            .filter(move |p| p.kind == kind)
    }
}

/// A lint rule.
#[derive(Debug)]
pub struct Rule {
    pub code: &'static str,
    /// Kebab-case name that reads as "allow <slug>".
    pub slug: &'static str,
    /// dib-lint's names for the same check.
    pub legacy: &'static [&'static str],
    pub severity: Severity,
    /// One line for `--list-rules`.
    pub summary: &'static str,
    /// Markdown with `## What it does`, `## Why is this bad?`, `## Example`, `## Fix`.
    pub docs: &'static str,
    pub check: Check,
}

/// Every rule, sorted by code.
pub static RULES: &[&Rule] = &[
    &rules::missing_readme::RULE,
    &rules::markdown_docs::RULE,
    &rules::unknown_phase_directory::RULE,
    &rules::invalid_yaml::RULE,
    &rules::invalid_pkg_map_json::RULE,
    &rules::source_repository_newline::RULE,
    &rules::not_executable::RULE,
    &rules::missing_set_e::RULE,
    &rules::missing_set_u::RULE,
    &rules::missing_pipefail::RULE,
    &rules::missing_debug_trace::RULE,
    &rules::bad_indent::RULE,
    &rules::tab_indent::RULE,
    &rules::missing_trailing_newline::RULE,
    &rules::non_bin_bash_shebang::RULE,
    &rules::shebang_not_first_line::RULE,
    &rules::export_command_substitution::RULE,
    &rules::unsafe_sudo::RULE,
    &rules::which_command::RULE,
    &rules::executable_environment_file::RULE,
    &rules::environment_xtrace::RULE,
    &rules::environment_unbound_variable::RULE,
    &rules::environment_file_not_sourced::RULE,
    &rules::unsorted_element_deps::RULE,
    &rules::unknown_element::RULE,
    &rules::self_dependency::RULE,
    &rules::duplicate_dependency::RULE,
    &rules::comment_in_element_deps::RULE,
    &rules::provides_existing_element::RULE,
    &rules::provides_conflict::RULE,
    &rules::unstable_expansion::RULE,
    &rules::hook_name_never_runs::RULE,
    &rules::hook_is_directory::RULE,
    &rules::dangling_hook_symlink::RULE,
    &rules::missing_numeric_prefix::RULE,
    &rules::duplicate_hook::RULE,
    &rules::order_tie::RULE,
    &rules::whitespace_in_name::RULE,
    &rules::package_installs_unknown_key::RULE,
    &rules::package_installs_bad_phase::RULE,
    &rules::presence_flag_false::RULE,
    &rules::arch_list_whitespace::RULE,
    &rules::arch_and_not_arch::RULE,
    &rules::malformed_when::RULE,
    &rules::yaml11_scalar::RULE,
    &rules::empty_package_installs::RULE,
    &rules::package_installs_bad_value::RULE,
    &rules::package_installs_without_element::RULE,
    &rules::pkg_map_structure::RULE,
    &rules::unreadable_file::RULE,
    &rules::invalid_suppression::RULE,
    &rules::unused_suppression::RULE,
    &rules::unknown_rule_in_config::RULE,
    &rules::shellcheck::RULE,
];

/// Finds a rule by code (`DIB104`), slug (`missing-pipefail`) or dib-lint name (`setpipefail`).
#[must_use]
pub fn find(name: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.code.eq_ignore_ascii_case(name) || r.slug == name || r.legacy.contains(&name))
}
