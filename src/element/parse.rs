//! The one grammar of dib's element files: pure parsers that take text and return typed
//! values with positions, never touching the filesystem. `element-deps` and
//! `element-provides` ([`name_lines`], [`name_list`]), package-installs' `when` statements
//! ([`when`]) and their rules ([`package_installs`]), pkg-map ([`pkg_map`]), and which names dib-run-parts runs and environment.d
//! sources ([`run_parts_name_ok`], [`environment_name_ok`]). `order`, `packages`, `build`
//! and `lint` all read these files through here.

use std::collections::BTreeMap;

use crate::yaml::{self, Node, Value};

use super::model::NameLine;

/// Whitespace as Python's `str.strip()` sees it: Unicode whitespace plus the ASCII separators
/// `\x1c`..`\x1f`, which Rust's `char::is_whitespace` does not include.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Every name line of `element-deps` / `element-provides` as dib reads it: lines end at
/// `\r\n`, `\r` or `\n` (Python's universal newlines), each is stripped of Python
/// whitespace, blank ones are dropped. Comments do not exist: a line `# foo` is the name
/// `# foo`. Duplicates are kept (lint reports them); `span` is the name's byte range in
/// `text` and `line` its line number counting every kind of line end.
#[must_use]
pub fn name_lines(text: &str) -> Vec<NameLine> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut line, mut i) = (0, 1, 0);
    while start <= bytes.len() {
        while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
            i += 1;
        }
        let raw = &text[start..i];
        let name = raw.trim_matches(is_py_space);
        if !name.is_empty() {
            let offset = start + (raw.len() - raw.trim_start_matches(is_py_space).len());
            out.push(NameLine {
                name: name.to_owned(),
                line,
                span: offset..offset + name.len(),
            });
        }
        if i >= bytes.len() {
            break;
        }
        i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        start = i;
        line += 1;
    }
    out
}

/// Parses `element-deps` / `element-provides` as dib does: [`name_lines`] with duplicates
/// collapsed (dib reads a set); the first occurrence of a name keeps its place.
#[must_use]
pub fn name_list(text: &str) -> Vec<NameLine> {
    let mut out: Vec<NameLine> = Vec::new();
    for n in name_lines(text) {
        if !out.iter().any(|o| o.name == n.name) {
            out.push(n);
        }
    }
    out
}

/// dib-run-parts' default `RUN_PARTS_REGEX`, `^[0-9A-Za-z_-]+$`.
#[must_use]
pub fn run_parts_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The environment.d name filter, `/[0-9A-Za-z_\.-]+$` on the full path (a backslash is in
/// the bracket too, as POSIX brackets take it literally).
#[must_use]
pub fn environment_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'\\'))
}

/// One `when` statement of a package-installs rule: `NAME = value` or `NAME != value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When<'a> {
    /// The variable: ASCII letters, digits and `_`.
    pub name: &'a str,
    /// `!=` rather than `=`.
    pub negate: bool,
    /// Everything after the operator and the blanks that follow it, as dib compares it
    /// (`NAME == x` compares with `= x`).
    pub value: &'a str,
}

/// Why a `when` statement does not parse; package-installs stops with `Malformed when line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenError {
    /// It does not start with a variable name (a leading blank counts).
    NoName,
    /// No `=` or `!=` follows the name.
    NoOperator,
}

/// Parses a `when` statement as package-installs does: a name made of `[A-Za-z0-9_]` at the
/// very start, optional whitespace, `!=` or `=`, optional whitespace, the value.
///
/// # Errors
/// See [`WhenError`].
pub fn when(stmt: &str) -> Result<When<'_>, WhenError> {
    let name_len = stmt
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if name_len == 0 {
        return Err(WhenError::NoName);
    }
    let rest = stmt[name_len..].trim_start_matches(char::is_whitespace);
    let (negate, value) = if let Some(v) = rest.strip_prefix("!=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (false, v)
    } else {
        return Err(WhenError::NoOperator);
    };
    Ok(When {
        name: &stmt[..name_len],
        negate,
        value: value.trim_start_matches(char::is_whitespace),
    })
}

