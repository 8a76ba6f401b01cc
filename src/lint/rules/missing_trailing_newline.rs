use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB108",
    slug: "missing-trailing-newline",
    legacy: &["newline"],
    severity: Severity::Error,
    summary: "file does not end with a newline",
    docs: r"## What it does
Checks that scripts, executable files and `.rst` files end with a newline. Empty files pass.

## Why is this bad?
Tools that read line by line (`while read`) drop a last line without a newline, and diffs of
the file show a spurious change.

## Example
```
echo done<no newline>
```

## Fix
Add the final newline (`--fix` does).
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_text_file(f) || f.name().contains("source-repository-") {
        return; // DIB006 covers source-repository files.
    }
    let wanted = f.name().ends_with(".rst") || f.executable() || super::is_script(f);
    if wanted && f.bytes.last().is_some_and(|b| *b != b'\n') {
        let end = f.bytes.len();
        let mut text = f.text.clone().unwrap_or_default();
        text.push('\n');
        sink.report(&RULE, id, Some(end..end), "no newline at end of file")
            .help("add a newline at the end of the file")
            .fix(
                Edit::Content { file: id, text },
                true,
                "add the final newline",
            );
    }
}
