use crate::lint::diagnostic::Severity;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB901",
    slug: "unreadable-file",
    legacy: &[],
    severity: Severity::Error,
    summary: "file that cannot be read as text where text is needed",
    docs: r#"## What it does
Reports element files that cannot be read: permission denied, invalid UTF-8 in a script or metadata file, a file over 4 MiB, a symlink loop.

## Why is this bad?
dib reads these files (element-deps, environment.d, hooks, YAML) with tools that fail or misbehave on them, and dibkit cannot check what it cannot read.

## Example
```
element-deps saved as UTF-16
```

## Fix
Fix the permissions, save the file as UTF-8, or move large data out of the element.
"#,
    check: Check::Engine,
};
