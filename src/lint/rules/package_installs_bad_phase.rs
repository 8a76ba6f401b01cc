use crate::element::model::Phase;
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB402",
    slug: "package-installs-bad-phase",
    legacy: &[],
    severity: Severity::Error,
    summary: "package-installs phase other than pre-install.d, install.d or post-install.d",
    docs: r"## What it does
Reports `phase:` values other than `pre-install.d`, `install.d` and `post-install.d`.

## Why is this bad?
package-installs only installs in those three phases. Any other value (`install` without
`.d`, `finalise.d`) is accepted, stored and never installed, with no error.

## Example
```yaml
curl:
  phase: install
```

## Fix
Use one of the three phase names (`install.d`).
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        let Some((_, value)) = rule.mapping.and_then(|m| super::get(m, "phase")) else {
            return;
        };
        let Some(phase) = value.as_str() else {
            return;
        };
        let phases = Phase::PACKAGE_INSTALLS.map(Phase::dir);
        if phases.contains(&phase) {
            return;
        }
        let guess = phases
            .iter()
            .find(|p| p.strip_suffix(".d") == Some(phase) || strsim::levenshtein(p, phase) <= 2);
        let d = sink.report(
            &RULE,
            id,
            Some(super::node_span(f, value)),
            format!("phase `{phase}`: packages for it are never installed"),
        );
        match guess {
            Some(g) => d.help(format!("did you mean `{g}`?")),
            None => d.help("use pre-install.d, install.d or post-install.d"),
        };
    });
}
