use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB307",
    slug: "whitespace-in-name",
    legacy: &[],
    severity: Severity::Error,
    summary: "file name with whitespace in a directory dib copies into the hooks tree",
    docs: r"## What it does
Reports entries with whitespace in their names directly inside an element's top-level
directories. With `--elements`, also reports them in elements of the set outside the lint
targets (the plan's `unsafe-name` problem).

## Why is this bad?
dib copies these directories with `for x in $(ls dir)`, which splits the name into words;
the copy of the pieces fails and the build stops.

## Example
```
install.d/50-my script
```

## Fix
Rename it without spaces.
",
    check: Check::FileAndSet(check, check_set),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(top) = f.top_dir() else { return };
    if top == "tests" || top == "__pycache__" || !f.is_direct_child_of(top) {
        return;
    }
    if f.name().chars().any(char::is_whitespace) {
        sink.report(
            &RULE,
            id,
            None,
            format!(
                "`{}` has whitespace in its name: dib's copy breaks on it",
                f.rel
            ),
        )
        .help("rename it without whitespace");
    }
}

/// The plan's `unsafe-name` problems in files the file check has not seen.
fn check_set(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::UnsafeName) {
        let Some(path) = p.paths.first() else {
            continue;
        };
        if cx.is_target(path) {
            continue;
        }
        sink.report(&RULE, cx.id(path), None, p.message.clone())
            .help("rename it without whitespace");
    }
}
