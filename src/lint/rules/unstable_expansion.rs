use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};

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
    if let Some(text) = &cx.outcome.unstable {
        sink.report(&RULE, cx.request_file, None, text.clone())
            .help("depend on either the virtual name or its provider, not both");
    }
}
