use crate::element::parse::run_parts_name_ok;
use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB304",
    slug: "missing-numeric-prefix",
    legacy: &[],
    severity: Severity::Warning,
    summary: "phase script without a two-digit numeric prefix",
    docs: r"## What it does
Reports phase scripts whose name does not start with two digits and a separator
(`50-configure`): no number (`configure`), one digit (`5-configure`), three (`050-x`).

## Why is this bad?
dib orders hooks with `sort -n`. A name without a number sorts as 0, before every numbered
hook of every element; `5-x` and `050-x` sort by value, not where they appear to. The
convention is two digits, with upstream elements keeping to 10-90.

## Example
```
install.d/configure
```

## Fix
Rename it with a two-digit prefix: `install.d/50-configure`.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(phase) = super::phase_of(f) else {
        return;
    };
    let name = f.name();
    if matches!(f.kind, FileKind::Dir) || !run_parts_name_ok(name) {
        return;
    }
    if name.starts_with("package-installs-") {
        return; // Legacy package lists, not hooks.
    }
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    let ok = digits == 2 && matches!(name.as_bytes().get(2), Some(b'-' | b'_'));
    if !ok {
        let what = if digits == 0 {
            "has no numeric prefix: it sorts as 0, before every numbered hook".to_owned()
        } else {
            format!("has a {digits}-digit prefix; dib's convention is two digits")
        };
        sink.report(&RULE, id, None, format!("`{phase}/{name}` {what}"))
            .help("name hooks `NN-name` with two digits (upstream keeps to 10-90)");
    }
}
