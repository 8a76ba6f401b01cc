//! One grammar: `order`, `lint` and `packages` read the element files through the same
//! parser, so they agree on what a file says. See: issue 17, item 3.

use std::fs;
use std::path::Path;

use crate::common::dibkit;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// `os`, `a` and `x`, whose element-deps is `deps`; `b` only when `with_b`.
fn library(deps: &str, with_b: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "os/element-provides", "operating-system\n");
    write(root, "os/README.rst", "==\nos\n==\n");
    write(root, "a/README.rst", "=\na\n=\n");
    if with_b {
        write(root, "b/README.rst", "=\nb\n=\n");
    }
    write(root, "x/README.rst", "=\nx\n=\n");
    write(root, "x/element-deps", deps);
    tmp
}

fn order_json(lib: &Path) -> (i32, serde_json::Value) {
    let out = dibkit()
        .args([
            "order",
            "--builtins",
            "none",
            "-n",
            "--format",
            "json",
            "os",
            "x",
        ])
        .env("ELEMENTS_PATH", lib)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

/// The DIB202 (unknown element) findings lint reports for `x`: `(name, line, column)`.
fn lint_unknown(lib: &Path) -> Vec<(String, u64, u64)> {
    let out = dibkit()
        .args([
            "lint",
            "--builtins",
            "none",
            "--format",
            "json",
            "--select",
            "DIB202",
        ])
        .arg(lib.join("x"))
        .env("ELEMENTS_PATH", lib)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let message = d["message"].as_str().unwrap();
            let name = message.split('`').nth(1).unwrap().to_owned();
            (
                name,
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// dib reads `a\rb` as two names (Python's universal newlines). `order` always did; lint
/// read one name `a\rb` and reported it unknown.
#[test]
fn a_carriage_return_separates_names_for_order_and_lint_alike() {
    let lib = library("a\rb", true);
    let (code, plan) = order_json(lib.path());
    assert_eq!(code, 0, "{plan}");
    let names: Vec<&str> = plan["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "os", "x"]);
    assert_eq!(plan["elements"][3]["deps"], serde_json::json!(["a", "b"]));
    assert_eq!(lint_unknown(lib.path()), []);
}

/// Without `b`, both name the same missing element.
#[test]
fn a_missing_name_after_a_carriage_return_is_the_same_name_for_both() {
    let lib = library("a\rb", false);
    let (code, v) = order_json(lib.path());
    assert_eq!(code, 1);
    assert_eq!(v["error"]["kind"], "missing-element");
    assert_eq!(v["error"]["chain"], serde_json::json!(["x", "b"]));
    // Lint shows lines as editors do (`\r` alone does not end one): `b` at line 1, column 3.
    assert_eq!(lint_unknown(lib.path()), [("b".to_owned(), 1, 3)]);
}

/// The DIB codes lint reports for `targets` with `--elements os one two`.
fn set_codes(lib: &Path, targets: &[&str]) -> Vec<(String, String)> {
    let out = dibkit()
        .current_dir(lib)
        .args(["lint", "--builtins", "none", "--format", "json", "-n"])
        .args(targets)
        .args(["--elements", "os", "one", "two"])
        .env("ELEMENTS_PATH", lib)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A hook name with a space is the plan's `unsafe-name` problem, which lint reports through
/// DIB307 alone: once for a lint target (it got DIB307 and DIB305 with two messages), and
/// also for an element of the set outside the targets.
#[test]
fn a_name_with_a_space_is_one_finding_of_one_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(root, "os/element-provides", "operating-system\n");
    write(root, "os/README.rst", "==\nos\n==\n");
    write(root, "one/README.rst", "===\none\n===\n");
    write(root, "one/static/my file", "data\n");
    write(root, "two/README.rst", "===\ntwo\n===\n");
    write(root, "two/static/their file", "data\n");
    let codes = set_codes(root, &["one"]);
    let mut found: Vec<(&str, &str)> = codes
        .iter()
        .map(|(c, p)| (c.as_str(), p.rsplit('/').next().unwrap()))
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        [("DIB307", "my file"), ("DIB307", "their file")],
        "{codes:?}"
    );
}
