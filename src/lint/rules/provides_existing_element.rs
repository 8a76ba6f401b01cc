use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB206",
    slug: "provides-existing-element",
    legacy: &[],
    severity: Severity::Warning,
    summary: "element-provides names a real element, or the element itself",
    docs: r"## What it does
Reports names in `element-provides` that are also real elements, including the element's
own name.

## Why is this bad?
A provided name is removed from every build that includes this element, even when a real
element has that name; if the real element was expanded first, its dependencies stay while
its scripts vanish. An element that provides its own name disappears when pulled in as a
dependency and fails the build when requested.

## Example
```
my-bootloader/element-provides:
bootloader
```

## Fix
Provide a virtual name that no element has, or depend on the element instead.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    let Some(id) = ws.find(e, "element-provides") else {
        return;
    };
    for (name, _, span) in super::name_lines(ws.file(id)) {
        if name == e.name {
            sink.report(
                &RULE,
                id,
                Some(span),
                format!("`{name}` provides its own name"),
            )
            .help("remove the line: dib drops the element from any set it is pulled into");
        } else if ws.known.contains_key(&name) && !name.starts_with('#') {
            sink.report(
                &RULE,
                id,
                Some(span),
                format!(
                    "`{name}` is also a real element; dib drops it from any build with this one"
                ),
            )
            .help("provide a virtual name that no element has");
        }
    }
}
