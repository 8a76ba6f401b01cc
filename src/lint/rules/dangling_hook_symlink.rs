use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::{FileKind, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB303",
    slug: "dangling-hook-symlink",
    legacy: &[],
    severity: Severity::Error,
    summary: "symlinked hook whose target is missing",
    docs: r"## What it does
Reports symlinks in phase directories whose target does not exist, and relative symlinks
that leave the element (dib copies links as links, so those dangle in the hooks tree).

## Why is this bad?
dib-run-parts selects files with `find -xtype f`: a dangling link is skipped without any
message, even with tracing on.

## Example
```
install.d/50-tool -> ../../other-element/bin/tool
```

## Fix
Point the link at a file inside the element's own tree (it is copied with the element), or
copy the script.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(phase) = super::phase_of(f) else {
        return;
    };
    let FileKind::Symlink { target, dangling } = &f.kind else {
        return;
    };
    let leaves = !target.starts_with('/') && leaves_element(target);
    if *dangling {
        sink.report(
            &RULE,
            id,
            None,
            format!(
                "`{phase}/{}` links to `{target}`, which does not exist",
                f.name()
            ),
        )
        .help("dib-run-parts skips dangling links silently; fix the target");
    } else if leaves {
        sink.report(
            &RULE,
            id,
            None,
            format!("`{phase}/{}` links to `{target}`, outside the element: it dangles once dib copies it", f.name()),
        )
        .help("link to a file inside the element, or copy the script");
    }
}

/// Whether a relative link target, seen from `<element>/<phase>/`, leaves the element.
fn leaves_element(target: &str) -> bool {
    let mut depth: i32 = 1;
    for part in target.split('/') {
        match part {
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            "" | "." => {}
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn leaving() {
        assert!(!super::leaves_element("../bin/tool"));
        assert!(super::leaves_element("../../other/bin/tool"));
        assert!(!super::leaves_element("50-real"));
    }
}
