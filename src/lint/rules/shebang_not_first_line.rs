use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB110",
    slug: "shebang-not-first-line",
    legacy: &[],
    severity: Severity::Error,
    summary: "shebang below the first line, where the kernel ignores it",
    docs: r"## What it does
Reports files whose `#!` line is not the first line (comments or blank lines above it).

## Why is this bad?
The kernel reads the interpreter only from the first two bytes. A hook with a comment above
`#!/bin/bash` is run through the shell's fallback for files without a shebang, and dib-lint
skips all its bash checks because the first line is not a shebang.

## Example
```bash
# Configure the thing
#!/bin/bash
set -eu
```

## Fix
Move the shebang to line 1.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_text_file(f) || super::is_script(f) {
        return;
    }
    for (n, line, span) in f.lines().take(20) {
        if n > 1 && line.starts_with("#!/") {
            sink.report(
                &RULE,
                id,
                Some(span),
                format!("shebang on line {n}: the kernel only reads line 1"),
            )
            .help("move the shebang to the first line");
            return;
        }
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            return;
        }
    }
}
