use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB104",
    slug: "missing-pipefail",
    legacy: &["setpipefail"],
    severity: Severity::Error,
    summary: "bash script does not enable `set -o pipefail`",
    docs: r#"## What it does
Checks that bash scripts turn on `set -o pipefail`, in any spelling: `set -e -u`, `set -euo pipefail`,
`set -o errexit -o nounset -o pipefail`. A mention in a comment or a string does not count.

## Why is this bad?
Without `set -o pipefail`: a failure on the left of a pipe is ignored. dib hooks are expected to stop at the first error, so a broken step fails the
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
`setpipefail` (dib-lint), which only accepted a line starting `set -o pipefail`, so `set -euo pipefail` failed it.
"#,
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    super::check_set_option(
        ws,
        id,
        sink,
        &RULE,
        |o| o.pipefail,
        "set -o pipefail",
        "set -o pipefail",
    );
}
