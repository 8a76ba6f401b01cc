use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB114",
    slug: "executable-environment-file",
    legacy: &[],
    severity: Severity::Error,
    summary: "environment.d file marked executable",
    docs: r"## What it does
Reports executable files in `environment.d`.

## Why is this bad?
environment.d files are sourced, never executed; the exec bit suggests otherwise and makes
them look like hooks.

## Example
```
-rwxr-xr-x environment.d/10-my-element.bash
```

## Fix
`chmod -x environment.d/10-my-element.bash` (`--fix` does).
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if super::is_environment_file(f) && matches!(f.kind, FileKind::File) && f.executable() {
        sink.report(
            &RULE,
            id,
            None,
            "environment file is executable: it is sourced, not run",
        )
        .help("clear the exec bit (`chmod -x`)")
        .fix(
            Edit::Mode {
                file: id,
                mode: f.mode & !0o111,
            },
            true,
            "clear the exec bit",
        );
    }
}
