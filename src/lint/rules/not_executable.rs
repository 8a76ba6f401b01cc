use crate::element::parse::run_parts_name_ok;
use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB101",
    slug: "not-executable",
    legacy: &["executable"],
    severity: Severity::Error,
    summary: "script or phase hook without the exec bit",
    docs: r"## What it does
Reports files that start with `#!` but are not executable, and files in a phase directory
that dib-run-parts would run if they were executable.

## Why is this bad?
dib-run-parts only runs files with an exec bit. A hook without it is skipped without a word
(the message appears only with `DIB_DEBUG_TRACE` > 0), so the build succeeds with the step
missing.

## Example
```
$ ls -l install.d
-rw-r--r-- 50-configure
```

## Fix
`chmod +x install.d/50-configure` (`--fix` does).
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.executable() || !matches!(f.kind, FileKind::File) {
        return;
    }
    if super::is_environment_file(f) {
        return; // Sourced, not executed: DIB114 wants these not executable.
    }
    let phase = super::phase_of(f);
    let hook = phase.is_some() && run_parts_name_ok(f.name()) && !f.name().starts_with('.');
    if hook {
        sink.report(
            &RULE,
            id,
            None,
            format!(
                "`{}` is not executable: dib-run-parts skips it silently",
                f.rel
            ),
        )
        .help("make it executable (`chmod +x`)")
        .fix(
            Edit::Mode {
                file: id,
                mode: f.mode | 0o111 & (f.mode >> 2 | 0o100),
            },
            true,
            "set the exec bit",
        );
    } else if super::is_script(f) {
        sink.report(
            &RULE,
            id,
            None,
            format!("`{}` has a shebang but is not executable", f.rel),
        )
        .help("make it executable (`chmod +x`), or drop the shebang if it is data")
        .fix(
            Edit::Mode {
                file: id,
                mode: f.mode | 0o111 & (f.mode >> 2 | 0o100),
            },
            true,
            "set the exec bit",
        );
    }
}
