use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB305",
    slug: "duplicate-hook",
    legacy: &[],
    severity: Severity::Error,
    summary: "two elements of the set ship the same file name in the same directory",
    docs: r"## What it does
With `--elements`, merges the elements' directories as dib does and reports file names that
two elements ship in the same top-level directory (`install.d/50-foo`,
`environment.d/10-x`, `bin/tool`, `static/...` top entries).

## Why is this bad?
dib stops with `There is a duplicated hook in your elements: /install.d/50-foo`, without
saying which elements.

## Example
```
one/install.d/50-setup
two/install.d/50-setup
```

## Fix
Rename one of them; prefix hook names with the element name (`50-two-setup`).
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::DuplicateHook) {
        let Some(first) = p.paths.first() else {
            continue;
        };
        let d = sink.report(&RULE, cx.id(first), None, p.message.clone());
        for other in &p.paths[1..] {
            d.related(cx.id(other), None, "also shipped here");
        }
        d.help("rename one of them, e.g. with the element's name in it");
    }
}
