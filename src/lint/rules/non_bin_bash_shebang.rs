use crate::lint::diagnostic::{Edit, FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB109",
    slug: "non-bin-bash-shebang",
    legacy: &[],
    severity: Severity::Error,
    summary: "bash script with a shebang other than `#!/bin/bash`",
    docs: r"## What it does
Reports bash shebangs other than exactly `#!/bin/bash`: `#!/usr/bin/env bash`,
`#!/bin/bash -x`, trailing spaces.

## Why is this bad?
Hooks run inside the image chroot, where `/usr/bin/env` may be missing and `PATH` is
dib's; options on the shebang line are lost when a script is run as `bash script`, and
tracing belongs to `DIB_DEBUG_TRACE`.

## Example
```bash
#!/usr/bin/env bash
```

## Fix
Use `#!/bin/bash` (`--fix` does) and move options into `set` lines.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    let Some(first) = f.first_line() else { return };
    if !first.starts_with("#!") || !first.contains("bash") || first == "#!/bin/bash" {
        return;
    }
    let text = f.text.as_deref().unwrap_or("");
    let fixed = format!("#!/bin/bash{}", &text[first.len()..]);
    let d = sink.report(
        &RULE,
        id,
        Some(f.line_span(1)),
        format!("shebang is `{first}`, not `#!/bin/bash`"),
    );
    d.help("use exactly `#!/bin/bash`; put shell options in `set` lines");
    // Options on the line (`-x`, `-e`) change behaviour when dropped: not a safe fix then.
    let safe = first.trim_end() == "#!/usr/bin/env bash" || first.trim_end() == "#!/bin/bash";
    d.fix(
        Edit::Content {
            file: id,
            text: fixed,
        },
        safe,
        "use `#!/bin/bash`",
    );
}
