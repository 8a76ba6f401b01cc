//! One file per rule. Each exports `pub(crate) static RULE` and its check function; shared
//! predicates live here.

use crate::element::model::Phase;

use super::model::{FileKind, SourceFile};

pub(crate) mod arch_and_not_arch;
pub(crate) mod arch_list_whitespace;
pub(crate) mod bad_indent;
pub(crate) mod comment_in_element_deps;
pub(crate) mod dangling_hook_symlink;
pub(crate) mod duplicate_dependency;
pub(crate) mod duplicate_hook;
pub(crate) mod empty_package_installs;
pub(crate) mod environment_file_not_sourced;
pub(crate) mod environment_replaced_by_dib;
pub(crate) mod environment_unbound_variable;
pub(crate) mod environment_xtrace;
pub(crate) mod executable_environment_file;
pub(crate) mod export_command_substitution;
pub(crate) mod hook_call_outside_set;
pub(crate) mod hook_is_directory;
pub(crate) mod hook_name_never_runs;
pub(crate) mod hook_symlink_into_image;
pub(crate) mod invalid_hook_calls;
pub(crate) mod invalid_pkg_map_json;
pub(crate) mod invalid_suppression;
pub(crate) mod invalid_yaml;
pub(crate) mod malformed_when;
pub(crate) mod markdown_docs;
pub(crate) mod missing_debug_trace;
pub(crate) mod missing_numeric_prefix;
pub(crate) mod missing_pipefail;
pub(crate) mod missing_readme;
pub(crate) mod missing_set_e;
pub(crate) mod missing_set_u;
pub(crate) mod missing_trailing_newline;
pub(crate) mod non_bin_bash_shebang;
pub(crate) mod non_executable_misnamed_hook;
pub(crate) mod not_executable;
pub(crate) mod order_tie;
pub(crate) mod package_installs_bad_phase;
pub(crate) mod package_installs_bad_value;
pub(crate) mod package_installs_not_a_dependency;
pub(crate) mod package_installs_unknown_key;
pub(crate) mod package_installs_without_element;
pub(crate) mod pkg_map_structure;
pub(crate) mod presence_flag_false;
pub(crate) mod provides_conflict;
pub(crate) mod provides_existing_element;
pub(crate) mod self_dependency;
pub(crate) mod shebang_not_first_line;
pub(crate) mod shellcheck;
pub(crate) mod source_repository_newline;
pub(crate) mod tab_indent;
pub(crate) mod unknown_element;
pub(crate) mod unknown_phase_directory;
pub(crate) mod unknown_rule_in_config;
pub(crate) mod unreadable_file;
pub(crate) mod unsafe_sudo;
pub(crate) mod unsorted_element_deps;
pub(crate) mod unstable_expansion;
pub(crate) mod unused_suppression;
pub(crate) mod which_command;
pub(crate) mod whitespace_in_name;
pub(crate) mod yaml11_scalar;

/// A regular file (or a symlink to one) with readable text.
pub(crate) fn is_text_file(f: &SourceFile) -> bool {
    matches!(
        f.kind,
        FileKind::File
            | FileKind::Symlink {
                dangling: false,
                ..
            }
    ) && f.text.is_some()
}

/// The phase directory a file sits directly in (`install.d`), if any.
pub(crate) fn phase_of(f: &SourceFile) -> Option<&'static str> {
    Phase::ALL
        .iter()
        .map(|p| p.dir())
        .find(|dir| f.is_direct_child_of(dir))
}

/// A direct child of `environment.d`.
pub(crate) fn is_environment_file(f: &SourceFile) -> bool {
    f.is_direct_child_of("environment.d")
}

/// A file dib-lint treats as a script: its first line starts with `#!`.
pub(crate) fn is_script(f: &SourceFile) -> bool {
    is_text_file(f) && f.first_line().is_some_and(|l| l.starts_with("#!"))
}

/// A bash script whose shell checks apply: a `bash` shebang, or a hook in a phase directory
/// without a shebang (dib runs those with bash).
pub(crate) fn is_bash_script(f: &SourceFile) -> bool {
    is_text_file(f)
        && match f.first_line() {
            Some(l) if l.starts_with("#!") => l.contains("bash"),
            // dib-run-parts executes hooks from bash, whose fallback for a file without a
            // shebang runs it as a bash script.
            Some(_) => f.executable() && phase_of(f).is_some() && !f.bytes.is_empty(),
            None => false,
        }
}

