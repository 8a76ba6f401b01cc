//! package-installs and pkg-map, as dib's package-installs-squash, package-installs-v2 and
//! pkg-map evaluate them: per phase, what is installed and removed, after the
//! `phase`, `uninstall`, `build-only`, `installtype`, `arch`, `not-arch`,
//! `dib_python_version` and `when` rules and the elements' pkg-maps. Pure: callers read the
//! files and supply the environment.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::lint::yaml::{self, Node, Value};

/// The phases package-installs acts in.
pub const PHASES: [&str; 3] = ["pre-install.d", "install.d", "post-install.d"];

/// One element's declarations: its name and the contents of each package-installs file.
#[derive(Debug, Clone)]
pub struct Declarations {
    pub element: String,
    /// `(file path for messages, text)`, `.json` before `.yaml`, every copy on the path.
    pub files: Vec<(String, String)>,
}

/// What package-installs would do in one phase, before pkg-map.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PhaseLists {
    /// `(package, element)`, in declaration order, duplicates kept (as dib keeps them).
    pub install: Vec<(String, String)>,
    pub uninstall: Vec<(String, String)>,
}

/// An error package-installs stops the build with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct Error {
    pub file: String,
    pub message: String,
}

fn scalar(n: &Node) -> Option<String> {
    match &n.value {
        Value::Scalar { text, .. } => Some(match yaml::python_str_if_changed(text) {
            Some(shown) if matches!(n.value, Value::Scalar { plain: true, .. }) => shown,
            _ => text.clone(),
        }),
        _ => None,
    }
}

fn get<'a>(m: &'a [(Node, Node)], key: &str) -> Option<&'a Node> {
    m.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Evaluates a `when` statement: `NAME = value` / `NAME != value`.
fn when_holds(stmt: &str, env: &BTreeMap<String, String>, file: &str) -> Result<bool, Error> {
    let malformed = || Error {
        file: file.to_owned(),
        message: format!("Malformed when line: <{stmt}>"),
    };
    let name_len = stmt
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if name_len == 0 {
        return Err(malformed());
    }
    let name = &stmt[..name_len];
    let rest = stmt[name_len..].trim_start_matches(|c: char| c.is_whitespace());
    let (negate, value) = if let Some(v) = rest.strip_prefix("!=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (false, v)
    } else {
        return Err(malformed());
    };
    let value = value.trim_start_matches(|c: char| c.is_whitespace());
    let actual = env.get(name).ok_or_else(|| Error {
        file: file.to_owned(),
        message: format!("The variable <{name}> is not set"),
    })?;
    Ok((actual == value) != negate)
}

