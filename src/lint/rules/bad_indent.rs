use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB106",
    slug: "bad-indent",
    legacy: &["indent"],
    severity: Severity::Error,
    summary: "script indented by a number of spaces that is not a multiple of 4",
    docs: r"## What it does
Reports script lines whose leading spaces are not a multiple of four. Heredoc bodies and
continuation lines are data or alignment and are not checked.

## Why is this bad?
dib's element style is four-space indents; mixed indentation hides the structure of long
hook scripts.

## Example
```bash
if true; then
  echo two spaces
fi
```

## Fix
Indent with four spaces.

## Legacy name
`indent` (dib-lint), which also flagged heredoc bodies and continuation lines.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_script(f) || super::is_python(f) {
        return;
    }
    for line in shell::code_lines(f) {
        if line.heredoc || line.continuation {
            continue;
        }
        let spaces = line.text.len() - line.text.trim_start_matches(' ').len();
        let rest = &line.text[spaces..];
        if spaces % 4 != 0 && !rest.is_empty() && !rest.starts_with('\t') {
            sink.report(
                &RULE,
                id,
                Some(line.span.start..line.span.start + spaces),
                format!("indented by {spaces} spaces, not a multiple of 4"),
            )
            .help("indent with four spaces per level");
        }
    }
}
