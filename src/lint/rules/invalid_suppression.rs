use crate::lint::diagnostic::Severity;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB902",
    slug: "invalid-suppression",
    legacy: &[],
    severity: Severity::Warning,
    summary: "suppression comment names no known rule",
    docs: r#"## What it does
Reports `# dibkit: disable=...` comments that name a rule dibkit does not know.

## Why is this bad?
A misspelt suppression silences nothing, and the finding it was meant for still fails the run, or worse, a later rule with that name is silenced by accident.

## Example
```
# dibkit: disable=DIB9999
```

## Fix
Use a rule code (`DIB104`), slug (`missing-pipefail`) or dib-lint name (`setpipefail`); see `dibkit lint --list-rules`.
"#,
    check: Check::Engine,
};
