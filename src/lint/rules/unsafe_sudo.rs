use crate::element::model::Phase;
use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};
use crate::lint::shell;

pub(crate) static RULE: Rule = Rule {
    code: "DIB112",
    slug: "unsafe-sudo",
    legacy: &["safe_sudo"],
    severity: Severity::Error,
    summary: "`sudo` in a host-side phase that does not target the image",
    docs: r"## What it does
In phases that run on the build host (`root.d`, `extra-data.d`, `post-root.d`,
`block-device.d`, `pre-finalise.d`, `cleanup.d`), reports `sudo` commands that do not
mention the image (`$TARGET_ROOT`, `$TMP_MOUNT_PATH`, `$IMAGE_BLOCK_DEVICE`,
`$TMP_IMAGE_PATH`) or `install-packages`.

## Why is this bad?
Host-side hooks run with the builder's privileges on the build machine. A `sudo` that does
not point into the image can change the host.

## Example
```bash
sudo rm -rf /etc/apt/sources.list.d
```

## Fix
Point the command at the image (`sudo rm -rf $TARGET_ROOT/etc/apt/sources.list.d`), or
mark a deliberate host change with `# dib-lint: safe_sudo`.
",
    check: Check::File(check),
};

const OK: &[&str] = &[
    "dib-lint: safe_sudo",
    "install-packages",
    "TARGET_ROOT",
    "IMAGE_BLOCK_DEVICE",
    "TMP_MOUNT_PATH",
    "TMP_IMAGE_PATH",
];

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    // dib-lint matches the directory name unanchored, so nested files count too.
    if !super::is_text_file(f)
        || !Phase::ALL
            .iter()
            .any(|p| !p.chroot() && f.rel.starts_with(&format!("{}/", p.dir())))
    {
        return;
    }
    if !super::in_dib_lint_loop(f) {
        return;
    }
    let lines = shell::code_lines(f);
    for (i, line) in lines.iter().enumerate() {
        if line.heredoc || line.is_comment() || !line.text.contains("sudo ") {
            continue;
        }
        // Judge the whole command: continuation lines belong to it (dib-lint's `read` joins
        // them too).
        let mut command = line.text.to_owned();
        for next in lines[i + 1..].iter().take_while(|l| l.continuation) {
            command.push_str(next.text);
        }
        if OK.iter().any(|ok| command.contains(ok)) {
            continue;
        }
        let pos = line.text.find("sudo ").unwrap_or(0);
        sink.report(
            &RULE,
            id,
            Some(line.span.start + pos..line.span.start + pos + 4),
            "potentially unsafe `sudo` on the build host",
        )
        .help("target the image ($TARGET_ROOT, $TMP_MOUNT_PATH), or add `# dib-lint: safe_sudo` if the host change is intended");
    }
}
