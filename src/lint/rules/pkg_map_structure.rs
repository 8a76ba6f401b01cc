use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use serde_json::Value;

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
    let Ok(value) = serde_json::from_str::<Value>(f.text.as_deref().unwrap_or("")) else {
        return; // DIB005.
    };
    let span_of = |needle: &str| {
        let text = f.text.as_deref().unwrap_or("");
        text.find(&format!("\"{needle}\""))
            .map(|i| i..i + needle.len() + 2)
    };
    let Value::Object(top) = &value else {
        sink.report(&RULE, id, None, "pkg-map must be a JSON object")
            .help("start with `{\"default\": {...}}`");
        return;
    };
    for (section, body) in top {
        let depth = match section.as_str() {
            "default" => 0,
            "family" | "distro" => 1,
            "release" => 2,
            other => {
                let near = ["default", "family", "distro", "release"]
                    .into_iter()
                    .find(|s| strsim::levenshtein(s, other) <= 2);
                let d = sink.report(
                    &RULE,
                    id,
                    span_of(other),
                    format!("unknown pkg-map section `{other}`: pkg-map ignores it"),
                );
                match near {
                    Some(n) => d.help(format!("did you mean `{n}`?")),
                    None => d.help("sections are default, family, distro and release"),
                };
                continue;
            }
        };
        check_level(body, depth, section, &mut |path, why| {
            sink.report(
                &RULE,
                id,
                span_of(path.rsplit('.').next().unwrap_or(path)),
                format!("`{path}`: {why}"),
            )
            .help("map each package name to a string of package names, or null to skip it");
        });
    }
}

fn check_level(v: &Value, depth: usize, path: &str, report: &mut dyn FnMut(&str, &str)) {
    let Value::Object(map) = v else {
        report(path, "must be an object");
        return;
    };
    for (k, child) in map {
        let p = format!("{path}.{k}");
        if depth == 0 {
            if !matches!(child, Value::String(_) | Value::Null) {
                report(&p, "package values must be strings or null");
            }
        } else {
            check_level(child, depth - 1, &p, report);
        }
    }
}
