use crate::element::model::Phase;
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{FileKind, LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB003",
    slug: "unknown-phase-directory",
    legacy: &[],
    severity: Severity::Error,
    summary: "directory looks like a phase but is not one, so its scripts never run",
    docs: r"## What it does
Reports top-level directories whose name is close to one of dib's phase directories
(`instal.d`, `finalize.d`, `post-install` without `.d`), other `*.d` directories full of
executable scripts that no phase runs (`configure.d`), and phase names used for files.
Directories dib or its elements consume (`environment.d`, `init.d`, `binary-deps.d`,
`udev.d`, `yum.repos.d`, ...) are left alone.

## Why is this bad?
dib runs only the exact phase directories `root.d`, `extra-data.d`, `pre-install.d`,
`install.d`, `post-install.d`, `post-root.d`, `block-device.d`, `pre-finalise.d`,
`finalise.d` and `cleanup.d`. A misspelt directory is copied into the hooks tree and never
looked at again: its scripts silently never run.

## Example
```
my-element/finalize.d/90-cleanup
```

## Fix
Rename the directory to the phase you meant (`finalise.d`).
",
    check: Check::Element(check),
};

/// Directories dib or common elements consume that are not phases.
const KNOWN: &[&str] = &[
    "environment.d",
    "binary-deps.d",
    "ramdisk-install.d",
    "init.d",
    "udev.d",
    "yum.repos.d",
    "modprobe.d",
    "dracut.conf.d",
    "dracut-drivers.d",
    "bin",
    "static",
    "test-elements",
    "tests",
];

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for &id in &e.files {
        let f = ws.file(id);
        if f.rel.contains('/') {
            continue;
        }
        let name = f.rel.as_str();
        if Phase::from_dir(name).is_some() {
            if !matches!(f.kind, FileKind::Dir) && !matches!(f.kind, FileKind::Symlink { .. }) {
                sink.report(
                    &RULE,
                    id,
                    None,
                    format!("`{name}` is a file, not a directory"),
                )
                .help("phase scripts go inside the phase directory");
            }
            continue;
        }
        if KNOWN.contains(&name) || !matches!(f.kind, FileKind::Dir) {
            continue;
        }
        if let Some(phase) = near_phase(name) {
            sink.report(
                &RULE,
                id,
                None,
                format!("`{name}/` is not a phase directory: its scripts never run"),
            )
            .help(format!("did you mean `{phase}`?"));
        } else if name.ends_with(".d") && has_executables(ws, e, name) {
            sink.report(
                &RULE,
                id,
                None,
                format!("`{name}/` holds executable scripts but is not a phase directory: dib never runs them"),
            )
            .help(format!("phases are: {}", Phase::ALL.iter().map(|p| p.dir()).collect::<Vec<_>>().join(", ")));
        }
    }
}

/// Whether the element's directory `dir` holds executable files directly.
fn has_executables(ws: &Workspace, e: &LintElement, dir: &str) -> bool {
    e.files.iter().any(|&id| {
        let f = ws.file(id);
        f.is_direct_child_of(dir) && matches!(f.kind, FileKind::File) && f.executable()
    })
}

/// The phase a directory name is a near-miss of.
fn near_phase(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_suffix(".d").unwrap_or(&lower);
    let bare = bare.replace("finalize", "finalise").replace('_', "-");
    // Only `.d` directories and bare phase names count: `boot/` is not a misspelt `root.d`.
    let dotted = lower.ends_with(".d");
    Phase::ALL.iter().map(|p| p.dir()).find(|dir| {
        let want = dir.strip_suffix(".d").unwrap_or(dir);
        let limit = if want.len() < 7 { 1 } else { 2 };
        bare == want || (dotted && strsim::levenshtein(&bare, want) <= limit)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn near_misses() {
        assert_eq!(super::near_phase("instal.d"), Some("install.d"));
        assert_eq!(super::near_phase("post-install"), Some("post-install.d"));
        assert_eq!(super::near_phase("finalize.d"), Some("finalise.d"));
        assert_eq!(super::near_phase("pre_install.d"), Some("pre-install.d"));
        assert_eq!(super::near_phase("static"), None);
        assert_eq!(super::near_phase("boot"), None);
        assert_eq!(super::near_phase("post.d"), None);
        assert_eq!(super::near_phase("rot.d"), Some("root.d"));
        assert_eq!(super::near_phase("os-refresh-config"), None);
    }
}