/// Applies package-installs' per-rule filters. `Ok(false)` drops the rule.
fn filters_pass(
    element: &str,
    rule: &[(Node, Node)],
    package: &str,
    env: &BTreeMap<String, String>,
    file: &str,
) -> Result<bool, Error> {
    let var = |k: &str| env.get(k).cloned().unwrap_or_default();
    if let Some(t) = get(rule, "installtype").and_then(scalar) {
        let own = format!("DIB_INSTALLTYPE_{}", element.replace('-', "_"));
        let wanted = env
            .get(&own)
            .or_else(|| env.get("DIB_DEFAULT_INSTALLTYPE"))
            .cloned()
            .unwrap_or_else(|| "source".to_owned());
        if t != wanted {
            return Ok(false);
        }
    }
    let arch = get(rule, "arch");
    let not_arch = get(rule, "not-arch");
    if arch.is_some() && not_arch.is_some() {
        return Err(Error {
            file: file.to_owned(),
            message: format!(
                "package-installs configuration error: arch and not_arch given for package [{package}]"
            ),
        });
    }
    let current = var("ARCH");
    // Items are not trimmed: dib discards its own strip().
    if let Some(a) = arch.and_then(scalar) {
        if !a.split(',').any(|x| x == current) {
            return Ok(false);
        }
    }
    if let Some(a) = not_arch.and_then(scalar) {
        if a.split(',').any(|x| x == current) {
            return Ok(false);
        }
    }
    if let Some(v) = get(rule, "dib_python_version").and_then(scalar) {
        if v != var("DIB_PYTHON_VERSION") {
            return Ok(false);
        }
    }
    if let Some(w) = get(rule, "when") {
        let stmts: Vec<String> = match &w.value {
            Value::Seq(items) => items.iter().filter_map(scalar).collect(),
            _ => scalar(w).into_iter().collect(),
        };
        // Every statement is evaluated: an unset variable fails even after a false one.
        let mut all = true;
        for s in stmts {
            all &= when_holds(&s, env, file)?;
        }
        if !all {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Squashes every element's declarations, in the order given, as package-installs-squash.
///
/// # Errors
/// What dib fails on: unparsable or empty files, values that are not rules, `arch` with
/// `not-arch`, malformed `when`, a `when` on an unset variable.
pub fn squash(
    decls: &[Declarations],
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, PhaseLists>, Error> {
    let mut data: BTreeMap<String, PhaseLists> = BTreeMap::new();
    for d in decls {
        for (file, text) in &d.files {
            let err = |m: String| Error {
                file: file.clone(),
                message: m,
            };
            let doc = yaml::parse(text)
                .map_err(|e| err(format!("cannot be parsed: {}", e.message)))?
                .ok_or_else(|| err("is empty: package-installs crashes on it".to_owned()))?;
            let Value::Map(entries) = &doc.value else {
                return Err(err("the top level is not a mapping".to_owned()));
            };
            for (pkg_node, params) in entries {
                let package = scalar(pkg_node).unwrap_or_default();
                let rules: Vec<&[(Node, Node)]> = match &params.value {
                    Value::Map(m) => vec![m.as_slice()],
                    Value::Seq(items) if !items.is_empty() => {
                        let mut v = Vec::new();
                        for i in items {
                            match &i.value {
                                Value::Map(m) => v.push(m.as_slice()),
                                _ => {
                                    return Err(err(format!(
                                        "`{package}`: a list item is not a rule mapping"
                                    )));
                                }
                            }
                        }
                        v
                    }
                    _ if params.is_falsy() => vec![&[][..]],
                    _ => return Err(err(format!("`{package}`: the value is not a rule mapping"))),
                };
                for rule in rules {
                    apply_rule(&mut data, &d.element, &package, rule, env, file)?;
                }
            }
        }
    }
    Ok(data)
}

fn apply_rule(
    data: &mut BTreeMap<String, PhaseLists>,
    element: &str,
    package: &str,
    rule: &[(Node, Node)],
    env: &BTreeMap<String, String>,
    file: &str,
) -> Result<(), Error> {
    let phase = get(rule, "phase")
        .and_then(scalar)
        .unwrap_or_else(|| "install.d".to_owned());
    let lists = data.entry(phase).or_default();
    // Presence, not value, decides (`uninstall: false` uninstalls).
    let has_uninstall = get(rule, "uninstall").is_some();
    let build_only = get(rule, "build-only").is_some();
    let (mut install, mut uninstall) = (false, false);
    if has_uninstall || build_only {
        let installed = lists.install.iter().any(|(p, _)| p == package)
            && !lists.uninstall.iter().any(|(p, _)| p == package);
        if installed {
            if !build_only {
                return Ok(()); // Someone else installs it permanently.
            }
            install = true;
        } else if build_only {
            install = true;
            uninstall = true;
        } else {
            uninstall = true;
        }
    } else {
        // A plain install cancels earlier uninstalls before its own filters run.
        lists.uninstall.retain(|(p, _)| p != package);
        install = true;
    }
    if !filters_pass(element, rule, package, env, file)? {
        return Ok(());
    }
    let lists = data
        .get_mut(
            &get(rule, "phase")
                .and_then(scalar)
                .unwrap_or_else(|| "install.d".to_owned()),
        )
        .expect("entry made above");
    if install {
        lists.install.push((package.to_owned(), element.to_owned()));
    }
    if uninstall {
        lists
            .uninstall
            .push((package.to_owned(), element.to_owned()));
    }
    Ok(())
}

/// pkg-map's family of a distribution.
#[must_use]
pub fn os_family(distro: &str) -> Option<&'static str> {
    match distro {
        "almalinux" | "fedora" | "rhel" | "centos" | "openeuler" | "rocky" => Some("redhat"),
        "debian" | "ubuntu" => Some("debian"),
        "opensuse" => Some("suse"),
        "gentoo" => Some("gentoo"),
        _ => None,
    }
}

/// An element's pkg-map resolved for one distribution and release: name → packages (an
/// empty string means "install nothing").
///
/// # Errors
/// The file is not a JSON object of the expected sections.
pub fn resolve_map(
    text: &str,
    distro: &str,
    release: &str,
) -> Result<BTreeMap<String, String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut out = BTreeMap::new();
    let mut overlay = |section: Option<&serde_json::Value>| {
        if let Some(serde_json::Value::Object(m)) = section {
            for (k, val) in m {
                let packages = match val {
                    serde_json::Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                out.insert(k.clone(), packages);
            }
        }
    };
    overlay(v.get("default"));
    if let Some(family) = os_family(distro) {
        overlay(v.get("family").and_then(|f| f.get(family)));
    }
    overlay(v.get("distro").and_then(|d| d.get(distro)));
    let major = if release == "8-stream" { "8" } else { release };
    overlay(
        v.get("release")
            .and_then(|r| r.get(distro))
            .and_then(|r| r.get(major)),
    );
    Ok(out)
}

/// Maps `(package, element)` pairs through the elements' pkg-maps (unknown names pass
/// through, as `pkg-map --missing-ok` does), splits multi-package values, drops empty ones,
/// and de-duplicates. Sorted, so the result does not depend on set order.
#[must_use]
pub fn map_packages(
    pairs: &[(String, String)],
    maps: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (pkg, element) in pairs {
        let mapped = maps
            .get(element)
            .and_then(|m| m.get(pkg))
            .cloned()
            .unwrap_or_else(|| pkg.clone());
        for p in mapped.split_whitespace() {
            out.insert(p.to_owned());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn decl(element: &str, text: &str) -> Declarations {
        Declarations {
            element: element.to_owned(),
            files: vec![(format!("{element}/package-installs.yaml"), text.to_owned())],
        }
    }

    fn names(l: &[(String, String)]) -> Vec<&str> {
        l.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn phases_arch_and_presence_flags() {
        let d = decl(
            "e",
            "curl:\ngcc:\n  build-only: false\nold:\n  uninstall: false\ngrub-pc:\n  not-arch: ppc64, amd64\nshim:\n  arch: arm64\nearly:\n  phase: pre-install.d\n",
        );
        let out = squash(&[d], &env(&[("ARCH", "amd64")])).unwrap();
        let install = &out["install.d"];
        // grub-pc: " amd64" is not trimmed, so amd64 is not excluded.
        assert_eq!(names(&install.install), ["curl", "gcc", "grub-pc"]);
        assert_eq!(names(&install.uninstall), ["gcc", "old"]);
        assert_eq!(names(&out["pre-install.d"].install), ["early"]);
    }

    #[test]
    fn arch_and_not_arch_is_an_error() {
        let d = decl("e", "x:\n  arch: amd64\n  not-arch: arm64\n");
        let e = squash(&[d], &env(&[("ARCH", "amd64")])).unwrap_err();
        assert!(
            e.message
                .contains("arch and not_arch given for package [x]")
        );
    }

    #[test]
    fn when_statements() {
        let d = decl(
            "e",
            "a:\n  when: DIB_X = 1\nb:\n  when:\n    - DIB_X != 1\n    - DIB_Y = y\nc:\n  when: DIB_X=\n",
        );
        let out = squash(&[d], &env(&[("DIB_X", "1"), ("DIB_Y", "y")])).unwrap();
        assert_eq!(names(&out["install.d"].install), ["a"]);
        let d = decl("e", "a:\n  when:\n    - DIB_X = 2\n    - DIB_UNSET = 1\n");
        let e = squash(&[d], &env(&[("DIB_X", "1")])).unwrap_err();
        assert_eq!(e.message, "The variable <DIB_UNSET> is not set");
        let d = decl("e", "a:\n  when: \" DIB_X = 1\"\n");
        assert!(
            squash(&[d], &env(&[]))
                .unwrap_err()
                .message
                .starts_with("Malformed when line")
        );
    }

    #[test]
    fn plain_install_cancels_an_earlier_uninstall_even_when_filtered() {
        let a = decl("a", "pkg:\n  uninstall: true\n");
        let b = decl("b", "pkg:\n  arch: arm64\n");
        let out = squash(&[a, b], &env(&[("ARCH", "amd64")])).unwrap();
        assert!(out["install.d"].uninstall.is_empty());
        assert!(out["install.d"].install.is_empty());
    }

    #[test]
    fn uninstall_skipped_when_someone_installs_it() {
        let a = decl("a", "pkg:\n");
        let b = decl("b", "pkg:\n  uninstall: true\n");
        let out = squash(&[a, b], &env(&[])).unwrap();
        assert_eq!(names(&out["install.d"].install), ["pkg"]);
        assert!(out["install.d"].uninstall.is_empty());
    }

    #[test]
    fn empty_and_bad_values_fail_like_dib() {
        assert!(squash(&[decl("e", "")], &env(&[])).is_err());
        assert!(squash(&[decl("e", "curl: install.d\n")], &env(&[])).is_err());
        assert!(squash(&[decl("e", "{}")], &env(&[])).unwrap().is_empty());
    }

    #[test]
    fn python_version_compares_as_str() {
        let d = decl(
            "e",
            "a:\n  dib_python_version: 3\nb:\n  dib_python_version: 3.10\n",
        );
        let out = squash(&[d], &env(&[("DIB_PYTHON_VERSION", "3")])).unwrap();
        assert_eq!(names(&out["install.d"].install), ["a"]);
        let d = decl("e", "a:\n  dib_python_version: 2\n");
        assert!(
            squash(&[d], &env(&[]))
                .unwrap()
                .get("install.d")
                .is_none_or(|l| l.install.is_empty())
        );
    }

    #[test]
    fn pkg_map_precedence_and_mapping() {
        let map = r#"{"default": {"java": "default-jre", "a": "a1"},
            "family": {"debian": {"java": "default-jdk-headless"}},
            "distro": {"ubuntu": {"java": "openjdk-17-jdk-headless"}},
            "release": {"debian": {"bookworm": {"a": "a2 a3"}}, "centos": {"8": {"a": "x"}}}}"#;
        let m = resolve_map(map, "debian", "bookworm").unwrap();
        assert_eq!(m["java"], "default-jdk-headless");
        assert_eq!(m["a"], "a2 a3");
        assert_eq!(
            resolve_map(map, "ubuntu", "noble").unwrap()["java"],
            "openjdk-17-jdk-headless"
        );
        assert_eq!(resolve_map(map, "centos", "8-stream").unwrap()["a"], "x");
        let mut maps = BTreeMap::new();
        maps.insert("e".to_owned(), m);
        let pairs = vec![
            ("java".to_owned(), "e".to_owned()),
            ("a".to_owned(), "e".to_owned()),
            ("curl".to_owned(), "e".to_owned()),
        ];
        assert_eq!(
            map_packages(&pairs, &maps),
            ["a2", "a3", "curl", "default-jdk-headless"]
        );
    }
}
