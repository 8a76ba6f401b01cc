use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};
use crate::lint::yaml::{self, Node, ScalarType, Value};

pub(crate) static RULE: Rule = Rule {
    code: "DIB407",
    slug: "yaml11-scalar",
    legacy: &[],
    severity: Severity::Warning,
    summary: "unquoted YAML value that PyYAML reads as a boolean or number",
    docs: r#"## What it does
Reports unquoted package names and rule values that YAML 1.1 (PyYAML, which dib uses)
reads as booleans or numbers and that do not come back as written when dib turns them
into strings: `yes` (`True`), `off`, `1.10` (`1.1`), `010` (`8`).

## Why is this bad?
`dib_python_version: 3.10` is the float 3.1 and never equals `3.10`; a package called `on`
becomes `True`; `arch: 1.10`-style versions lose their trailing zero.

## Example
```yaml
python3-foo:
  dib_python_version: 3.10
```

## Fix
Quote the value: `dib_python_version: "3.10"`.
"#,
    check: Check::Element(check),
};

const STRING_KEYS: &[&str] = &[
    "phase",
    "installtype",
    "arch",
    "not-arch",
    "dib_python_version",
    "when",
];

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    for (id, doc) in super::package_installs(ws, e) {
        let Some(doc) = doc else { continue };
        let f = ws.file(id);
        let mut flag = |node: &Node, what: &str| {
            let Some(t) = node.scalar_type() else { return };
            let kind = match t {
                ScalarType::Bool(_) => "a boolean",
                ScalarType::Int => "an integer",
                ScalarType::Float => "a float",
                ScalarType::Null | ScalarType::Str => return,
            };
            let text = node.as_str().unwrap_or("");
            // dib compares with str(value): only a value that does not survive that round
            // trip changes anything (`2` stays "2"; `3.10` becomes "3.1").
            let Some(shown) = yaml::python_str_if_changed(text) else {
                return;
            };
            sink.report(
                &RULE,
                id,
                Some(super::node_span(f, node)),
                format!("{what} `{text}` is {kind} in YAML 1.1: dib sees `{shown}`"),
            )
            .help(format!("quote it: \"{text}\""));
        };
        if let Value::Map(entries) = &doc.value {
            for (package, _) in entries {
                flag(package, "package name");
            }
        }
        for rule in super::package_rules(doc) {
            for (k, v) in rule.mapping.unwrap_or(&[]) {
                if STRING_KEYS.contains(&k.as_str().unwrap_or("")) {
                    match &v.value {
                        Value::Seq(items) => items.iter().for_each(|i| flag(i, "value")),
                        _ => flag(v, "value"),
                    }
                }
            }
        }
    }
}
