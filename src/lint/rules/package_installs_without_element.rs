use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};

pub(crate) static RULE: Rule = Rule {
    code: "DIB410",
    slug: "package-installs-without-element",
    legacy: &[],
    severity: Severity::Error,
    summary: "package-installs.yaml in a set without the package-installs element",
    docs: r"## What it does
With `--elements`, reports elements that ship `package-installs.yaml` (or `.json`) when the
resolved set does not contain the `package-installs` element.

## Why is this bad?
Only the package-installs element reads these files. Without it in the set, the packages
are silently never installed.

## Example
```
my-element/package-installs.yaml   (and no package-installs in element-deps)
```

## Fix
Add `package-installs` to the element's `element-deps`.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    let Some(plan) = cx.plan else { return };
    if plan.elements.iter().any(|e| e.name == "package-installs") {
        return;
    }
    for e in &plan.elements {
        let Some(element) = cx.lib.get(&e.name) else {
            continue;
        };
        for file in ["package-installs.yaml", "package-installs.json"] {
            let path = element.root.display_path(file);
            if cx.ids.contains_key(&path) {
                sink.report(
                    &RULE,
                    cx.id(&path),
                    None,
                    format!("`{}` lists packages, but the set has no `package-installs` element: they are never installed", e.name),
                )
                .help("add `package-installs` to element-deps");
            }
        }
    }
}
