use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB302",
    slug: "hook-is-directory",
    legacy: &[],
    severity: Severity::Warning,
    summary: "directory inside a phase directory (dib-run-parts never descends)",
    docs: r"## What it does
Reports directories named like hooks (`50-setup/`) directly inside phase directories.

## Why is this bad?
dib-run-parts runs only files directly in the phase directory; scripts in a subdirectory
never run unless a hook calls them. A directory with a hook's name was meant to be one.

## Example
```
install.d/50-setup/run
```

## Fix
Move the scripts up into the phase directory, or call them from a hook.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(phase) = super::phase_of(f) else {
        return;
    };
    // Helper directories (`scripts/`, install-types' `*-source-install/`) are normal; a
    // directory named like a hook (`50-setup/`) was meant to run.
    let name = f.name();
    let hook_like = name.bytes().take_while(u8::is_ascii_digit).count() > 0
        && crate::element::parse::run_parts_name_ok(name);
    if matches!(f.kind, FileKind::Dir) && hook_like {
        sink.report(
            &RULE,
            id,
            None,
            format!(
                "`{phase}/{}/` is a directory: dib-run-parts never runs what is inside",
                f.name()
            ),
        )
        .help("move its scripts into the phase directory, or run them from a hook");
    }
}
