use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB308",
    slug: "hook-symlink-into-image",
    legacy: &[],
    severity: Severity::Warning,
    summary: "hook of a chroot phase is an absolute symlink, resolved inside the image",
    docs: r"## What it does
With `--elements`, reports hooks of the phases that run inside the image chroot
(`pre-install.d`, `install.d`, `post-install.d`, `finalise.d`) that are symlinks to an
absolute path.

## Why is this bad?
dib copies symlinks as symlinks, and dib-run-parts resolves them inside the image. The hook
runs only if the image happens to have that file; otherwise it is skipped without a word.

## Example
```
install.d/50-tool -> /usr/local/bin/tool
```

## Fix
Ship the script in the element (or link to it with a relative path inside the element).
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::AbsoluteSymlink) {
        let Some(path) = p.paths.first() else {
            continue;
        };
        sink.report(&RULE, cx.id(path), None, p.message.clone())
            .help("ship the script in the element, or link to it with a relative path");
    }
}
