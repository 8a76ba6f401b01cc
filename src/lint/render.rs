//! Turns diagnostics into text: rustc-style (codespan-reporting), concise, JSON, SARIF 2.1.0
//! and GitHub workflow commands. The only place that knows about codespan.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config as TermConfig, termcolor::Buffer};
use serde_json::{Value, json};

use super::diagnostic::{Diagnostic, Severity};
use super::model::{FileKind, Workspace};
use super::registry::{RULES, Rule};

/// The rule reference for readers who cannot run `dibkit lint --explain` (a pre-commit hook
/// installs dibkit where its user does not run it): `docs/rules.md` in dibkit's repository,
/// generated from the registry with one `## CODE` section per rule. The project has no
/// published URL yet; when it has one, this becomes that URL and every finding follows.
pub const RULES_DOC: &str = "docs/rules.md";

/// `docs/rules.md#dib102`: the rule's section of [`RULES_DOC`] (Markdown renderers make a
/// `## DIB102` heading the anchor `dib102`).
#[must_use]
pub fn rule_doc_link(rule: &Rule) -> String {
    format!("{RULES_DOC}#{}", rule.code.to_ascii_lowercase())
}

/// `path`, `line`, `column` of a diagnostic (line/column 1-based, `None` for whole files).
fn location(ws: &Workspace, d: &Diagnostic) -> (String, Option<usize>, Option<usize>) {
    let f = ws.file(d.file);
    let path = f.path.display().to_string();
    match &d.span {
        Some(span) if f.text.is_some() => {
            let (line, col) = f.line_col(span.start);
            (path, Some(line), Some(col))
        }
        _ => (path, None, None),
    }
}

fn legacy(d: &Diagnostic) -> Option<&'static str> {
    d.rule.legacy.first().copied()
}

/// rustc-style output with source snippets.
#[must_use]
pub fn full(ws: &Workspace, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    let mut ids: HashMap<usize, usize> = HashMap::new();
    let mut file_id = |files: &mut SimpleFiles<String, String>, id: usize| {
        *ids.entry(id).or_insert_with(|| {
            let f = ws.file(id);
            files.add(
                f.path.display().to_string(),
                f.text.clone().unwrap_or_default(),
            )
        })
    };
    let config = TermConfig::default();
    let mut out = Buffer::ansi();
    let mut plain = String::new();
    for d in diagnostics {
        let severity = match d.severity {
            Severity::Error => CsSeverity::Error,
            Severity::Warning => CsSeverity::Warning,
        };
        let mut labels = Vec::new();
        let mut notes = Vec::new();
        let f = ws.file(d.file);
        match &d.span {
            Some(span) if f.text.is_some() => {
                let fid = file_id(&mut files, d.file);
                labels.push(Label::primary(fid, span.clone()));
            }
            _ => notes.push(format!("in {}", f.path.display())),
        }
        for (rid, rspan, text) in &d.related {
            let rf = ws.file(*rid);
            match rspan {
                Some(s) if rf.text.is_some() => {
                    let fid = file_id(&mut files, *rid);
                    labels.push(Label::secondary(fid, s.clone()).with_message(text.clone()));
                }
                _ => notes.push(format!("{text}: {}", rf.path.display())),
            }
        }
        if let Some(h) = &d.help {
            notes.push(format!("help: {h}"));
        }
        if d.code.is_none() {
            notes.push(format!(
                "`{}` ({}) is {} by default; see `dibkit lint --explain {}` or dibkit's {}",
                d.rule.code,
                d.rule.slug,
                if d.rule.severity == Severity::Error {
                    "an error"
                } else {
                    "a warning"
                },
                d.rule.code,
                rule_doc_link(d.rule)
            ));
        }
        let cs = CsDiagnostic::new(severity)
            .with_code(d.code())
            .with_message(&d.message)
            .with_labels(labels)
            .with_notes(notes);
        if color {
            let _ = term::emit_to_write_style(&mut out, &config, &files, &cs);
        } else {
            let _ = term::emit_to_string(&mut plain, &config, &files, &cs);
        }
    }
    if color {
        String::from_utf8_lossy(out.as_slice()).into_owned()
    } else {
        plain
    }
}

/// One line per finding: `path:line:col: CODE message`.
#[must_use]
pub fn concise(ws: &Workspace, diagnostics: &[Diagnostic]) -> String {
    let mut s = String::new();
    for d in diagnostics {
        let (path, line, col) = location(ws, d);
        let pos = match (line, col) {
            (Some(l), Some(c)) => format!("{path}:{l}:{c}"),
            _ => path,
        };
        s.push_str(&format!(
            "{pos}: {} [{}] {}\n",
            d.code(),
            d.severity.as_str(),
            d.message
        ));
    }
    s
}

