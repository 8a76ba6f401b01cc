use crate::element::model::Phase;
use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::calls;
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB007",
    slug: "invalid-hook-calls",
    legacy: &[],
    severity: Severity::Error,
    summary: "a line of hook-calls is not `CALLER CALLEE [when CONDITION]`",
    docs: r"## What it does
Reports the first line of an element's `hook-calls` file that is not a declaration
`CALLER CALLEE [when CONDITION]` with each of CALLER and CALLEE a `PHASE/SCRIPT` of a
phase directory, or a comment (`#`) or blank line. With `--elements`, also reports it in
elements of the set outside the lint targets (the plan's `hook-calls` problem).

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
    check: Check::FileAndSet(check, check_set),
};

const HELP: &str = "one call a line: `PHASE/SCRIPT PHASE/SCRIPT [when CONDITION]`";

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.rel != calls::FILE {
        return;
    }
    let Some(text) = f.text.as_deref() else {
        return;
    };
    let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.dir()).collect();
    let Err(err) = calls::parse(text, &phases) else {
        return;
    };
    let span = f
        .lines()
        .find(|(n, _, _)| *n == err.line)
        .map(|(_, _, span)| span);
    sink.report(&RULE, id, span, err.message).help(HELP);
}

fn check_set(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::HookCallsInvalid) {
        let Some(path) = p.paths.first() else {
            continue;
        };
        if cx.is_target(path) {
            continue;
        }
        sink.report(&RULE, cx.id(path), None, p.message.clone())
            .help(HELP);
    }
}
