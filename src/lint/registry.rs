//! The rule table. Codes are `DIB` + three digits, banded by what a rule inspects: `0xx`
//! element layout and metadata, `1xx` script hygiene, `2xx` dependencies, `3xx` run order,
//! `4xx` package-installs and pkg-map, `9xx` dibkit itself. Codes are never reused.

use std::collections::HashMap;

use super::diagnostic::{FileId, Severity, Sink};
use super::model::{LintElement, Workspace};
use super::rules;
use crate::deps::expand::Outcome;
use crate::element::discover::Library;
use crate::order::plan::{Plan, Problem, ProblemKind};

/// What a rule looks at.
#[derive(Clone, Copy)]
pub enum Check {
    /// Each file of each element.
    File(fn(&Workspace, FileId, &mut Sink)),
    /// Each element.
    Element(fn(&Workspace, &LintElement, &mut Sink)),
    /// The resolved element set (`--elements`).
    Set(fn(&SetContext<'_>, &mut Sink)),
    /// Each file of each element, and with `--elements` the set, for what the plan finds in
    /// files outside the lint targets (the file check has seen the targets).
    FileAndSet(
        fn(&Workspace, FileId, &mut Sink),
        fn(&SetContext<'_>, &mut Sink),
    ),
    /// Reported by the engine itself (suppressions, unreadable files, shellcheck).
    Engine,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::File(_) => "file",
            Check::Element(_) => "element",
            Check::Set(_) => "set",
            Check::FileAndSet(..) => "file and set",
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
    pub fn problems(&self, kind: ProblemKind) -> impl Iterator<Item = &Problem> {
        self.plan
            .into_iter()
            .flat_map(|p| p.problems.iter())
            .filter(move |p| p.kind == kind)
    }

    /// Whether a plan path is a file of the lint targets, which the file checks have seen.
    #[must_use]
    pub fn is_target(&self, path: &str) -> bool {
        self.ids
            .get(path)
            .is_some_and(|id| self.ws.file(*id).element.is_some())
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
    &rules::invalid_hook_calls::RULE,
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
    &rules::hook_symlink_into_image::RULE,
    &rules::environment_replaced_by_dib::RULE,
    &rules::non_executable_misnamed_hook::RULE,
    &rules::hook_call_outside_set::RULE,
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
    &rules::package_installs_not_a_dependency::RULE,
    &rules::unreadable_file::RULE,
    &rules::invalid_suppression::RULE,
    &rules::unused_suppression::RULE,
    &rules::unknown_rule_in_config::RULE,
    &rules::shellcheck::RULE,
];

/// The one rule that reports each kind of plan problem. The match is exhaustive, so a new
/// kind cannot be added without a rule; `problem_kinds_have_exactly_one_rule` checks that no
/// other rule reports it too.
#[must_use]
pub fn problem_rule(kind: ProblemKind) -> &'static Rule {
    match kind {
        ProblemKind::SetOrder => &rules::unstable_expansion::RULE,
        ProblemKind::DuplicateHook => &rules::duplicate_hook::RULE,
        ProblemKind::UnsafeName => &rules::whitespace_in_name::RULE,
        ProblemKind::EnvironmentEmpty => &rules::environment_file_not_sourced::RULE,
        ProblemKind::EnvironmentOverwritten => &rules::environment_replaced_by_dib::RULE,
        ProblemKind::AbsoluteSymlink => &rules::hook_symlink_into_image::RULE,
        ProblemKind::OrderTie => &rules::order_tie::RULE,
        ProblemKind::HookCallsInvalid => &rules::invalid_hook_calls::RULE,
        ProblemKind::HookCallMissing => &rules::hook_call_outside_set::RULE,
    }
}

/// Finds a rule by code (`DIB104`), slug (`missing-pipefail`) or dib-lint name (`setpipefail`).
#[must_use]
pub fn find(name: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.code.eq_ignore_ascii_case(name) || r.slug == name || r.legacy.contains(&name))
}

/// The rule reference, `docs/rules.md`: generated from the registry, checked by a test.
#[must_use]
pub fn reference_markdown() -> String {
    let mut s = String::from(
        "# dibkit lint rules\n\n<!-- Generated from src/lint/rules by `DIBKIT_BLESS=1 cargo test rules_md`; do not edit. -->\n\n| code | name | severity | dib-lint | summary |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "| [{code}](#{anchor}) | `{slug}` | {sev} | {legacy} | {summary} |\n",
            code = r.code,
            anchor = r.code.to_lowercase(),
            slug = r.slug,
            sev = r.severity.as_str(),
            legacy = r.legacy.join(", "),
            summary = r.summary.replace('|', "\\|"),
        ));
    }
    for r in RULES {
        s.push_str(&format!(
            "\n## {}\n\n`{}`, {} by default",
            r.code,
            r.slug,
            r.severity.as_str()
        ));
        if !r.legacy.is_empty() {
            s.push_str(&format!("; dib-lint: `{}`", r.legacy.join("`, `")));
        }
        s.push_str(".\n\n");
        // Demote the rule's own headings one level under the rule's heading.
        for line in r.docs.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                s.push_str(&format!("### {h}\n"));
            } else {
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_sorted_unique_and_banded() {
        let codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        // `SC` (ShellCheck passthrough) sorts after every DIB code.
        assert_eq!(
            codes, sorted,
            "RULES must be sorted by code, without duplicates"
        );
        for r in RULES.iter().filter(|r| r.code != "SC") {
            assert!(
                r.code.len() == 6
                    && r.code.starts_with("DIB")
                    && r.code[3..].chars().all(|c| c.is_ascii_digit()),
                "{} is not DIBnnn",
                r.code
            );
        }
    }

    #[test]
    fn slugs_and_legacy_names_are_unique_kebab_case() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.slug), "duplicate slug {}", r.slug);
            assert!(
                r.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                r.slug
            );
            for l in r.legacy {
                assert!(seen.insert(l), "legacy name {l} used twice");
            }
        }
    }

    #[test]
    fn dib_lint_names_are_all_covered() {
        for name in [
            "executable",
            "indent",
            "sete",
            "setu",
            "setpipefail",
            "dibdebugtrace",
            "tabindent",
            "newline",
            "mddocs",
            "safe_sudo",
            "which",
        ] {
            assert!(find(name).is_some(), "no rule for dib-lint's {name}");
        }
    }

    #[test]
    fn docs_have_the_required_headings_in_order() {
        for r in RULES {
            let mut last = 0;
            for h in [
                "## What it does",
                "## Why is this bad?",
                "## Example",
                "## Fix",
            ] {
                let pos = r
                    .docs
                    .find(h)
                    .unwrap_or_else(|| panic!("{}: no `{h}`", r.code));
                assert!(pos >= last, "{}: `{h}` out of order", r.code);
                last = pos;
            }
            assert!(
                !r.summary.is_empty() && !r.summary.ends_with('.'),
                "{}: summary",
                r.code
            );
        }
    }

    /// Each kind of plan problem is reported by exactly one rule: the one `problem_rule`
    /// names, with the kind's severity. A plan holding one problem of a kind goes through
    /// every set rule; exactly one diagnostic may come out.
    #[test]
    fn problem_kinds_have_exactly_one_rule() {
        use crate::deps::expand::{Expansion, Outcome};
        use crate::lint::model::{FileKind, SourceFile};
        use crate::order::plan::Problem;

        for kind in ProblemKind::ALL {
            let rule = problem_rule(kind);
            assert!(
                RULES.iter().any(|r| std::ptr::eq(*r, rule)),
                "{kind}: {} is not in RULES",
                rule.code
            );
            assert_eq!(rule.severity, kind.severity(), "{kind}: {}", rule.code);
            let mut ws = Workspace::default();
            let request_file = ws.add(SourceFile::new(
                "(request)".into(),
                None,
                String::new(),
                FileKind::Unread {
                    reason: "the request".to_owned(),
                },
            ));
            let plan = Plan {
                request: vec!["a".to_owned()],
                problems: vec![Problem::new(
                    kind,
                    format!("a {kind} problem"),
                    vec!["a".to_owned()],
                    vec!["/nowhere/a/install.d/50 x".to_owned()],
                )],
                ..Plan::default()
            };
            let outcome = Outcome {
                result: Ok(Expansion {
                    request: vec!["a".to_owned()],
                    members: Vec::new(),
                    provided: std::collections::BTreeMap::new(),
                }),
                unstable: None,
            };
            let lib = Library::default();
            let ids = HashMap::new();
            let cx = SetContext {
                ws: &ws,
                outcome: &outcome,
                plan: Some(&plan),
                lib: &lib,
                ids: &ids,
                request_file,
            };
            let mut sink = Sink::default();
            for r in RULES {
                if let Check::Set(f) | Check::FileAndSet(_, f) = r.check {
                    f(&cx, &mut sink);
                }
            }
            let codes: Vec<&str> = sink.diagnostics.iter().map(|d| d.rule.code).collect();
            assert_eq!(codes, [rule.code], "{kind}");
        }
    }

    #[test]
    fn rules_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md");
        let want = reference_markdown();
        if std::env::var_os("DIBKIT_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have != want {
            let diff = similar::TextDiff::from_lines(&have, &want)
                .unified_diff()
                .header("docs/rules.md", "generated")
                .to_string();
            panic!("docs/rules.md is stale; run DIBKIT_BLESS=1 cargo test rules_md\n{diff}");
        }
    }
}
