use crate::element::parse::{self, WhenError};
use crate::lint::diagnostic::{Severity, Sink};
use crate::lint::model::{LintElement, Workspace};
use crate::lint::registry::{Check, Rule};
use crate::lint::yaml::Value;

pub(crate) static RULE: Rule = Rule {
    code: "DIB406",
    slug: "malformed-when",
    legacy: &[],
    severity: Severity::Error,
    summary: "`when` statement that package-installs cannot parse",
    docs: r"## What it does
Checks each `when` statement against package-installs' grammar, `NAME = value` or
`NAME != value`, with the name first on the line, and flags `==`.

## Why is this bad?
A statement that does not parse stops the build with `Malformed when line`. `FOO==x` parses,
but as `FOO = '=x'`, which is never true.

## Example
```yaml
grub-efi:
  when: DIB_BOOT == efi
```

## Fix
`when: DIB_BOOT = efi`
",
    check: Check::Element(check),
};

/// Why a statement is malformed, if it is (grammar: `element::parse::when`, the one
/// package-installs evaluation uses too).
pub(crate) fn problem(stmt: &str) -> Option<String> {
    match parse::when(stmt) {
        Err(WhenError::NoName) => Some(format!("`{stmt}` does not start with a variable name")),
        Err(WhenError::NoOperator) => Some(format!(
            "`{stmt}` has no `=` or `!=` after the variable name"
        )),
        Ok(w) if stmt[w.name.len()..].trim_start().starts_with("==") => Some(format!(
            "`==` in `{stmt}` compares with a value starting with `=`"
        )),
        Ok(_) => None,
    }
}

fn check(ws: &Workspace, e: &LintElement, sink: &mut Sink) {
    super::each_package_rule(ws, e, |id, f, rule| {
        let Some((_, v)) = rule.mapping.and_then(|m| super::get(m, "when")) else {
            return;
        };
        let stmts: Vec<&crate::lint::yaml::Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        for s in stmts {
            let Some(text) = s.as_str() else { continue };
            if let Some(why) = problem(text) {
                sink.report(&RULE, id, Some(super::node_span(f, s)), why)
                    .help("write `NAME = value` or `NAME != value`");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn grammar() {
        assert!(super::problem("DIB_X = 1").is_none());
        assert!(super::problem("DIB_X!=").is_none());
        assert!(super::problem(" DIB_X = 1").is_some());
        assert!(super::problem("DIB_X == 1").is_some());
        assert!(super::problem("DIB_X").is_some());
    }
}
