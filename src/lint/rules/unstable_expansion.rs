use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB208",
    slug: "unstable-expansion",
    legacy: &[],
    severity: Severity::Warning,
    summary: "dib's result for the set depends on Python's set order",
    docs: r"## What it does
With `--elements`, expands the set under several valid set orders and reports when the
outcome differs, as it does from one dib run to the next (`PYTHONHASHSEED`).

## Why is this bad?
The same build succeeds on one run and fails with `Element '...' not found` on the next,
typically when an element depends both on a virtual name and on the element providing it.

## Example
```
a/element-deps:  b c      (no element named b)
c/element-provides: b
```

## Fix
Depend on the provider only (drop the virtual name), or on the virtual name only.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    // The plan carries it as a problem; a set that fails to expand has no plan, only the
    // expansion's note.
    let texts: Vec<&String> = match cx.plan {
        Some(_) => cx
            .problems(ProblemKind::SetOrder)
            .map(|p| &p.message)
            .collect(),
        None => cx.outcome.unstable.iter().collect(),
    };
    for text in texts {
        sink.report(&RULE, cx.request_file, None, text.clone())
            .help("depend on either the virtual name or its provider, not both");
    }
}
