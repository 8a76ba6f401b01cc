use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB204",
    slug: "duplicate-dependency",
    legacy: &[],
    severity: Severity::Warning,
    summary: "a name appears twice in element-deps or element-provides",
    docs: r"## What it does
Reports names listed more than once in `element-deps` or `element-provides`.

## Why is this bad?
dib reads the files as sets, so the copy has no effect; it usually marks a merge mistake.

## Example
```
package-installs
package-installs
```

## Fix
Remove the duplicate line.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for file in ["element-deps", "element-provides"] {
        let Some(id) = ws.find(e, file) else { continue };
        let names = super::name_lines(ws.file(id));
        for (i, (name, _, span)) in names.iter().enumerate() {
            if let Some((_, first, _)) = names[..i].iter().find(|(n, _, _)| n == name) {
                sink.report(
                    &RULE,
                    id,
                    Some(span.clone()),
                    format!("`{name}` is listed twice in {file}"),
                )
                .related(id, None, format!("first listed on line {first}"))
                .help("remove the duplicate line");
            }
        }
    }
}
