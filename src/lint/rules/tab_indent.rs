use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB107",
    slug: "tab-indent",
    legacy: &["tabindent"],
    severity: Severity::Error,
    summary: "line indented with a tab",
    docs: r"## What it does
Reports lines of scripts and `.rst` files indented with tab characters (after optional
spaces). `<<-` heredoc bodies, where tabs are syntax, are not reported.

## Why is this bad?
dib's style is spaces; tabs render differently in every editor and review tool.

## Example
```bash
if true; then
	echo tab
fi
```

## Fix
Replace the tabs with four spaces each.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let rst = f.name().ends_with(".rst");
    if !(rst || (f.executable() && super::is_text_file(f))) {
        return;
    }
    let lines = shell::code_lines(f);
    for line in &lines {
        if line.tab_heredoc && !rst {
            continue;
        }
        let after_spaces = line.text.trim_start_matches(' ');
        if after_spaces.starts_with('\t') {
            let col = line.text.len() - after_spaces.len();
            sink.report(
                &RULE,
                id,
                Some(line.span.start + col..line.span.start + col + 1),
                "line is indented with a tab",
            )
            .help("indent with spaces");
        }
    }
}
