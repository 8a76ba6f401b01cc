use crate::element::parse::environment_name_ok;
use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule, SetContext};
use crate::order::plan::ProblemKind;

pub(crate) static RULE: Rule = Rule {
    code: "DIB117",
    slug: "environment-file-not-sourced",
    legacy: &[],
    severity: Severity::Error,
    summary: "file in environment.d that dib never sources",
    docs: r"## What it does
Reports entries of `environment.d` that dib never sources: dotfiles (never copied into the
hooks tree), names with characters outside `[0-9A-Za-z_.-]` (`10-foo~`, `my env`),
directories and dangling symlinks.

With `--elements`, also reports a set whose environment.d directories hold no file dib
sources at all.

## Why is this bad?
The variables the file exports silently never reach any hook. Worse, if no file of the
directory can be sourced, dib-run-parts fails before root.d without a message.

## Example
```
environment.d/.10-defaults
environment.d/10-defaults.bash~
```

## Fix
Rename the file to a plain name such as `10-my-element.bash`, or delete it.
",
    check: Check::FileAndSet(check, check_set),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_environment_file(f) {
        return;
    }
    let name = f.name();
    let why = if name.starts_with('.') {
        Some("dotfiles are never copied into the hooks tree")
    } else if matches!(f.kind, FileKind::Dir) {
        Some("only files are sourced, not directories")
    } else if matches!(f.kind, FileKind::Symlink { dangling: true, .. }) {
        Some("the symlink dangles")
    } else if !environment_name_ok(name) {
        Some("only names made of `[0-9A-Za-z_.-]` are sourced")
    } else {
        None
    };
    if let Some(why) = why {
        sink.report(
            &RULE,
            id,
            None,
            format!("`{}` is never sourced: {why}", f.rel),
        )
        .help("rename it to a plain name such as `10-defaults.bash`, or remove it");
    }
}

/// The plan's `environment-empty` problem: the set as a whole sources nothing.
fn check_set(cx: &SetContext<'_>, sink: &mut Sink) {
    for p in cx.problems(ProblemKind::EnvironmentEmpty) {
        let file = p.paths.first().map_or(cx.request_file, |path| cx.id(path));
        sink.report(
            &RULE,
            file,
            None,
            format!("{} (elements: {})", p.message, p.elements.join(", ")),
        )
        .help("give one of these elements an environment.d file with a plain name, such as `10-defaults.bash`");
    }
}
