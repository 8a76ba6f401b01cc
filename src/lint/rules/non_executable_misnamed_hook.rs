use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::{FileKind, SourceFile, Workspace};
use crate::lint::registry::{Check, Rule};
use crate::order::simulate::run_parts_name_ok;

pub(crate) static RULE: Rule = Rule {
    code: "DIB308",
    slug: "non-executable-misnamed-hook",
    legacy: &[],
    severity: Severity::Error,
    summary: "non-executable hook script whose name dib-run-parts never runs (`10-foo.sh`)",
    docs: r"## What it does
Reports files in a phase directory that are named like hooks but that dib-run-parts never
runs on two counts: they are not executable, and their names fail `^[0-9A-Za-z_-]+$`. A
name is hook-like when it ends in `.sh` or `.bash`, or when it has a numeric prefix
(`10-`) and the file starts with `#!`. Data files (`dhcp.conf`, `99-net.rules`) are left
alone.

## Why is this bad?
The file says it is a step of the build, and the build succeeds without it: dib-run-parts
skips it without a word (the note appears only with `DIB_DEBUG_TRACE` > 0). `DIB101` does
not see it when it lacks a shebang, and `DIB301` only looks at executable files, so making
it executable alone turns this finding into `DIB301`.

## Example
```
$ ls -l install.d
-rw-r--r-- 10-configure.sh
```

## Fix
Rename it without the extension and make it executable:
`mv install.d/10-configure.sh install.d/10-configure && chmod +x install.d/10-configure`.
If it is a library that hooks source, move it out of the phase directory (for example to
the element's `bin/` or a directory of its own) so that its name says so.
",
    check: Check::File(check),
};

/// Leading digits followed by `-` or `_` (`10-foo`), the prefix dib-run-parts orders by.
fn numeric_prefix(name: &str) -> bool {
    let rest = name.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.len() < name.len() && rest.starts_with(['-', '_'])
}

/// A name that says the file is a hook: a shell suffix, or a numbered script.
fn hook_like(f: &SourceFile) -> bool {
    let name = f.name();
    name.ends_with(".sh")
        || name.ends_with(".bash")
        || (numeric_prefix(name) && super::is_script(f))
}

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if f.executable() || !matches!(f.kind, FileKind::File) {
        return; // Executable: DIB301 judges the name.
    }
    let Some(phase) = super::phase_of(f) else {
        return;
    };
    let name = f.name();
    if run_parts_name_ok(name) || name.starts_with('.') || name.chars().any(char::is_whitespace) {
        return; // DIB101; dotfiles are never copied; whitespace is DIB307.
    }
    if !hook_like(f) {
        return;
    }
    let runnable: String = name
        .split('.')
        .next()
        .unwrap_or(name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    let d = sink.report(
        &RULE,
        id,
        None,
        format!(
            "`{phase}/{name}` never runs: it is not executable and dib-run-parts only runs names \
             matching ^[0-9A-Za-z_-]+$"
        ),
    );
    if runnable.is_empty() {
        d.help("give it a name of letters, digits, `_` and `-`, and make it executable");
    } else {
        d.help(format!(
            "rename it to `{runnable}` and make it executable (`chmod +x`); if hooks source it, \
             move it out of `{phase}`"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::numeric_prefix;

    #[test]
    fn numeric_prefixes() {
        for yes in ["10-foo.sh", "0_x", "999-a.py"] {
            assert!(numeric_prefix(yes), "{yes}");
        }
        for no in ["foo.sh", "10foo", "-10-x", "10", ""] {
            assert!(!numeric_prefix(no), "{no}");
        }
    }
}
