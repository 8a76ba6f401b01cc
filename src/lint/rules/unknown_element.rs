use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB202",
    slug: "unknown-element",
    legacy: &[],
    severity: Severity::Error,
    summary: "element-deps names an element that exists nowhere and that nothing provides",
    docs: r"## What it does
Checks each name in `element-deps` against the elements being linted, `ELEMENTS_PATH` and
the built-in library, and against every name those elements provide.

## Why is this bad?
dib fails with `Element 'x' not found` only when the element is used in a build, after the
time it takes to get there.

## Example
```
open-ssh-server
```

## Fix
Fix the name (dibkit suggests the closest one), or add the directory that holds the element
to `ELEMENTS_PATH`.
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
    for (name, _, span) in super::name_lines(f) {
        if name.starts_with('#') || ws.known.contains_key(&name) || ws.is_provided(&name) {
            continue;
        }
        let suggestion = ws
            .known
            .keys()
            .map(|k| (strsim::jaro_winkler(&name, k), k))
            .filter(|(s, _)| *s > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k.clone());
        let d = sink.report(
            &RULE,
            id,
            Some(span),
            format!(
                "element `{name}` is not on ELEMENTS_PATH, not built in, and nothing provides it"
            ),
        );
        match suggestion {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("add the directory that holds it to ELEMENTS_PATH"),
        };
    }
}
