//! Dependency expansion scenarios: upstream's own element-dependency tests
//! (`diskimage_builder/tests/test_elementdeps.py`) rebuilt as fixture trees, and the additional cases verified against element-info.

use crate::common::{dibkit, fixtures, json, names};

enum Want<'a> {
    /// The set, each with the fixture directory it must come from.
    Set(&'a [(&'a str, &'a str)]),
    /// A resolution failure of this kind.
    Fails(&'a str),
}

fn check(path: &str, request: &str, want: &Want<'_>) {
    let base = fixtures().join("deps");
    let entries: Vec<String> = path
        .split(':')
        .map(|p| {
            if p.is_empty() {
                String::new()
            } else {
                base.join(p).display().to_string()
            }
        })
        .collect();
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--format", "json"])
        .env("ELEMENTS_PATH", entries.join(":"))
        .args(request.split(' '));
    let (code, plan) = json(&mut cmd);
    match want {
        Want::Set(set) => {
            assert_eq!(code, 0, "{request}: {plan}");
            let got: Vec<(String, String)> = plan["elements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let path = e["path"].as_str().unwrap();
                    let rel = path
                        .strip_prefix(&format!("{}/", base.display()))
                        .unwrap_or(path);
                    let dir = rel.rsplit_once('/').map_or(rel, |(d, _)| d);
                    (e["name"].as_str().unwrap().to_owned(), dir.to_owned())
                })
                .collect();
            let mut want: Vec<(String, String)> = set
                .iter()
                .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
                .collect();
            want.sort();
            assert_eq!(got, want, "{request}");
        }
        Want::Fails(kind) => {
            assert_eq!(code, 1, "{request}: {plan}");
            assert_eq!(plan["error"]["kind"], *kind, "{request}: {plan}");
        }
    }
}

const UP: &str = "upstream/element-override:upstream/elements";
const E: &str = "upstream/elements";
const O: &str = "upstream/element-override";

#[test]
fn upstream_non_transitive_deps() {
    check(
        UP,
        "requires-foo",
        &Want::Set(&[("foo", E), ("requires-foo", E)]),
    );
}

#[test]
fn upstream_missing_deps() {
    check(UP, "fake", &Want::Fails("missing-element"));
}

#[test]
fn upstream_transitive_deps() {
    check(
        UP,
        "requires-requires-foo",
        &Want::Set(&[
            ("requires-requires-foo", E),
            ("requires-foo", E),
            ("foo", E),
        ]),
    );
}

#[test]
fn upstream_no_deps() {
    check(UP, "foo", &Want::Set(&[("foo", E)]));
}

#[test]
fn upstream_self() {
    check(UP, "self foo", &Want::Set(&[("self", E), ("foo", E)]));
}

#[test]
fn upstream_circular() {
    check(
        UP,
        "circular1",
        &Want::Set(&[("circular1", E), ("circular2", E)]),
    );
}

#[test]
fn upstream_provide() {
    check(
        UP,
        "provides_virtual requires_virtual",
        &Want::Set(&[("requires_virtual", E), ("provides_virtual", E)]),
    );
}

#[test]
fn upstream_provide_conflict() {
    check(
        UP,
        "virtual provides_virtual",
        &Want::Fails("provided-conflict"),
    );
}

#[test]
fn upstream_provide_virtual_ordering() {
    check(
        UP,
        "requires_new_virtual provides_new_virtual",
        &Want::Set(&[("requires_new_virtual", E), ("provides_new_virtual", E)]),
    );
}

#[test]
fn upstream_elements_provide_same() {
    check(
        UP,
        "provides_virtual also_provides_virtual",
        &Want::Fails("already-provided"),
    );
}

#[test]
fn upstream_no_os_element() {
    check(UP, "provides_virtual", &Want::Fails("no-operating-system"));
}

#[test]
fn upstream_duplicated_os_passed_as_element() {
    check(
        UP,
        "circular1 operating-system",
        &Want::Fails("provided-conflict"),
    );
}

