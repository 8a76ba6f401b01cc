use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB001",
    slug: "missing-readme",
    legacy: &[],
    severity: Severity::Error,
    summary: "element has no README.rst",
    docs: r"## What it does
Checks that every element directory has a `README.rst`.

## Why is this bad?
The README is the element's only documentation: what it does and which variables it reads.
dib's documentation build and dib-lint both expect it.

## Example
```
my-element/
  element-deps
  install.d/50-my-element
```

## Fix
Add `my-element/README.rst` with a title, a description and the environment variables.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    if ws.find(e, "README.rst").is_none() {
        sink.report(
            &RULE,
            e.self_file,
            None,
            format!("element `{}` has no README.rst", e.name),
        )
        .help("add a README.rst: what the element does and the variables it reads");
    }
}
