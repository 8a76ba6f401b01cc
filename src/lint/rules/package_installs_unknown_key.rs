use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB401",
    slug: "package-installs-unknown-key",
    legacy: &[],
    severity: Severity::Error,
    summary: "unknown key in a package-installs rule (silently ignored by dib)",
    docs: r"## What it does
Reports keys of package-installs rules other than `phase`, `uninstall`, `build-only`,
`installtype`, `arch`, `not-arch`, `dib_python_version` and `when`.

## Why is this bad?
dib ignores unknown keys without a word. A typo such as `not_arch` or `uninstal` means the
rule always applies: the package is installed on the architecture you meant to exclude, or
never removed.

## Example
```yaml
grub-pc:
  not_arch: arm64
```

## Fix
Use the right key (`not-arch`).
",
    check: Check::Element(check),
};

pub(crate) const KEYS: &[&str] = &[
    "phase",
    "uninstall",
    "build-only",
    "installtype",
    "arch",
    "not-arch",
    "dib_python_version",
    "when",
];

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        for (key, _) in rule.mapping.unwrap_or(&[]) {
            let Some(name) = key.as_str() else { continue };
            if KEYS.contains(&name) {
                continue;
            }
            let near = KEYS.iter().find(|k| {
                k.replace('-', "_") == name.replace('-', "_") || strsim::levenshtein(k, name) <= 2
            });
            let d = sink.report(
                &RULE,
                id,
                Some(super::node_span(f, key)),
                format!("unknown key `{name}`: dib ignores it, so this rule always applies"),
            );
            match near {
                Some(k) => d.help(format!("did you mean `{k}`?")),
                None => d.help(format!("keys are: {}", KEYS.join(", "))),
            };
        }
    });
}
