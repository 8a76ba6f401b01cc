use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB403",
    slug: "presence-flag-false",
    legacy: &[],
    severity: Severity::Error,
    summary: "`uninstall: false` or `build-only: false` does the opposite of what it says",
    docs: r"## What it does
Reports `uninstall` and `build-only` keys whose value is false (`false`, `no`, `0`, empty).

## Why is this bad?
package-installs looks only at whether the key is present, not at its value:
`uninstall: false` uninstalls the package, `build-only: false` removes it at the end of the
phase.

## Example
```yaml
gcc:
  build-only: false
```

## Fix
Delete the key to install the package permanently.
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        for key in ["uninstall", "build-only"] {
            let Some((k, v)) = rule.mapping.and_then(|m| super::get(m, key)) else {
                continue;
            };
            if v.is_falsy() {
                let effect = if key == "uninstall" {
                    "the package is uninstalled"
                } else {
                    "the package is removed at the end of the phase"
                };
                sink.report(
                    &RULE,
                    id,
                    Some(super::node_span(f, k)),
                    format!(
                        "`{key}` is set to a false value, but only its presence counts: {effect}"
                    ),
                )
                .help(format!("remove the `{key}` key"));
            }
        }
    });
}
