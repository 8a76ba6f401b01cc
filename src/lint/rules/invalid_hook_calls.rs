use crate::element::model::PHASES;
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};
use crate::order::calls;

pub(crate) static RULE: Rule = Rule {
    code: "DIB007",
    slug: "invalid-hook-calls",
    legacy: &[],
    severity: Severity::Error,
    summary: "a line of hook-calls is not `CALLER CALLEE [when CONDITION]`",
    docs: r"## What it does
Reports the first line of an element's `hook-calls` file that is not a declaration
`CALLER CALLEE [when CONDITION]` with each of CALLER and CALLEE a `PHASE/SCRIPT` of a
phase directory, or a comment (`#`) or blank line.

## Why is this bad?
`hook-calls` declares the scripts a script runs itself (dibkit's, not dib's). dibkit reads
it to show those calls under their caller in `dibkit order` and to check a build's
recorded calls against the plan. A malformed file makes the plan an error: `dibkit order`
exits 1 and a build does not start.

## Example
```
root.d/10-debootstrap 55-debian-apt-sources if the tree is fresh
```

## Fix
Write both scripts as `PHASE/SCRIPT`, and the condition after `when`:
`root.d/10-debootstrap root.d/55-debian-apt-sources when the tree is fresh`.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    let Some(id) = ws.find(e, calls::FILE) else {
        return;
    };
    let f = ws.file(id);
    let Some(text) = f.text.as_deref() else {
        return;
    };
    let phases: Vec<&str> = PHASES.iter().map(|p| p.dir).collect();
    let Err(err) = calls::parse(text, &phases) else {
        return;
    };
    let span = f
        .lines()
        .find(|(n, _, _)| *n == err.line)
        .map(|(_, _, span)| span);
    sink.report(&RULE, id, span, err.message)
        .help("one call a line: `PHASE/SCRIPT PHASE/SCRIPT [when CONDITION]`");
}
