use crate::deps::expand::ResolveError;
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::registry::{Check, Rule, SetContext};

pub(crate) static RULE: Rule = Rule {
    code: "DIB207",
    slug: "provides-conflict",
    legacy: &[],
    severity: Severity::Error,
    summary: "two elements of the set provide the same name, or a requested element is provided",
    docs: r"## What it does
With `--elements`, expands the set as dib does and reports names provided twice (two
operating systems, two `block-device-*` elements) and requested elements that another
element of the set provides.

## Why is this bad?
dib stops with `AlreadyProvidedException` after resolving the whole set.

## Example
```
dibkit lint --elements debian-minimal ubuntu-minimal
```

## Fix
Keep one provider of each name in the set.
",
    check: Check::Set(check),
};

fn check(cx: &SetContext<'_>, sink: &mut Sink) {
    let Err(err) = &cx.outcome.result else { return };
    let message = match err {
        ResolveError::AlreadyProvided { .. } | ResolveError::Conflict { .. } => err.message(),
        _ => return,
    };
    let element = match err {
        ResolveError::AlreadyProvided { element, .. } => Some(element.clone()),
        ResolveError::Conflict { items } => items.first().and_then(|i| i.1.first().cloned()),
        _ => None,
    };
    let file = element
        .and_then(|e| cx.lib.get(&e))
        .map_or(cx.request_file, |e| {
            cx.id(&e.root.display_path("element-provides"))
        });
    sink.report(&RULE, file, None, message)
        .help("keep only one element that provides each name in the set");
}
