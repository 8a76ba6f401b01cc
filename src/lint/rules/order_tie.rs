use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB306",
    slug: "order-tie",
    legacy: &[],
    severity: Severity::Warning,
    summary: "scripts of different elements share a numeric prefix in one phase",
    docs: r"## What it does
With `--elements`, reports scripts of different elements that have the same numeric prefix
in the same phase.

## Why is this bad?
Their order is decided by the bytes of the rest of the name (`50-a-thing` runs before
`50-b-thing`), which nobody chose. Renaming either script silently reorders them.

## Example
```
base/install.d/10-cloud-init
debootstrap/install.d/10-debian-networking
```

## Fix
Give scripts that must run in a given order different numbers.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::OrderTie) {
        let Some(first) = p.paths.first() else {
            continue;
        };
        let d = sink.report(&RULE, cx.id(first), None, p.message.clone());
        for other in &p.paths[1..] {
            d.related(cx.id(other), None, "same numeric prefix");
        }
        d.help("use distinct numbers for scripts whose order matters");
    }
}
