use crate::lint::diagnostic::{FileId, Severity, Sink};
use crate::lint::model::Workspace;
use crate::lint::registry::{Check, Rule};

pub(crate) static RULE: Rule = Rule {
    code: "DIB004",
    slug: "invalid-yaml",
    legacy: &[],
    severity: Severity::Error,
    summary: "YAML file does not parse (or holds several documents)",
    docs: r"## What it does
Parses every `*.yaml` file of an element as one YAML document.

## Why is this bad?
dib reads `package-installs.yaml` and block-device configs with `yaml.safe_load`; a file
that does not parse, or that holds more than one document, fails the build.

## Example
```yaml
curl:
  phase: install.d
 git:
```

## Fix
Correct the YAML; keep one document per file.
",
    check: Check::File(check),
};

fn check(ws: &Workspace, id: FileId, sink: &mut Sink) {
    let f = ws.file(id);
    if !f.name().ends_with(".yaml") {
        return;
    }
    if f.text.is_none() && !f.bytes.is_empty() {
        sink.report(
            &RULE,
            id,
            None,
            "not valid YAML: the file is not UTF-8 text",
        )
        .help("save it as UTF-8");
        return;
    }
    if !super::is_text_file(f) {
        return;
    }
    if let Some(Err(e)) = f.yaml() {
        let span = e.offset.map(|o| o..o);
        sink.report(&RULE, id, span, format!("not valid YAML: {}", e.message))
            .help("dib loads this file with yaml.safe_load: one well-formed document");
    }
}
