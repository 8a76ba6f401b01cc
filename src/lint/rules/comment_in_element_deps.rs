use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB205",
    slug: "comment-in-element-deps",
    legacy: &[],
    severity: Severity::Error,
    summary: "comment line in element-deps or element-provides (dib reads it as a name)",
    docs: r"## What it does
Reports lines starting with `#` in `element-deps` and `element-provides`.

## Why is this bad?
dib has no comments in these files: every non-blank line is a name. `# needed for ssh` is a
dependency on an element called `# needed for ssh`, and the build fails with
`Element '# needed for ssh' not found`. dib-lint's sort check skips such lines, so it passes.

## Example
```
# needed for ssh
openssh-server
```

## Fix
Delete the comment; explain dependencies in README.rst.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for file in ["element-deps", "element-provides"] {
        let Some(id) = ws.find(e, file) else { continue };
        for (name, _, span) in super::name_lines(ws.file(id)) {
            if name.starts_with('#') {
                sink.report(
                    &RULE,
                    id,
                    Some(span),
                    format!("dib reads `{name}` as an element name"),
                )
                .help(format!(
                    "{file} has no comments; remove the line and document it in README.rst"
                ));
            }
        }
    }
}
