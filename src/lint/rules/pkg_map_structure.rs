use crate::element::parse::{self, PkgMapIssueKind};
use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB411",
    slug: "pkg-map-structure",
    legacy: &[],
    severity: Severity::Error,
    summary: "pkg-map with unknown sections or non-string values",
    docs: r#"## What it does
Checks the structure of pkg-map files: an object with optional `default` (name → package),
`family` and `distro` (key → name → package) and `release` (distro → release → name →
package) sections, where every package value is a string or null.

## Why is this bad?
pkg-map ignores unknown sections (a `distros` typo maps nothing) and fails on values that are
not strings, inside the chroot, late in the build.

## Example
```json
{"distros": {"debian": {"java": "default-jdk"}}}
```

## Fix
Use the section names `default`, `family`, `distro`, `release`.
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.name() != "pkg-map" || f.executable() || !super::is_text_file(f) {
        return;
    }
    let text = f.text.as_deref().unwrap_or("");
    let Ok(map) = parse::pkg_map(text) else {
        return; // DIB005.
    };
    let span_of = |needle: &str| {
        text.find(&format!("\"{needle}\""))
            .map(|i| i..i + needle.len() + 2)
    };
    for issue in &map.issues {
        let path = issue.path.as_str();
        let last = path.rsplit('.').next().unwrap_or(path);
        match issue.kind {
            PkgMapIssueKind::NotAnObject => {
                sink.report(&RULE, id, None, "pkg-map must be a JSON object")
                    .help("start with `{\"default\": {...}}`");
            }
            PkgMapIssueKind::UnknownSection => {
                let near = ["default", "family", "distro", "release"]
                    .into_iter()
                    .find(|s| strsim::levenshtein(s, path) <= 2);
                let d = sink.report(
                    &RULE,
                    id,
                    span_of(path),
                    format!("unknown pkg-map section `{path}`: pkg-map ignores it"),
                );
                match near {
                    Some(n) => d.help(format!("did you mean `{n}`?")),
                    None => d.help("sections are default, family, distro and release"),
                };
            }
            PkgMapIssueKind::SectionNotAnObject | PkgMapIssueKind::BadValue => {
                let why = if issue.kind == PkgMapIssueKind::BadValue {
                    "package values must be strings or null"
                } else {
                    "must be an object"
                };
                sink.report(&RULE, id, span_of(last), format!("`{path}`: {why}"))
                    .help("map each package name to a string of package names, or null to skip it");
            }
        }
    }
}
