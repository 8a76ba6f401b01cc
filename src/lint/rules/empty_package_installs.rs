use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB408",
    slug: "empty-package-installs",
    legacy: &[],
    severity: Severity::Error,
    summary: "empty package-installs file (dib crashes on it)",
    docs: r"## What it does
Reports package-installs files that hold no YAML document (empty, or only comments).

## Why is this bad?
YAML loads such a file as `None`, and package-installs crashes on it
(`AttributeError: 'NoneType' object has no attribute 'items'`), failing the build.

## Example
```yaml
# packages will go here
```

## Fix
Delete the file, or write `{}`.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for (id, doc) in super::package_installs(ws, e) {
        if doc.is_none() {
            sink.report(
                &RULE,
                id,
                None,
                "package-installs file has no content: dib crashes reading it",
            )
            .help("delete the file, or write `{}` if it must exist");
        }
    }
}
