use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB405",
    slug: "arch-and-not-arch",
    legacy: &[],
    severity: Severity::Error,
    summary: "a package-installs rule has both `arch` and `not-arch`",
    docs: r"## What it does
Reports rules with both `arch` and `not-arch`.

## Why is this bad?
package-installs stops the build with
`package-installs configuration error: arch and not_arch given for package [...]`.

## Example
```yaml
shim:
  arch: amd64
  not-arch: arm64
```

## Fix
Keep one of the two.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        let Some(m) = rule.mapping else { return };
        if let (Some((k, _)), Some(_)) = (super::get(m, "arch"), super::get(m, "not-arch")) {
            let name = rule.package.as_str().unwrap_or("?");
            sink.report(
                &RULE,
                id,
                Some(super::node_span(f, k)),
                format!(
                    "`{name}` has both `arch` and `not-arch`: package-installs stops the build"
                ),
            )
            .help("keep only one of `arch` and `not-arch`");
        }
    });
}
