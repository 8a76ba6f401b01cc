use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB102",
    slug: "missing-set-e",
    legacy: &["sete"],
    severity: Severity::Error,
    summary: "bash script does not enable `set -e`",
    docs: r#"## What it does
Checks that bash scripts turn on `set -e`, in any spelling: `set -e -u`, `set -euo pipefail`,
`set -o errexit -o nounset -o pipefail`. A mention in a comment or a string does not count.

## Why is this bad?
Without `set -e`: a failing command does not stop the script. dib hooks are expected to stop at the first error, so a broken step fails the
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
`sete` (dib-lint), which only accepted `^set -[^ ]*e` lines, so `set -o errexit` failed it.
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    super::check_set_option(ws, id, sink, &RULE, |o| o.errexit, "set -e", "set -eu");
}