/// Where a file is dib-lint's loop-1 input: not `.rst`, `.yaml` or `.py`.
pub(crate) fn in_dib_lint_loop(f: &SourceFile) -> bool {
    let n = f.name();
    !(n.ends_with(".rst") || n.ends_with(".yaml") || n.ends_with(".py"))
}

/// A Python script (dib-lint runs flake8 on these instead of the shell checks).
pub(crate) fn is_python(f: &SourceFile) -> bool {
    f.first_line()
        .is_some_and(|l| l.starts_with("#!") && (l.contains("python") || l.contains("dib-python")))
}

/// The names of a dependency file as dib reads them (`element::parse::name_lines`, the one
/// grammar `order` uses too): `(name, line number, byte span)`, blank lines skipped,
/// duplicates kept. The line number is lint's own (it counts `\n` only), so messages agree
/// with the rendered location.
pub(crate) fn name_lines(f: &SourceFile) -> Vec<(String, usize, std::ops::Range<usize>)> {
    let Some(text) = f.text.as_deref() else {
        return Vec::new();
    };
    crate::element::parse::name_lines(text)
        .into_iter()
        .map(|n| {
            let line = f.line_col(n.span.start).0;
            (n.name, line, n.span)
        })
        .collect()
}

/// One rule of a package-installs file, as `element::parse` reads it for `packages` too.
pub(crate) use crate::element::parse::PackageRule;

/// The parsed package-installs files of an element: `(file, document)`, with documents that
/// failed to parse left out (DIB004 reports those).
pub(crate) fn package_installs<'a>(
    ws: &'a super::model::Workspace,
    e: &super::model::LintElement,
) -> Vec<(super::diagnostic::FileId, Option<&'a super::yaml::Node>)> {
    ["package-installs.yaml", "package-installs.json"]
        .iter()
        .filter_map(|name| ws.find(e, name))
        .filter_map(|id| match ws.file(id).yaml()? {
            Ok(doc) => Some((id, doc.as_ref())),
            Err(_) => None,
        })
        .collect()
}

/// Calls `f` for every rule of every parsed package-installs file of the element.
pub(crate) fn each_package_rule(
    ws: &super::model::Workspace,
    e: &super::model::LintElement,
    mut f: impl FnMut(super::diagnostic::FileId, &SourceFile, &PackageRule<'_>),
) {
    for (id, doc) in package_installs(ws, e) {
        let Some(doc) = doc else { continue };
        for rule in package_rules(doc) {
            f(id, ws.file(id), &rule);
        }
    }
}

/// Every rule of a package-installs document (`element::parse::package_installs`, the
/// reading `dibkit packages` applies): one per mapping, and a plain install for an empty or
/// false value. Values package-installs crashes on contribute their well-formed mappings;
/// DIB409 reports the rest.
pub(crate) fn package_rules(doc: &super::yaml::Node) -> Vec<PackageRule<'_>> {
    crate::element::parse::package_installs(Some(doc))
        .map(|entries| entries.into_iter().flat_map(|e| e.rules).collect())
        .unwrap_or_default()
}

/// The value of `key` in a rule mapping.
pub(crate) fn get<'a>(
    mapping: &'a [(super::yaml::Node, super::yaml::Node)],
    key: &str,
) -> Option<(&'a super::yaml::Node, &'a super::yaml::Node)> {
    mapping
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(k, v)| (k, v))
}

/// The span of a YAML node's first token.
pub(crate) fn node_span(f: &SourceFile, node: &super::yaml::Node) -> std::ops::Range<usize> {
    let start = node.offset.min(f.bytes.len());
    let text = f.text.as_deref().unwrap_or("");
    let end = text[start..]
        .find(['\n', ':', ','])
        .map_or(text.len(), |e| start + e);
    start..end.max(start)
}

/// The shared check of DIB102-DIB104: a bash script must turn on the `set` option `enabled`
/// reads; the fix inserts dib's standard header.
pub(crate) fn check_set_option(
    ws: &super::model::Workspace,
    id: super::diagnostic::FileId,
    sink: &mut super::diagnostic::Sink,
    rule: &'static super::registry::Rule,
    enabled: fn(super::shell::SetOptions) -> bool,
    what: &str,
    insert: &str,
) {
    let f = ws.file(id);
    if !is_bash_script(f) || enabled(super::shell::options(f)) {
        return;
    }
    let d = sink.report(
        rule,
        id,
        Some(f.line_span(1)),
        format!("script does not enable `{what}`"),
    );
    d.help(format!("add `{insert}` after the shebang"));
    d.fix = missing_debug_trace::header_fix(ws, id);
}
