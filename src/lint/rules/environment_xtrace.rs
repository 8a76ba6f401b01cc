use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB115",
    slug: "environment-xtrace",
    legacy: &[],
    severity: Severity::Error,
    summary: "environment.d file turns on tracing",
    docs: r"## What it does
Reports `set -x` in environment.d files.

## Why is this bad?
dib already sources every environment file with xtrace on and restores the previous state
afterwards; a `set -x` there leaks tracing into every hook of every phase, secrets included.

## Example
```bash
set -x
export DIB_RELEASE=${DIB_RELEASE:-bookworm}
```

## Fix
Remove the `set -x`.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_environment_file(f) || !super::is_text_file(f) {
        return;
    }
    for line in shell::code_lines(f) {
        if line.heredoc || line.is_comment() {
            continue;
        }
        let single = shell::CodeLine { ..line.clone() };
        if shell::set_options(std::slice::from_ref(&single)).xtrace {
            sink.report(
                &RULE,
                id,
                Some(line.span.clone()),
                "environment file sets tracing",
            )
            .help("remove `set -x`: dib traces environment files itself");
        }
    }
}
