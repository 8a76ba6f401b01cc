use crate::element::parse::{self, PackageValueError};
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};
use crate::lint::yaml::Value;

pub(crate) static RULE: Rule = Rule {
    code: "DIB409",
    slug: "package-installs-bad-value",
    legacy: &[],
    severity: Severity::Error,
    summary: "package-installs structure that crashes dib",
    docs: r"## What it does
Checks the shape of package-installs files: a mapping of package names to nothing, a rule
mapping, or a list of rule mappings; `arch`/`not-arch` as comma-separated strings.

## Why is this bad?
Anything else crashes package-installs in the middle of the build: a package mapped to a
string (`curl: install.d`), to `true`, to a list of strings, or an `arch` written as a YAML
list.

## Example
```yaml
curl: install.d
grub-pc:
  arch: [amd64, i386]
```

## Fix
```yaml
curl:
  phase: install.d
grub-pc:
  arch: amd64,i386
```
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for (id, doc) in super::package_installs(ws, e) {
        let Some(doc) = doc else { continue };
        let f = ws.file(id);
        let Ok(entries) = parse::package_installs(Some(doc)) else {
            sink.report(
                &RULE,
                id,
                Some(super::node_span(f, doc)),
                "the top level must be a mapping of package names",
            )
            .help("write `package-name:` entries, one per package");
            continue;
        };
        for entry in &entries {
            let name = entry.package.as_str().unwrap_or("?");
            let what = match entry.error {
                None => continue,
                Some(PackageValueError::ItemNotAMapping) => {
                    "a list whose items are not rule mappings"
                }
                Some(PackageValueError::NotARule) => "a plain value instead of a rule mapping",
            };
            sink.report(
                &RULE,
                id,
                Some(super::node_span(f, entry.value)),
                format!("`{name}` is given {what}: package-installs crashes on it"),
            )
            .help("give a mapping of rule keys (phase, arch, ...), a list of such mappings, or nothing");
        }
        for rule in super::package_rules(doc) {
            for key in ["arch", "not-arch"] {
                if let Some((_, v)) = rule.mapping.and_then(|m| super::get(m, key)) {
                    if !matches!(v.value, Value::Scalar { .. }) {
                        sink.report(
                            &RULE,
                            id,
                            Some(super::node_span(f, v)),
                            format!("`{key}` must be a comma-separated string, not a list"),
                        )
                        .help(format!("write `{key}: amd64,arm64`"));
                    }
                }
            }
        }
    }
}
