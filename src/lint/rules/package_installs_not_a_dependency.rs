use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB412",
    slug: "package-installs-not-a-dependency",
    legacy: &[],
    severity: Severity::Warning,
    summary: "package list or pkg-map in an element that does not depend on the element reading it",
    docs: r"## What it does
Reports an element that ships `package-installs.yaml` (or `.json`) while its `element-deps`
does not name `package-installs`, or ships a `pkg-map` while its `element-deps` names neither
`package-installs` nor `pkg-map`.

## Why is this bad?
Only the package-installs element installs those packages, and only the pkg-map element reads
a pkg-map. Without the dependency the element works only while some other element of the
image pulls them in: the day that element goes, the packages are silently never installed
(or `install-packages -m` fails inside the chroot).

## Example
```
jenkins-slave/package-installs.yaml
jenkins-slave/element-deps:
openssh-server
```

## Fix
Add `package-installs` to the element's `element-deps` (it brings `pkg-map` too).
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    if e.name == "package-installs" || e.name == "pkg-map" {
        return;
    }
    let deps: Vec<String> = ws
        .find(e, "element-deps")
        .map(|id| {
            super::name_lines(ws.file(id))
                .into_iter()
                .map(|(n, _, _)| n)
                .collect()
        })
        .unwrap_or_default();
    let has = |name: &str| deps.iter().any(|d| d == name);
    if has("package-installs") {
        return;
    }
    let mut reported = false;
    for file in ["package-installs.yaml", "package-installs.json"] {
        if let Some(id) = ws.find(e, file) {
            reported = true;
            sink.report(
                &RULE,
                id,
                None,
                format!(
                    "`{}` lists packages but its element-deps does not name `package-installs`",
                    e.name
                ),
            )
            .help("add `package-installs` to element-deps: it works now only while another element pulls it in");
        }
    }
    // The help above (add `package-installs`) covers the pkg-map too.
    if reported || has("pkg-map") {
        return;
    }
    if let Some(id) = ws.find(e, "pkg-map") {
        sink.report(
            &RULE,
            id,
            None,
            format!(
                "`{}` has a pkg-map but its element-deps names neither `package-installs` nor `pkg-map`",
                e.name
            ),
        )
        .help("add `package-installs` (or `pkg-map`) to element-deps: it works now only while another element pulls it in");
    }
}
