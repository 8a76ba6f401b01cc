//! `dibkit order` error paths and options, as the user sees them.

use crate::common::{dibkit, fixtures, json, run_normalized, settings};

fn snap(name: &str, cmd: &mut assert_cmd::Command) {
    let text = run_normalized(cmd, &[]);
    settings().bind(|| insta::assert_snapshot!(name, text));
}

fn extra() -> String {
    fixtures().join("deps/extra/p1").display().to_string()
}

#[test]
fn missing_element_names_the_file_line_and_chain() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "needs-typo", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-missing-element", &mut cmd);
    cmd.assert().code(1);
}

#[test]
fn missing_requested_element_suggests() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "typo-targte", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-did-you-mean", &mut cmd);
}

#[test]
fn comment_line_says_dib_has_no_comments() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "withcomment"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-comment-line", &mut cmd);
}

#[test]
fn missing_virtual_name_names_its_provider() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "needs-virtual", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-virtual-hint", &mut cmd);
}

#[test]
fn no_operating_system() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "provides_virtual"])
        .env("ELEMENTS_PATH", fixtures().join("deps/upstream/elements"));
    snap("cli-no-os", &mut cmd);
    cmd.assert().code(1);
}

#[test]
fn already_provided_twice() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "os", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-already-provided", &mut cmd);
}

#[test]
fn missing_base_without_builtins_hints_skip_base() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-missing-base", &mut cmd);
}

#[test]
fn bad_path_entry_is_a_usage_error() {
    let mut cmd = dibkit();
    cmd.args(["order", "--elements-path", "/nonexistent/elements", "os"]);
    snap("cli-bad-path-entry", &mut cmd);
    cmd.assert().code(2);
}

#[test]
fn elements_path_flag_overrides_the_variable() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--format", "json"])
        .args(["--elements-path", &extra(), "os"])
        .env("ELEMENTS_PATH", "/nonexistent");
    let (code, _) = json(&mut cmd);
    assert_eq!(code, 0);
}

#[test]
fn bad_builtins_dir() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "/nonexistent/lib", "os"]);
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains("--builtins '/nonexistent/lib'"));
}

#[test]
fn unknown_phase() {
    let mut cmd = dibkit();
    cmd.args(["order", "--phase", "instal.d", "debian-minimal"]);
    snap("cli-unknown-phase", &mut cmd);
}

#[test]
fn explain_unknown_element() {
    let mut cmd = dibkit();
    cmd.args([
        "order",
        "--builtins",
        "none",
        "-n",
        "--explain",
        "oss",
        "os",
    ])
    .env("ELEMENTS_PATH", extra());
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains("did you mean 'os'?"));
}

#[test]
fn no_elements_is_a_usage_error() {
    dibkit().arg("order").assert().code(2);
}

#[test]
fn invalid_utf8_element_deps() {
    let tmp = tempfile::tempdir().unwrap();
    let el = tmp.path().join("bad");
    std::fs::create_dir(&el).unwrap();
    std::fs::write(el.join("element-deps"), b"\xff\xfe\n").unwrap();
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "bad"])
        .env("ELEMENTS_PATH", tmp.path());
    let text = run_normalized(&mut cmd, &[(tmp.path(), "[TMP]")]);
    settings().bind(|| insta::assert_snapshot!("cli-invalid-utf8", text));
}

#[test]
fn unreadable_element_deps_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let el = tmp.path().join("weird");
    std::fs::create_dir_all(el.join("element-deps")).unwrap();
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "weird"])
        .env("ELEMENTS_PATH", tmp.path());
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains("element-deps"));
}

#[test]
fn explain_shows_where_and_why() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "--color", "never"])
        .args(["--explain", "block-device-mbr", "os", "vm"])
        .env("ELEMENTS_PATH", fixtures().join("order/vm-rule/elements"));
    snap("cli-explain", &mut cmd);
}

#[test]
fn explain_element_dropped_because_provided() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--color", "never"])
        .args(["--explain", "selfprov", "needself", "os"])
        .env("ELEMENTS_PATH", extra());
    snap("cli-explain-provided", &mut cmd);
}

#[test]
fn single_phase_view() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--color", "never"])
        .args(["--phase", "install", "os", "alpha", "beta"])
        .env("ELEMENTS_PATH", fixtures().join("order/sorting/elements"));
    snap("cli-phase", &mut cmd);
}

#[test]
fn dot_graph() {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "--format", "dot", "os", "vm"])
        .env("ELEMENTS_PATH", fixtures().join("order/vm-rule/elements"));
    snap("cli-dot", &mut cmd);
}