/// One rule of a package-installs file: a package and one rule mapping for it.
#[derive(Debug, Clone, Copy)]
pub struct PackageRule<'a> {
    /// The package key.
    pub package: &'a Node,
    /// The rule mapping; `None` for a value that is empty or false, a plain install.
    pub mapping: Option<&'a [(Node, Node)]>,
}

impl<'a> PackageRule<'a> {
    /// The key and value of `key` in the rule mapping.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&'a Node, &'a Node)> {
        self.mapping?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The value of `key` as Python's `str()` shows it, when it is a scalar (package-installs
    /// compares these strings).
    #[must_use]
    pub fn scalar(&self, key: &str) -> Option<String> {
        self.get(key).and_then(python_str)
    }

    /// The `when` statements: one string, or a list of them.
    #[must_use]
    pub fn when(&self) -> Vec<String> {
        match self.get("when") {
            None => Vec::new(),
            Some(w) => match &w.value {
                Value::Seq(items) => items.iter().filter_map(python_str).collect(),
                _ => python_str(w).into_iter().collect(),
            },
        }
    }
}

/// A scalar as Python's `str()` of PyYAML's value shows it (`yes` → `True`, `010` → `8`).
#[must_use]
pub fn python_str(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar { text, plain } => Some(match yaml::python_str_if_changed(text) {
            Some(shown) if *plain => shown,
            _ => text.clone(),
        }),
        _ => None,
    }
}

/// One package of a package-installs file and its rules.
#[derive(Debug, Clone)]
pub struct PackageEntry<'a> {
    pub package: &'a Node,
    /// The value (rules, a list of rules, or nothing).
    pub value: &'a Node,
    /// The rules package-installs applies: one per mapping.
    pub rules: Vec<PackageRule<'a>>,
    /// Set when the value is something package-installs crashes on; `rules` then holds the
    /// mappings that are well formed.
    pub error: Option<PackageValueError>,
}

/// A package value package-installs crashes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageValueError {
    /// A list with an item that is not a rule mapping.
    ItemNotAMapping,
    /// A plain value (`curl: install.d`) rather than a rule mapping.
    NotARule,
}

/// A package-installs document package-installs cannot read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageInstallsError {
    /// An empty document (PyYAML gives `None`; package-installs crashes on it).
    Empty,
    /// The top level is not a mapping of package names.
    NotAMapping,
}

/// Reads a parsed package-installs document (`.yaml`, or `.json` parsed as YAML) as
/// package-installs-squash does: per package, a rule mapping, a list of them, or an empty or
/// false value for a plain install.
///
/// # Errors
/// See [`PackageInstallsError`].
pub fn package_installs(doc: Option<&Node>) -> Result<Vec<PackageEntry<'_>>, PackageInstallsError> {
    let doc = doc.ok_or(PackageInstallsError::Empty)?;
    let Value::Map(entries) = &doc.value else {
        return Err(PackageInstallsError::NotAMapping);
    };
    Ok(entries
        .iter()
        .map(|(package, value)| {
            let rule = |mapping| PackageRule { package, mapping };
            let (rules, error) = match &value.value {
                Value::Map(m) => (vec![rule(Some(m.as_slice()))], None),
                Value::Seq(items) if !items.is_empty() => {
                    let rules: Vec<PackageRule<'_>> = items
                        .iter()
                        .filter_map(|i| match &i.value {
                            Value::Map(m) => Some(rule(Some(m.as_slice()))),
                            _ => None,
                        })
                        .collect();
                    let error =
                        (rules.len() < items.len()).then_some(PackageValueError::ItemNotAMapping);
                    (rules, error)
                }
                _ if value.is_falsy() => (vec![rule(None)], None),
                _ => (Vec::new(), Some(PackageValueError::NotARule)),
            };
            PackageEntry {
                package,
                value,
                rules,
                error,
            }
        })
        .collect())
}

/// A package name → packages table of a pkg-map section. `None` for a value that is not a
/// string (`null` means "install nothing"; pkg-map treats every other value the same way).
pub type PkgNames = BTreeMap<String, Option<String>>;

