use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB103",
    slug: "missing-set-u",
    legacy: &["setu"],
    severity: Severity::Error,
    summary: "bash script does not enable `set -u`",
    docs: r#"## What it does
Checks that bash scripts turn on `set -u`, in any spelling: `set -e -u`, `set -euo pipefail`,
`set -o errexit -o nounset -o pipefail`. A mention in a comment or a string does not count.

## Why is this bad?
Without `set -u`: a misspelt or unset variable expands to nothing. dib hooks are expected to stop at the first error, so a broken step fails the
build where it broke rather than twenty minutes later.

## Example
```bash
#!/bin/bash
apt-get install -y foo | tee /tmp/log
```

## Fix
Start the script with the standard header (`--fix` inserts it):
```bash
#!/bin/bash
if [ "${DIB_DEBUG_TRACE:-0}" -gt 0 ]; then
    set -x
fi
set -eu
set -o pipefail
```

## Legacy name
`setu` (dib-lint), which only accepted `^set -[^ ]*u` lines, so `set -o nounset` failed it.
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    super::check_set_option(ws, id, sink, &RULE, |o| o.nounset, "set -u", "set -eu");
}
