use crate::lint::diagnostic::Severity;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB904",
    slug: "unknown-rule-in-config",
    legacy: &[],
    severity: Severity::Warning,
    summary: "dibkit.toml or tox.ini names an unknown rule",
    docs: r#"## What it does
Reports rule names in `dibkit.toml` (`select`, `ignore`, `severity`) and in tox.ini's `[dib-lint] ignore` that match no rule.

## Why is this bad?
The setting does nothing; the rule you meant to configure is still on.

## Example
```
[lint]
ignore = ["DIB1040"]
```

## Fix
Use a rule code, slug or dib-lint name from `dibkit lint --list-rules`.
"#,
    check: Check::Engine,
};