/// A pkg-map file: its four sections, and what in it pkg-map ignores or misreads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgMap {
    pub default: PkgNames,
    /// Family (`debian`, `redhat`, ...) → names.
    pub family: BTreeMap<String, PkgNames>,
    /// Distribution → names.
    pub distro: BTreeMap<String, PkgNames>,
    /// Distribution → release → names.
    pub release: BTreeMap<String, BTreeMap<String, PkgNames>>,
    pub issues: Vec<PkgMapIssue>,
}

/// Something in a pkg-map file that pkg-map ignores or misreads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgMapIssue {
    /// Dotted path of the offending key (`family.debian`), empty for the whole file.
    pub path: String,
    pub kind: PkgMapIssueKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkgMapIssueKind {
    /// The file is not a JSON object.
    NotAnObject,
    /// A top-level key other than the four sections: ignored.
    UnknownSection,
    /// A section or subsection that is not an object: ignored.
    SectionNotAnObject,
    /// A package value that is neither a string nor null: installs nothing.
    BadValue,
}

/// Parses a pkg-map file (JSON) into its sections.
///
/// # Errors
/// The text is not JSON.
pub fn pkg_map(text: &str) -> Result<PkgMap, serde_json::Error> {
    use serde_json::Value;
    fn names(v: &Value, path: &str, issues: &mut Vec<PkgMapIssue>) -> PkgNames {
        let Value::Object(m) = v else {
            issues.push(PkgMapIssue {
                path: path.to_owned(),
                kind: PkgMapIssueKind::SectionNotAnObject,
            });
            return PkgNames::new();
        };
        m.iter()
            .map(|(k, v)| {
                let packages = match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    _ => {
                        issues.push(PkgMapIssue {
                            path: format!("{path}.{k}"),
                            kind: PkgMapIssueKind::BadValue,
                        });
                        None
                    }
                };
                (k.clone(), packages)
            })
            .collect()
    }
    fn nested<T>(
        v: &Value,
        path: &str,
        issues: &mut Vec<PkgMapIssue>,
        inner: impl Fn(&Value, &str, &mut Vec<PkgMapIssue>) -> T,
    ) -> BTreeMap<String, T> {
        let Value::Object(m) = v else {
            issues.push(PkgMapIssue {
                path: path.to_owned(),
                kind: PkgMapIssueKind::SectionNotAnObject,
            });
            return BTreeMap::new();
        };
        m.iter()
            .map(|(k, v)| (k.clone(), inner(v, &format!("{path}.{k}"), issues)))
            .collect()
    }
    let value: Value = serde_json::from_str(text)?;
    let mut map = PkgMap::default();
    let Value::Object(top) = &value else {
        map.issues.push(PkgMapIssue {
            path: String::new(),
            kind: PkgMapIssueKind::NotAnObject,
        });
        return Ok(map);
    };
    let mut issues = Vec::new();
    for (section, body) in top {
        match section.as_str() {
            "default" => map.default = names(body, section, &mut issues),
            "family" => map.family = nested(body, section, &mut issues, names),
            "distro" => map.distro = nested(body, section, &mut issues, names),
            "release" => {
                map.release = nested(body, section, &mut issues, |v, p, i| nested(v, p, i, names));
            }
            _ => issues.push(PkgMapIssue {
                path: section.clone(),
                kind: PkgMapIssueKind::UnknownSection,
            }),
        }
    }
    map.issues = issues;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, usize)> {
        name_list(text)
            .into_iter()
            .map(|n| (n.name, n.line))
            .collect()
    }

    #[test]
    fn strips_and_drops_blank_lines() {
        assert_eq!(names("\n\n  os  \n\n"), [("os".to_owned(), 3)]);
    }

    #[test]
    fn comments_are_names() {
        assert_eq!(
            names("# a comment\nos"),
            [("# a comment".to_owned(), 1), ("os".to_owned(), 2)]
        );
    }

    #[test]
    fn duplicates_collapse_to_first_line() {
        assert_eq!(
            names("a\nb\na\n"),
            [("a".to_owned(), 1), ("b".to_owned(), 2)]
        );
    }

    #[test]
    fn universal_newlines_and_python_whitespace() {
        assert_eq!(
            names("a\r\nb\rc\x1c\n\t d\x0b"),
            [
                ("a".to_owned(), 1),
                ("b".to_owned(), 2),
                ("c".to_owned(), 3),
                ("d".to_owned(), 4)
            ]
        );
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "  a \r\n# c\rb\x1c\nb\n";
        let lines = name_lines(text);
        let got: Vec<(&str, usize, &str)> = lines
            .iter()
            .map(|n| (n.name.as_str(), n.line, &text[n.span.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 1, "a"),
                ("# c", 2, "# c"),
                ("b", 3, "b"),
                ("b", 4, "b")
            ]
        );
        assert_eq!(name_list(text).len(), 3);
    }

    /// See: issue 17 (`a\rb` is two names for dib, so for order and lint alike).
    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        assert_eq!(names("a\rb"), [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    }

    #[test]
    fn when_statements() {
        assert_eq!(
            when("DIB_X != a b"),
            Ok(When {
                name: "DIB_X",
                negate: true,
                value: "a b"
            })
        );
        assert_eq!(when("X=").map(|w| (w.negate, w.value)), Ok((false, "")));
        assert_eq!(when("X == 1").map(|w| w.value), Ok("= 1"));
        assert_eq!(when(" X = 1"), Err(WhenError::NoName));
        assert_eq!(when("X"), Err(WhenError::NoOperator));
        assert_eq!(when("X ~ 1"), Err(WhenError::NoOperator));
    }

    #[test]
    fn package_installs_rules_as_package_installs_reads_them() {
        let doc = yaml::parse(
            "a:\nb: []\nc:\n  phase: pre-install.d\n  when: [X = 1, Y != 2]\nd:\n  - arch: amd64\n  - x\ne: install.d\n",
        )
        .unwrap();
        let entries = package_installs(doc.as_ref()).unwrap();
        let shape: Vec<(String, usize, Option<PackageValueError>)> = entries
            .iter()
            .map(|e| (python_str(e.package).unwrap(), e.rules.len(), e.error))
            .collect();
        assert_eq!(
            shape,
            [
                ("a".to_owned(), 1, None),
                ("b".to_owned(), 1, None),
                ("c".to_owned(), 1, None),
                ("d".to_owned(), 1, Some(PackageValueError::ItemNotAMapping)),
                ("e".to_owned(), 0, Some(PackageValueError::NotARule)),
            ]
        );
        assert!(entries[0].rules[0].mapping.is_none());
        let c = entries[2].rules[0];
        assert_eq!(c.scalar("phase").as_deref(), Some("pre-install.d"));
        assert_eq!(c.when(), ["X = 1", "Y != 2"]);
        assert_eq!(entries[3].rules[0].scalar("arch").as_deref(), Some("amd64"));
        assert_eq!(
            package_installs(None).unwrap_err(),
            PackageInstallsError::Empty
        );
        let list = yaml::parse("- a\n").unwrap();
        assert_eq!(
            package_installs(list.as_ref()).unwrap_err(),
            PackageInstallsError::NotAMapping
        );
    }

    #[test]
    fn pkg_map_sections_and_issues() {
        let m = pkg_map(
            r#"{"default": {"a": "x y", "b": null, "c": 1},
                "family": {"debian": {"a": "d"}, "suse": []},
                "release": {"centos": {"8": {"a": "r"}}}, "distros": {}}"#,
        )
        .unwrap();
        assert_eq!(m.default["a"].as_deref(), Some("x y"));
        assert_eq!(m.default["b"], None);
        assert_eq!(m.family["debian"]["a"].as_deref(), Some("d"));
        assert_eq!(m.release["centos"]["8"]["a"].as_deref(), Some("r"));
        let issues: Vec<(&str, PkgMapIssueKind)> =
            m.issues.iter().map(|i| (i.path.as_str(), i.kind)).collect();
        assert_eq!(
            issues,
            [
                ("default.c", PkgMapIssueKind::BadValue),
                ("distros", PkgMapIssueKind::UnknownSection),
                ("family.suse", PkgMapIssueKind::SectionNotAnObject),
            ]
        );
        assert_eq!(
            pkg_map("[]").unwrap().issues[0].kind,
            PkgMapIssueKind::NotAnObject
        );
        assert!(pkg_map("{").is_err());
    }

    #[test]
    fn no_trailing_newline_needed() {
        assert_eq!(names("x"), [("x".to_owned(), 1)]);
    }
}
