use crate::lint::diagnostic::Severity;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB903",
    slug: "unused-suppression",
    legacy: &[],
    severity: Severity::Warning,
    summary: "suppression comment that suppresses nothing",
    docs: r#"## What it does
Reports `# dibkit: disable=...` comments for rules that report nothing where the comment applies.

## Why is this bad?
Stale suppressions hide the next real finding of that rule.

## Example
```
# dibkit: disable=DIB104   (the script has set -o pipefail)
```

## Fix
Remove the comment (or the rule from it).
"#,
    check: Check::Engine,
};
