use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB002",
    slug: "markdown-docs",
    legacy: &["mddocs"],
    severity: Severity::Error,
    summary: "markdown file in an element (dib documents elements in reStructuredText)",
    docs: r"## What it does
Reports `*.md` files in elements.

## Why is this bad?
dib's documentation is built from reStructuredText; a `README.md` is never rendered and
usually duplicates or replaces the `README.rst` the tooling expects.

## Example
```
my-element/README.md
```

## Fix
Convert it to `README.rst`.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.name().ends_with(".md") && !matches!(f.kind, crate::lint::model::FileKind::Dir) {
        sink.report(&RULE, id, None, "markdown documentation in an element")
            .help("write element documentation in reStructuredText (`README.rst`)");
    }
}
