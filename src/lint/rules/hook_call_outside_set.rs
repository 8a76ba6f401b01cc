use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB311",
    slug: "hook-call-outside-set",
    legacy: &[],
    severity: Severity::Warning,
    summary: "a declared hook call names a script no element of the set has",
    docs: r"## What it does
With `--elements`, reports a line of an element's `hook-calls` whose caller is in the set
but whose callee (`PHASE/SCRIPT`) is not shipped by any element of the set.

## Why is this bad?
The caller runs the callee through `dibkit run-hook`, which finds no such script in the hooks
tree: the call fails, or, where the caller skips it, the work it stands for silently does not
happen. Usually an element the callee comes from is missing from `element-deps`.

## Example
```
root.d/60-my-os-base root.d/20-dpkg-apt-config
```
in an element whose set has no `dpkg`.

## Fix
Add the element that ships the callee to `element-deps`, or drop the line.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::HookCallMissing) {
        let Some(path) = p.paths.first() else {
            continue;
        };
        sink.report(&RULE, cx.id(path), None, p.message.clone())
            .help("add the element that ships the callee to `element-deps`, or drop the line");
    }
}
