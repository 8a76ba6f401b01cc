use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB404",
    slug: "arch-list-whitespace",
    legacy: &[],
    severity: Severity::Error,
    summary: "spaces in an `arch`/`not-arch` list (items are not trimmed)",
    docs: r"## What it does
Reports `arch` and `not-arch` values with whitespace around the commas.

## Why is this bad?
package-installs splits the value on commas and compares each piece with `$ARCH` without
trimming it. In `not-arch: ppc64, ppc64le` the second item is ` ppc64le` and never matches,
so the package is installed on ppc64le after all.

## Example
```yaml
grub-pc:
  not-arch: ppc64, ppc64le
```

## Fix
`not-arch: ppc64,ppc64le`
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        for key in ["arch", "not-arch"] {
            let Some((_, v)) = rule.mapping.and_then(|m| super::get(m, key)) else {
                continue;
            };
            let Some(text) = v.as_str() else { continue };
            if text.split(',').any(|item| item != item.trim()) {
                let fixed: Vec<&str> = text.split(',').map(str::trim).collect();
                sink.report(
                    &RULE,
                    id,
                    Some(super::node_span(f, v).start..super::node_span(f, v).start + text.len()),
                    format!(
                        "`{key}: {text}`: items keep their spaces, so only the first can match"
                    ),
                )
                .help(format!("write `{key}: {}`", fixed.join(",")));
            }
        }
    });
}