#[test]
fn color_always_emits_ansi_and_never_does_not() {
    let path = fixtures().join("order/vm-rule/elements");
    let out = dibkit()
        .args([
            "order",
            "--builtins",
            "none",
            "--color",
            "always",
            "os",
            "vm",
        ])
        .env("ELEMENTS_PATH", &path)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\u{1b}["));
    let out = dibkit()
        .args([
            "order",
            "--builtins",
            "none",
            "--color",
            "never",
            "os",
            "vm",
        ])
        .env("ELEMENTS_PATH", &path)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\u{1b}["));
}

/// The embedded library works with no files on disk: the example request of the README.
#[test]
fn builtin_library_resolves_debian_minimal() {
    let mut cmd = dibkit();
    cmd.args(["order", "--format", "json", "debian-minimal"]);
    let (code, plan) = json(&mut cmd);
    assert_eq!(code, 0, "{plan}");
    let names = crate::common::names(&plan);
    assert!(names.contains(&"base".to_owned()), "{names:?}");
    assert!(names.contains(&"debian-minimal".to_owned()), "{names:?}");
    for e in plan["elements"].as_array().unwrap() {
        assert_eq!(e["origin"], "builtin");
        assert!(e["path"].as_str().unwrap().starts_with("builtin:"));
    }
    assert_eq!(plan["provided"]["operating-system"], "debian-minimal");
    assert!(
        plan["problems"].as_array().unwrap().is_empty(),
        "the shipped elements must plan cleanly: {}",
        plan["problems"]
    );
}

/// A user copy of a built-in element wins and shows what it hides.
#[test]
fn user_copy_shadows_builtin() {
    let tmp = tempfile::tempdir().unwrap();
    let el = tmp.path().join("debian-minimal");
    std::fs::create_dir(&el).unwrap();
    std::fs::write(el.join("element-provides"), "operating-system\n").unwrap();
    let mut cmd = dibkit();
    cmd.args(["order", "--format", "json", "-n", "debian-minimal"])
        .env("ELEMENTS_PATH", tmp.path());
    let (code, plan) = json(&mut cmd);
    assert_eq!(code, 0);
    let e = &plan["elements"][0];
    assert_eq!(e["name"], "debian-minimal");
    assert_eq!(e["shadows"], serde_json::json!(["builtin:debian-minimal"]));
    assert_eq!(e["origin"], tmp.path().display().to_string());
}

/// `RUN_PARTS_REGEX` changes which hooks dib-run-parts runs; `order` shows what the build
/// will run with it, and the build's phase listing agrees with the plan.
#[test]
fn run_parts_regex_is_honoured_by_order_and_the_build_listing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let os = tmp.path().join("os");
    std::fs::create_dir_all(os.join("install.d")).unwrap();
    std::fs::write(os.join("element-provides"), "operating-system\n").unwrap();
    for name in ["10-plain", "20-dotted.sh"] {
        let p = os.join("install.d").join(name);
        std::fs::write(&p, "#!/bin/bash\ntrue\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let scripts = |regex: Option<&str>| {
        let mut cmd = dibkit();
        cmd.args([
            "order",
            "--builtins",
            "none",
            "-n",
            "--format",
            "json",
            "os",
        ])
        .env("ELEMENTS_PATH", tmp.path())
        .env_remove("RUN_PARTS_REGEX");
        if let Some(r) = regex {
            cmd.env("RUN_PARTS_REGEX", r);
        }
        let (code, plan) = json(&mut cmd);
        assert_eq!(code, 0, "{plan}");
        let install = plan["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == "install.d")
            .unwrap()
            .clone();
        install["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(scripts(None), ["10-plain"]);
    let dotted = r"^[0-9A-Za-z_.-]+$";
    assert_eq!(scripts(Some(dotted)), ["10-plain", "20-dotted.sh"]);
    // What the build lists when install.d starts, from the same tree, is the same.
    let filter = dibkit::order::tree::NameFilter::new(Some(dotted)).unwrap();
    let listed =
        dibkit::order::tree::list_phase(std::path::Path::new("/"), &os.join("install.d"), &filter)
            .unwrap();
    assert_eq!(listed.hooks, scripts(Some(dotted)));
    // A bad expression is a usage error naming the variable.
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "os"])
        .env("ELEMENTS_PATH", tmp.path())
        .env("RUN_PARTS_REGEX", "(");
    cmd.assert()
        .code(2)
        .stderr(predicates::str::contains("RUN_PARTS_REGEX `(`"));
}
