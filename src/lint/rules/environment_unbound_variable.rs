use std::collections::BTreeSet;

use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB116",
    slug: "environment-unbound-variable",
    legacy: &[],
    severity: Severity::Warning,
    summary: "environment.d file reads a variable that may be unset",
    docs: r#"## What it does
Reports references to variables in environment.d files that are neither guarded
(`${VAR:-default}`), assigned earlier in the file, always set by dib, exported by the
operating-system elements (`DISTRO_NAME`, `DIB_RELEASE`, ...), nor assigned by any other
environment file being linted.

## Why is this bad?
dib sources environment files under `set -eu`. An unset variable is a fatal
`VAR: unbound variable` that aborts the phase, for every user who did not happen to export
it.

## Example
```bash
export DIB_MIRROR=$DIB_DISTRIBUTION_MIRROR
```

## Fix
```bash
export DIB_MIRROR=${DIB_DISTRIBUTION_MIRROR:-}
```
"#,
    check: Check::File(check),
};

/// Variables dib (or bash) always sets when environment files are sourced.
const ALWAYS_SET: &[&str] = &[
    "ARCH",
    "DIB_ARGS",
    "DIB_CHECKSUM",
    "DIB_DEBUG_TRACE",
    "DIB_DEFAULT_INSTALLTYPE",
    "DIB_ENV",
    "DIB_IMAGE_CACHE",
    "DIB_LOCKFILES",
    "DIB_MIN_TMPFS",
    "DIB_NO_TMPFS",
    "DIB_OFFLINE",
    "DIB_PYTHON_EXEC",
    "ELEMENTS_PATH",
    "FS_TYPE",
    "HOME",
    "IFS",
    "IMAGE_ELEMENT",
    "IMAGE_ELEMENT_YAML",
    "IMAGE_NAME",
    "IMAGE_TYPE",
    "LC_ALL",
    "PATH",
    "PWD",
    "TMP_BUILD_DIR",
    "TMP_HOOKS_PATH",
    "TMP_IMAGE_DIR",
    "TMP_MOUNT_PATH",
    "BASH",
    "BASH_SOURCE",
    "BASH_VERSION",
    "BASHPID",
    "EUID",
    "UID",
    "LINENO",
    "RANDOM",
    "SECONDS",
    "FUNCNAME",
    "PPID",
    "OSTYPE",
    "HOSTTYPE",
    "MACHTYPE",
    "SHELLOPTS",
    "PIPESTATUS",
    "_LIB",
];

/// Variables the operating-system and distribution elements export for everyone.
const FROM_ELEMENTS: &[&str] = &[
    "DISTRO_NAME",
    "DIB_RELEASE",
    "DIB_INIT_SYSTEM",
    "DIB_PYTHON_VERSION",
    "EFI_BOOT_DIR",
    "YUM",
];

/// Names some environment.d file of the workspace assigns: in a real set, another element
/// may well export them first, so they are not reported. Stored in `Workspace::env_assigned`.
pub(crate) fn assigned_anywhere(ws: &Workspace) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in &ws.elements {
        for &id in &e.files {
            let f = ws.file(id);
            if super::is_environment_file(f) && super::is_text_file(f) {
                for line in shell::code_lines(f) {
                    if !line.heredoc && !line.is_comment() {
                        out.extend(shell::assigned_names(line.code()));
                    }
                }
            }
        }
    }
    out
}

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !super::is_environment_file(f) || !super::is_text_file(f) {
        return;
    }
    let elsewhere = &ws.env_assigned;
    let mut assigned: BTreeSet<String> = BTreeSet::new();
    let mut in_function = 0usize;
    for line in shell::code_lines(f) {
        if line.heredoc || line.is_comment() {
            continue;
        }
        let code = line.code();
        // Function bodies run later, when the caller may have set things up: not judged.
        if code.contains("() {") || code.trim_start().starts_with("function ") {
            in_function += 1;
        }
        // After `source other-file` anything may be set: stop judging.
        let first = code.split_whitespace().next().unwrap_or("");
        if first == "source" || first == "." {
            break;
        }
        if in_function == 0 {
            for r in shell::var_refs(code) {
                if r.guarded {
                    // `[ -n "${X:-}" ]` tests it: later plain uses are deliberate.
                    assigned.insert(r.name.clone());
                    continue;
                }
                if r.guarded
                    || assigned.contains(&r.name)
                    || ALWAYS_SET.contains(&r.name.as_str())
                    || FROM_ELEMENTS.contains(&r.name.as_str())
                    || elsewhere.contains(&r.name)
                {
                    continue;
                }
                // `[ -z "${X+x}" ]`-style tests are guarded; so is `${X}` after `: ${X:=..}`.
                sink.report(
                    &RULE,
                    id,
                    Some(line.span.start + r.range.start..line.span.start + r.range.end),
                    format!(
                        "`{}` may be unset here; dib sources this file under `set -u`",
                        r.name
                    ),
                )
                .help(format!("give it a default: `${{{}:-}}`", r.name));
            }
        }
        if in_function > 0 && code.trim() == "}" {
            in_function -= 1;
        }
        assigned.extend(shell::assigned_names(code));
    }
}
