use crate::element::parse::run_parts_name_ok;
use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB301",
    slug: "hook-name-never-runs",
    legacy: &[],
    severity: Severity::Error,
    summary: "phase script whose name dib-run-parts never runs (`10-foo.sh`)",
    docs: r"## What it does
Reports executable files in phase directories whose names fail dib-run-parts'
`^[0-9A-Za-z_-]+$`: a dot (`10-foo.sh`), a `~`, any other character. Executable dotfiles are
reported too: dib never copies them. Non-executable files are data and are left alone.

## Why is this bad?
dib-run-parts skips such files without a word (the note appears only with
`DIB_DEBUG_TRACE` > 0). The build succeeds and the step never happened.

## Example
```
install.d/50-configure.sh
```

## Fix
Rename it without the extension: `install.d/50-configure` (`--fix --unsafe-fixes` does, since a
rename can change the run order).
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(phase) = super::phase_of(f) else {
        return;
    };
    if matches!(f.kind, FileKind::Dir) {
        return; // DIB302.
    }
    let name = f.name();
    if run_parts_name_ok(name) || name.chars().any(char::is_whitespace) {
        return; // Whitespace is DIB307: it breaks the build outright.
    }
    // Data files (templates, udev rules, keys) live in phase directories too; only an
    // executable file is meant to run.
    if !f.executable() {
        return;
    }
    if name.starts_with('.') {
        {
            sink.report(
                &RULE,
                id,
                None,
                format!("`{phase}/{name}` is a dotfile: dib never copies it"),
            )
            .help("rename it without the leading dot");
        }
        return;
    }
    let d = sink.report(
        &RULE,
        id,
        None,
        format!(
            "`{phase}/{name}` never runs: dib-run-parts only runs names matching ^[0-9A-Za-z_-]+$"
        ),
    );
    let fixed: String = name
        .split('.')
        .next()
        .unwrap_or(name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    if !fixed.is_empty() && fixed != name {
        d.help(format!("rename it to `{fixed}`"));
        d.fix(
            Edit::Rename {
                file: id,
                to: fixed.clone(),
            },
            false,
            format!("rename to `{fixed}`"),
        );
    } else {
        d.help("use only letters, digits, `_` and `-` in hook names");
    }
}
