use crate::lint::diagnostic::{Edit, FileId, Fix, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB105",
    slug: "missing-debug-trace",
    legacy: &["dibdebugtrace"],
    severity: Severity::Error,
    summary: "bash script ignores DIB_DEBUG_TRACE",
    docs: r#"## What it does
Checks that bash scripts turn on tracing when `DIB_DEBUG_TRACE` is set. Only code counts:
a comment that mentions the variable does not.

## Why is this bad?
`disk-image-create -x` sets `DIB_DEBUG_TRACE` so that every hook traces its commands. A
script that ignores it is a black box in exactly the build you are debugging.

## Example
```bash
#!/bin/bash
# DIB_DEBUG_TRACE is handled elsewhere
set -eu
```

## Fix
Add the guard after the shebang (`--fix` does):
```bash
if [ "${DIB_DEBUG_TRACE:-0}" -gt 0 ]; then
    set -x
fi
```

## Legacy name
`dibdebugtrace` (dib-lint), which was satisfied by the word anywhere, comments included.
"#,
    check: Check::File(check),
};

/// Whether code (not a comment) mentions `DIB_DEBUG_TRACE`.
fn traces(lines: &[shell::CodeLine<'_>]) -> bool {
    lines
        .iter()
        .any(|l| !l.heredoc && !l.is_comment() && l.code().contains("DIB_DEBUG_TRACE"))
}

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_bash_script(f) {
        return;
    }
    if !traces(&shell::code_lines(f)) {
        let d = sink.report(
            &RULE,
            id,
            Some(f.line_span(1)),
            "script does not follow `DIB_DEBUG_TRACE`",
        );
        d.help("add `if [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then set -x; fi` after the shebang");
        d.fix = header_fix(ws, id);
    }
}

/// The fix shared by DIB102-DIB105: insert the missing parts of dib's standard header right
/// after the shebang. Every rule proposes the same edit, so applying one fixes them all.
pub(crate) fn header_fix(ws: &Workspace, id: FileId) -> Option<Fix> {
    let f = ws.file(id);
    let text = f.text.as_deref()?;
    let lines = shell::code_lines(f);
    let opts = shell::options(f);
    let mut header = String::new();
    if !traces(&lines) {
        header.push_str("if [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then\n    set -x\nfi\n");
    }
    match (opts.errexit, opts.nounset) {
        (false, false) => header.push_str("set -eu\n"),
        (false, true) => header.push_str("set -e\n"),
        (true, false) => header.push_str("set -u\n"),
        (true, true) => {}
    }
    if !opts.pipefail {
        header.push_str("set -o pipefail\n");
    }
    if header.is_empty() {
        return None;
    }
    let first_end = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut out = String::with_capacity(text.len() + header.len() + 1);
    out.push_str(&text[..first_end]);
    if first_end == text.len() && !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&header);
    out.push_str(&text[first_end..]);
    Some(Fix {
        edit: Edit::Content {
            file: id,
            text: out,
        },
        safe: true,
        title: "insert the standard header after the shebang".to_owned(),
    })
}
