use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB005",
    slug: "invalid-pkg-map-json",
    legacy: &[],
    severity: Severity::Error,
    summary: "pkg-map is not valid JSON",
    docs: r#"## What it does
Parses every non-executable file named `pkg-map` as JSON.

## Why is this bad?
pkg-map files are JSON; an invalid one makes every package lookup of the element fail
inside the chroot.

## Example
```
{"default": {"java": "default-jdk",}}
```

## Fix
Remove the trailing comma or other syntax error.
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.name() != "pkg-map" || f.executable() || !super::is_text_file(f) {
        return;
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(f.text.as_deref().unwrap_or("")) {
        let line = e.line().max(1);
        let span = f.line_span(line);
        let offset = (span.start + e.column().saturating_sub(1)).min(span.end);
        sink.report(&RULE, id, Some(offset..offset), format!("pkg-map is not valid JSON: {e}"))
            .help("pkg-map files are JSON objects with `default`, `family`, `distro` and `release` sections");
    }
}
