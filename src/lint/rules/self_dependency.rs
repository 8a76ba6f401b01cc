use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB203",
    slug: "self-dependency",
    legacy: &[],
    severity: Severity::Warning,
    summary: "element depends on itself",
    docs: r"## What it does
Reports an element that lists its own name in `element-deps`.

## Why is this bad?
dib ignores it, so it does nothing, but it is always a mistake: usually a copy-paste of
another element's deps, or the name of the element you meant.

## Example
```
my-element/element-deps:
my-element
```

## Fix
Remove the line.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    let Some(id) = ws.find(e, "element-deps") else {
        return;
    };
    for (name, _, span) in super::name_lines(ws.file(id)) {
        if name == e.name {
            sink.report(&RULE, id, Some(span), format!("`{name}` depends on itself"))
                .help("remove the line");
        }
    }
}
