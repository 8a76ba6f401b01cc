//! `dibkit new`: generated trees (snapshotted), lint-clean output for a matrix of options,
//! and every refusal.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{dibkit, json, run_normalized, settings};

/// Every file under `dir` with its mode and content, for snapshots.
fn dump(dir: &Path) -> String {
    let mut paths = Vec::new();
    collect(dir, dir, &mut paths);
    paths.sort();
    let mut s = String::new();
    for rel in paths {
        let p = dir.join(&rel);
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        s.push_str(&format!(
            "==> {rel} ({mode:o})\n{}\n",
            fs::read_to_string(&p).unwrap()
        ));
    }
    s
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

fn new(dir: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = dibkit();
    cmd.current_dir(dir).arg("new").args(args);
    cmd
}

const MATRIX: &[(&str, &[&str])] = &[
    // No flags: the skeleton a user fills in (install.d script, package-installs).
    ("skeleton", &["skeleton"]),
    // Flags shape the skeleton: the phases asked for replace install.d, deps and env add.
    (
        "shaped",
        &[
            "shaped",
            "--phase",
            "finalise.d",
            "--deps",
            "openssh-server",
            "--env",
            "PORT=8080",
        ],
    ),
    // An operating-system element keeps the skeleton's install.d and package-installs.
    ("my-os", &["my-os", "--os", "--test-element"]),
    // --minimal: only what the flags ask for, as `dibkit new` wrote before the skeleton.
    ("plain", &["plain", "--minimal"]),
    (
        "jenkins-slave",
        &[
            "jenkins-slave",
            "--phase",
            "extra-data.d",
            "--phase",
            "install.d",
            "--deps",
            "openssh-server",
            "--packages",
            "curl,git,java",
        ],
    ),
    (
        "tools",
        &[
            "tools",
            "--minimal",
            "--env",
            "TOOLS_VERSION=1.2",
            "--env",
            "DIB_TOOLS_URL=",
            "--phase",
            "post-install",
        ],
    ),
    (
        "my-distro",
        &[
            "my-distro",
            "--minimal",
            "--os",
            "--test-element",
            "--phase",
            "root.d",
            "--phase",
            "finalise.d",
        ],
    ),
    (
        "every-phase",
        &[
            "every-phase",
            "--minimal",
            "--test-element",
            "--phase",
            "root.d",
            "--phase",
            "extra-data.d",
            "--phase",
            "pre-install.d",
            "--phase",
            "install.d",
            "--phase",
            "post-install.d",
            "--phase",
            "post-root.d",
            "--phase",
            "block-device.d",
            "--phase",
            "pre-finalise.d",
            "--phase",
            "finalise.d",
            "--phase",
            "cleanup.d",
        ],
    ),
];

#[test]
fn generated_elements_are_snapshotted_and_lint_clean() {
    for (name, args) in MATRIX {
        let tmp = tempfile::tempdir().unwrap();
        new(tmp.path(), args).assert().code(0);
        let el = tmp.path().join(name);
        settings().bind(|| insta::assert_snapshot!(format!("new-{name}"), dump(&el)));
        let out = dibkit()
            .current_dir(tmp.path())
            .args(["lint", "--format", "concise", name])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "{name}: dibkit lint found problems"
        );
        assert_eq!(out.status.code(), Some(0), "{name}");
        // Nothing but the element itself is left behind (no staging directory).
        let left: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [name.to_string()]);
    }
}