/// A JSON list of `{code, name, legacy, severity, path, line, column, message, help, fixable}`.
#[must_use]
pub fn json(ws: &Workspace, diagnostics: &[Diagnostic]) -> String {
    let list: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let (path, line, column) = location(ws, d);
            json!({
                "code": d.code(),
                "name": d.rule.slug,
                "legacy": legacy(d),
                "severity": d.severity.as_str(),
                "path": path,
                "line": line,
                "column": column,
                "message": d.message,
                "help": d.help,
                "fixable": d.fix.as_ref().map(|f| if f.safe { "safe" } else { "unsafe" }),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&list).expect("serialises");
    s.push('\n');
    s
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn sarif_rule(r: &Rule) -> Value {
    json!({
        "id": r.code,
        "name": r.slug,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.docs},
        "help": {"text": r.docs, "markdown": r.docs},
        "defaultConfiguration": {"level": sarif_level(r.severity)},
        "properties": {"legacy": r.legacy},
    })
}

/// SARIF 2.1.0, declaring every rule.
#[must_use]
pub fn sarif(ws: &Workspace, diagnostics: &[Diagnostic]) -> String {
    let rules: Vec<Value> = RULES.iter().map(|r| sarif_rule(r)).collect();
    let index: HashMap<&str, usize> = RULES.iter().enumerate().map(|(i, r)| (r.code, i)).collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let (path, line, column) = location(ws, d);
            let mut region = json!({});
            if let (Some(l), Some(c)) = (line, column) {
                region = json!({"startLine": l, "startColumn": c});
                if let Some(span) = &d.span {
                    let (el, ec) = ws.file(d.file).line_col(span.end);
                    region["endLine"] = json!(el);
                    region["endColumn"] = json!(ec);
                }
            }
            let mut physical = json!({"artifactLocation": {"uri": path}});
            if line.is_some() {
                physical["region"] = region;
            }
            let mut result = json!({
                "ruleId": d.code(),
                "level": sarif_level(d.severity),
                "message": {"text": match &d.help {
                    Some(h) => format!("{} (help: {h})", d.message),
                    None => d.message.clone(),
                }},
                "locations": [{"physicalLocation": physical}],
            });
            if d.code.is_none() {
                result["ruleIndex"] = json!(index[d.rule.code]);
            }
            result
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "dibkit",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://docs.openstack.org/diskimage-builder/",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("serialises");
    s.push('\n');
    s
}

fn gh_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_escape(s).replace(':', "%3A").replace(',', "%2C")
}

/// A path as GitHub matches annotations against the repository: `./elements/x` is
/// `elements/x`.
fn gh_path(path: &Path) -> String {
    let clean: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    clean.display().to_string()
}

/// GitHub Actions workflow commands (`::error file=...,line=...::message`). A finding about a
/// directory (an element without a README) has no file to attach to: it goes without `file=`,
/// to the run's summary, and its message starts with the directory.
#[must_use]
pub fn github(ws: &Workspace, diagnostics: &[Diagnostic]) -> String {
    let mut s = String::new();
    for d in diagnostics {
        let (_, line, col) = location(ws, d);
        let f = ws.file(d.file);
        let path = gh_path(&f.path);
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        let mut message = d.message.clone();
        if matches!(f.kind, FileKind::Dir) {
            message = format!("{path}: {message}");
        } else {
            props.push(format!("file={}", gh_prop(&path)));
            if let (Some(l), Some(c)) = (line, col) {
                props.push(format!("line={l},col={c}"));
            }
        }
        props.push(format!(
            "title={}",
            gh_prop(&format!("{} {}", d.code(), d.rule.slug))
        ));
        s.push_str(&format!(
            "::{kind} {}::{}\n",
            props.join(","),
            gh_escape(&message)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::registry::reference_markdown;

    /// Every finding's link lands on a heading of the generated `docs/rules.md`.
    #[test]
    fn rule_doc_links_have_anchors() {
        let reference = reference_markdown();
        for rule in RULES {
            let link = rule_doc_link(rule);
            let anchor = link
                .strip_prefix("docs/rules.md#")
                .expect("a docs/rules.md link");
            let heading = reference
                .lines()
                .filter_map(|l| l.strip_prefix("## "))
                .find(|h| h.to_ascii_lowercase() == anchor);
            assert_eq!(heading, Some(rule.code), "{link}");
        }
    }

    #[test]
    fn github_paths_are_relative_to_the_repository() {
        assert_eq!(
            gh_path(Path::new("./elements/x/install.d/10-x")),
            "elements/x/install.d/10-x"
        );
        assert_eq!(gh_path(Path::new("elements/./x")), "elements/x");
    }
}
