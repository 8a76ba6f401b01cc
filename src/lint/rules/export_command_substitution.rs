use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB111",
    slug: "export-command-substitution",
    legacy: &[],
    severity: Severity::Error,
    summary: "`export X=$(...)` hides the command's failure",
    docs: r#"## What it does
Reports `export NAME=$(command)` in one statement.

## Why is this bad?
`export` succeeds whatever the command did, so `set -e` never sees the failure and `NAME`
silently ends up empty.

## Example
```bash
export KERNEL=$(ls /boot/vmlinuz-*)
```

## Fix
```bash
KERNEL=$(ls /boot/vmlinuz-*)
export KERNEL
```
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_text_file(f) || !super::in_dib_lint_loop(f) || super::is_python(f) {
        return;
    }
    if !(super::is_script(f) || super::is_environment_file(f) || super::phase_of(f).is_some()) {
        return;
    }
    for line in shell::code_lines(f) {
        if line.heredoc || line.is_comment() {
            continue;
        }
        let code = line.code();
        if let Some(pos) = code.find("export ") {
            if code[pos..].contains("$(") {
                sink.report(
                    &RULE,
                    id,
                    Some(line.span.start + pos..line.span.start + code.trim_end().len()),
                    "export and command substitution in one statement",
                )
                .help("assign first (`X=$(...)`), then `export X`, so a failure stops the script");
            }
        }
    }
}