#[test]
fn generated_elements_pass_upstream_dib_lint() {
    let oracle = crate::common::root().join("tests/oracle/dib-lint");
    if !crate::common::root()
        .join("target/upstream/venv/bin/flake8")
        .exists()
        || !oracle.exists()
    {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "DIBKIT_REQUIRE_ORACLE=1 but the dib-lint oracle is missing: run tests/oracle/setup"
        );
        eprintln!("skipping: dib-lint oracle not installed (run tests/oracle/setup)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (_, args) in MATRIX {
        new(tmp.path(), args).assert().code(0);
    }
    let out = std::process::Command::new(&oracle)
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dib-lint reported:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `dibkit new NAME` writes with no flags, and with `--minimal`.
#[test]
fn default_is_the_skeleton_and_minimal_is_a_readme() {
    let tmp = tempfile::tempdir().unwrap();
    let listing = |args: &[&str]| {
        let out = new(tmp.path(), args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        listing(&["jenkins-slave"]),
        "created ./jenkins-slave/\n  644  README.rst\n  644  element-deps\n  \
         755  install.d/50-jenkins-slave\n  644  package-installs.yaml\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("jenkins-slave/element-deps")).unwrap(),
        "package-installs\n"
    );
    assert_eq!(
        listing(&["bare", "--minimal"]),
        "created ./bare/\n  644  README.rst\n"
    );
    // --packages fills package-installs.yaml in; --phase replaces the install.d script.
    assert_eq!(
        listing(&["web", "--packages", "nginx", "--phase", "post-install.d"]),
        "created ./web/\n  644  README.rst\n  644  element-deps\n  644  package-installs.yaml\n  \
         755  post-install.d/50-web\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("web/package-installs.yaml"))
            .unwrap()
            .lines()
            .last(),
        Some("nginx:")
    );
}

#[test]
fn order_shows_the_new_elements_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    new(
        tmp.path(),
        &["web", "--phase", "install.d", "--phase", "finalise.d"],
    )
    .assert()
    .code(0);
    let mut cmd = dibkit();
    cmd.args(["order", "--format", "json", "debian-minimal", "web"])
        .env("ELEMENTS_PATH", tmp.path());
    let (code, plan) = json(&mut cmd);
    assert_eq!(code, 0, "{plan}");
    let runs = |phase: &str| -> Vec<String> {
        plan["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == phase)
            .unwrap()["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["element"] == "web")
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(runs("install.d"), ["50-web"]);
    assert_eq!(runs("finalise.d"), ["60-web"]);
}

fn snap(name: &str, cmd: &mut assert_cmd::Command, tmp: &Path) {
    let text = run_normalized(cmd, &[(tmp, "[TMP]")]);
    settings().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn refusals_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("exists")).unwrap();
    fs::write(tmp.path().join("exists/keep"), "mine").unwrap();
    snap(
        "new-refuse-existing",
        &mut new(tmp.path(), &["exists"]),
        tmp.path(),
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("exists/keep")).unwrap(),
        "mine"
    );
    snap(
        "new-refuse-name",
        &mut new(tmp.path(), &["my element"]),
        tmp.path(),
    );
    snap(
        "new-refuse-dotted",
        &mut new(tmp.path(), &["a.b"]),
        tmp.path(),
    );
    snap(
        "new-refuse-phase",
        &mut new(tmp.path(), &["x", "--phase", "instal.d"]),
        tmp.path(),
    );
    snap(
        "new-refuse-env",
        &mut new(tmp.path(), &["x", "--env", "NOVALUE"]),
        tmp.path(),
    );
    fs::create_dir_all(tmp.path().join("tpl/phase-script")).unwrap();
    snap(
        "new-refuse-template",
        &mut new(tmp.path(), &["x", "--template", "tpl"]),
        tmp.path(),
    );
    for args in [
        &["exists"][..],
        &["my element"],
        &["-x"],
        &[".."],
        &["x", "--phase", "instal.d"],
        &["x", "--template", "tpl"],
        &["x", "--dir", "missing"],
    ] {
        new(tmp.path(), args).assert().code(2);
    }
    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["exists", "tpl"]);
}

#[test]
fn dry_run_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = new(
        tmp.path(),
        &[
            "dry",
            "--minimal",
            "--phase",
            "install.d",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    snap("new-dry-run-json", &mut cmd, tmp.path());
    assert!(!tmp.path().join("dry").exists());
}

#[test]
fn template_overrides_file_by_file() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("tpl")).unwrap();
    fs::write(
        tmp.path().join("tpl/phase-script"),
        "#!/bin/bash\n# house template for {{name}} in {{phase}}\nif [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then\n    set -x\nfi\nset -eu\nset -o pipefail\n\n{{phase_body}}\n",
    )
    .unwrap();
    new(
        tmp.path(),
        &["house", "--phase", "install.d", "--template", "tpl"],
    )
    .assert()
    .code(0);
    let script = fs::read_to_string(tmp.path().join("house/install.d/50-house")).unwrap();
    assert!(
        script.contains("# house template for house in install.d"),
        "{script}"
    );
    // README comes from the built-in template.
    assert!(
        fs::read_to_string(tmp.path().join("house/README.rst"))
            .unwrap()
            .starts_with("=====\nhouse\n")
    );
    // The XDG config templates folder works the same way.
    let xdg = tempfile::tempdir().unwrap();
    fs::create_dir_all(xdg.path().join("dibkit/templates")).unwrap();
    fs::copy(
        tmp.path().join("tpl/phase-script"),
        xdg.path().join("dibkit/templates/phase-script"),
    )
    .unwrap();
    new(tmp.path(), &["xdg", "--phase", "install.d"])
        .env("XDG_CONFIG_HOME", xdg.path())
        .assert()
        .code(0);
    assert!(
        fs::read_to_string(tmp.path().join("xdg/install.d/50-xdg"))
            .unwrap()
            .contains("house template")
    );
}