#[test]
fn upstream_element_override() {
    check(
        UP,
        "override_element foo",
        &Want::Set(&[("foo", E), ("override_element", O)]),
    );
}

#[test]
fn upstream_invalid_element_dir() {
    let mut cmd = dibkit();
    let up = fixtures().join("deps/upstream");
    cmd.args(["order", "--builtins", "none", "-n", "fake"]).env(
        "ELEMENTS_PATH",
        format!(
            "{}:{}:/not/a/dir",
            up.join("element-override").display(),
            up.join("elements").display()
        ),
    );
    cmd.assert().code(2).stderr(predicates::str::contains(
        "ELEMENTS_PATH entry '/not/a/dir' is not a directory",
    ));
}

const P: &str = "extra/p1";

#[test]
fn same_provider_twice() {
    check(P, "os os", &Want::Fails("already-provided"));
}

#[test]
fn comment_line_is_an_element_name() {
    check(P, "withcomment", &Want::Fails("missing-element"));
}

#[test]
fn blank_lines_and_whitespace() {
    check(P, "blank", &Want::Set(&[("blank", P), ("os", P)]));
}

#[test]
fn symlinked_element_is_known_by_its_real_name() {
    check(P, "alias-el os", &Want::Fails("missing-element"));
    check(
        P,
        "target-el os",
        &Want::Set(&[("target-el", "extra/targets"), ("os", P)]),
    );
}

#[test]
fn hidden_directory_is_an_element() {
    check(P, ".hidden os", &Want::Set(&[(".hidden", P), ("os", P)]));
}

#[test]
fn plain_file_is_not_an_element() {
    check(P, "plainfile os", &Want::Fails("missing-element"));
}

#[test]
fn requesting_the_virtual_name() {
    check(P, "operating-system os", &Want::Fails("missing-element"));
    check(P, "os operating-system", &Want::Fails("provided-conflict"));
}

#[test]
fn first_path_entry_wins() {
    check("extra/p1:extra/p2", "os", &Want::Set(&[("os", "extra/p1")]));
    check("extra/p2:extra/p1", "os", &Want::Set(&[("os", "extra/p2")]));
}

#[test]
fn self_provider_vanishes_as_dependency_and_conflicts_when_requested() {
    check(P, "needself os", &Want::Set(&[("needself", P), ("os", P)]));
    check(P, "selfprov os", &Want::Fails("provided-conflict"));
}

/// dib succeeds or fails on this depending on PYTHONHASHSEED; dibkit always succeeds, and
/// says that dib does not.
#[test]
fn set_order_dependent_request_is_deterministic_and_flagged() {
    check(P, "a os", &Want::Set(&[("a", P), ("c", P), ("os", P)]));
    let mut cmd = dibkit();
    cmd.args([
        "order",
        "--builtins",
        "none",
        "-n",
        "--format",
        "json",
        "a",
        "os",
    ])
    .env("ELEMENTS_PATH", fixtures().join("deps").join(P));
    let (_, plan) = json(&mut cmd);
    let kinds: Vec<&str> = plan["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["set-order"]);
    assert_eq!(names(&plan), ["a", "c", "os"]);
}

#[test]
fn empty_path_component_is_an_error() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "os"]).env(
        "ELEMENTS_PATH",
        format!("{}:", fixtures().join("deps").join(P).display()),
    );
    cmd.assert().code(2).stderr(predicates::str::contains(
        "ELEMENTS_PATH entry '' is not a directory",
    ));
}

#[test]
fn transitive_vm_needs_a_block_device() {
    let mut cmd = dibkit();
    cmd.args([
        "order",
        "--builtins",
        "none",
        "--format",
        "json",
        "needs-vm",
        "os",
    ])
    .env("ELEMENTS_PATH", fixtures().join("order/vm-rule/elements"));
    let (code, out) = json(&mut cmd);
    assert_eq!(code, 1);
    assert_eq!(out["error"]["kind"], "missing-element");
    assert_eq!(
        out["error"]["chain"],
        serde_json::json!(["needs-vm", "vm", "block-device"])
    );
}
