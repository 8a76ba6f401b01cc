use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB113",
    slug: "which-command",
    legacy: &["which"],
    severity: Severity::Error,
    summary: "`which` used to find a command",
    docs: r"## What it does
Reports `which` used as a command in scripts: not in comments, and not in quoted text
(dib-lint reports every line containing `which `, prose in messages included; a
`$(which ...)` inside double quotes is still reported).

## Why is this bad?
`which` is not part of every minimal image (it is a separate package on several
distributions), so a hook that calls it inside the chroot fails or, in a condition, takes
the wrong branch.

## Example
```bash
if which dracut; then
```

## Fix
Use the shell builtin: `command -v dracut` or `type -p dracut`. Mark a deliberate use with
`# dib-lint: which`.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_text_file(f) || !super::in_dib_lint_loop(f) || super::is_python(f) {
        return;
    }
    if !(super::is_script(f) || super::phase_of(f).is_some() || super::is_environment_file(f)) {
        return;
    }
    for line in shell::code_lines(f) {
        if line.heredoc || line.is_comment() || line.text.contains("dib-lint: which") {
            continue;
        }
        let code = line.code();
        let quoted = shell::quoted_mask(code);
        let found = code.match_indices("which ").find(|(i, _)| {
            !quoted[*i]
                && (*i == 0
                    || !code.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && code.as_bytes()[i - 1] != b'_'
                        && code.as_bytes()[i - 1] != b'-')
        });
        if let Some((pos, _)) = found {
            sink.report(
                &RULE,
                id,
                Some(line.span.start + pos..line.span.start + pos + 5),
                "`which` may be missing in the image",
            )
            .help("use `command -v` or `type -p`");
        }
    }
}
