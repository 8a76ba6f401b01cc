use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::{INSTALL_TYPE_ENV, ProblemKind};

pub(crate) static RULE: Rule = Rule {
    code: "DIB309",
    slug: "environment-replaced-by-dib",
    legacy: &[],
    severity: Severity::Warning,
    summary: "environment.d file that dib replaces with its own file of the same name",
    docs: r"## What it does
With `--elements`, reports an element's `environment.d/11-dib-install-type.bash`: after
root.d, disk-image-create writes its own file of that name into the hooks tree.

## Why is this bad?
The element's file is sourced before root.d only; every later phase sources dib's file
instead, so what the element exports silently disappears.

## Example
```
environment.d/11-dib-install-type.bash
```

## Fix
Rename the file, e.g. `10-my-element-install-type.bash`.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::EnvironmentOverwritten) {
        let Some(path) = p.paths.first() else {
            continue;
        };
        sink.report(&RULE, cx.id(path), None, p.message.clone())
            .help(format!(
                "rename it: dib owns `environment.d/{INSTALL_TYPE_ENV}`"
            ));
    }
}
