use crate::lint::diagnostic::{Edit, Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB201",
    slug: "unsorted-element-deps",
    legacy: &[],
    severity: Severity::Error,
    summary: "element-deps is not sorted",
    docs: r"## What it does
Checks that the names in `element-deps` are in byte order (`LC_ALL=C sort`).

## Why is this bad?
Sorted dependency lists merge without conflicts and make duplicates obvious. dib-lint
requires it (with the caller's locale, so its verdict could change from one machine to the
next; dibkit always uses byte order).

## Example
```
vm
package-installs
```

## Fix
Sort the file (`--fix` does).
",
    check: Check::Element(check),
};

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    let Some(id) = ws.find(e, "element-deps") else {
        return;
    };
    let f = ws.file(id);
    if !super::is_text_file(f) {
        return;
    }
    let names: Vec<(String, usize, std::ops::Range<usize>)> = super::name_lines(f)
        .into_iter()
        .filter(|(n, _, _)| !n.starts_with('#'))
        .collect();
    let Some(pos) = names
        .windows(2)
        .position(|w| w[0].0.as_bytes() > w[1].0.as_bytes())
    else {
        return;
    };
    // Comment lines (an error of their own, DIB205) stay on top, in their order.
    let (mut lines, mut sorted): (Vec<String>, Vec<String>) = super::name_lines(f)
        .into_iter()
        .map(|n| n.0)
        .partition(|n| n.starts_with('#'));
    sorted.sort();
    lines.extend(sorted);
    let mut text = lines.join("\n");
    text.push('\n');
    let (a, b) = (&names[pos], &names[pos + 1]);
    sink.report(
        &RULE,
        id,
        Some(b.2.clone()),
        format!(
            "element-deps is not sorted: `{}` comes after `{}`",
            b.0, a.0
        ),
    )
    .help("sort the names (LC_ALL=C sort)")
    .fix(Edit::Content { file: id, text }, true, "sort element-deps");
}
