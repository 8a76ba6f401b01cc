use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB006",
    slug: "source-repository-no-newline",
    legacy: &[],
    severity: Severity::Error,
    summary: "source-repository file does not end with a newline",
    docs: r"## What it does
Checks that `source-repository-*` files end with a newline.

## Why is this bad?
The source-repositories element reads these files line by line with `read`, which drops a
last line that has no newline: the last repository is silently never fetched.

## Example
```
myrepo git /opt/myrepo https://example.invalid/myrepo.git master<no newline>
```

## Fix
Add the final newline (`--fix` does).
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !f.name().contains("source-repository-") || !super::is_text_file(f) {
        return;
    }
    if f.bytes.last().is_some_and(|b| *b != b'\n') {
        let end = f.bytes.len();
        let mut text = f.text.clone().unwrap_or_default();
        text.push('\n');
        sink.report(
            &RULE,
            id,
            Some(end..end),
            "file does not end with a newline",
        )
        .help("add a newline at the end: the last line is otherwise never read")
        .fix(
            Edit::Content { file: id, text },
            true,
            "add the final newline",
        );
    }
}
