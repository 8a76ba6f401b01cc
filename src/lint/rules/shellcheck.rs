use crate::lint::diagnostic::Severity;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "SC",
    slug: "shellcheck",
    legacy: &[],
    severity: Severity::Warning,
    summary: "finding of ShellCheck on a phase script (`--shellcheck`)",
    docs: r#"## What it does
With `--shellcheck`, runs ShellCheck on every bash script of the elements, telling it the shell is bash and which variables dib provides, and reports its findings under their own codes (`SC2086`, ...).

## Why is this bad?
ShellCheck finds quoting and logic mistakes that a line-based linter cannot.

## Example
```
cp $SRC $TARGET_ROOT/opt
```

## Fix
Follow ShellCheck's advice for the code; suppress with `# shellcheck disable=SC2086` where intended.
"#,
    check: Check::Engine,
};
