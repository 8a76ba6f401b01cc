//! `dibkit lint` as a user runs it: formats, exit codes, fixes, suppressions, configuration
//! and hostile input.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{dibkit, root, run_normalized, settings};

const HEADER: &str = "#!/bin/bash\n\nif [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then\n    set -x\nfi\nset -eu\nset -o pipefail\n\n";

/// Writes `files` (`path`, content, mode) under a new temp dir and returns it.
fn tree(files: &[(&str, &str, u32)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (path, content, mode) in files {
        let p = tmp.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    tmp
}

fn clean_element() -> Vec<(&'static str, String, u32)> {
    vec![
        (
            "good/README.rst",
            "====\ngood\n====\nA good element.\n".to_owned(),
            0o644,
        ),
        (
            "good/element-deps",
            "dib-init-system\ninstall-bin\n".to_owned(),
            0o644,
        ),
        (
            "good/install.d/50-good",
            format!("{HEADER}echo good\n"),
            0o755,
        ),
        (
            "good/environment.d/10-good.bash",
            "export DIB_GOOD=${DIB_GOOD:-1}\n".to_owned(),
            0o644,
        ),
    ]
}

fn owned(files: &[(&'static str, String, u32)]) -> tempfile::TempDir {
    let borrowed: Vec<(&str, &str, u32)> =
        files.iter().map(|(p, c, m)| (*p, c.as_str(), *m)).collect();
    tree(&borrowed)
}

fn lint(dir: &Path) -> assert_cmd::Command {
    let mut cmd = dibkit();
    cmd.current_dir(dir).args(["lint", "--color", "never"]);
    cmd
}

fn snap(name: &str, cmd: &mut assert_cmd::Command, tmp: &Path) {
    let text = run_normalized(cmd, &[(tmp, "[TMP]")]);
    settings().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn clean_element_exits_zero_and_default_target_is_cwd() {
    let tmp = owned(&clean_element());
    lint(&tmp.path().join("good")).assert().code(0);
    lint(tmp.path()).assert().code(0);
}

fn broken() -> tempfile::TempDir {
    tree(&[
        ("bad/README.rst", "===\nbad\n===\n", 0o644),
        ("bad/element-deps", "vm\ndib-init-system\n", 0o644),
        (
            "bad/install.d/50-bad",
            "#!/bin/bash\nset -e\nif which curl; then\n  echo hi\nfi\n",
            0o644,
        ),
        (
            "bad/install.d/60-other.sh",
            &format!("{HEADER}echo never\n"),
            0o755,
        ),
        (
            "bad/environment.d/10-bad.bash",
            "export DIB_X=$DIB_Y\n",
            0o755,
        ),
    ])
}

#[test]
fn full_output_is_rustc_style() {
    let tmp = broken();
    let mut cmd = lint(tmp.path());
    cmd.arg("bad");
    snap("lint-cli-full", &mut cmd, tmp.path());
    lint(tmp.path()).arg("bad").assert().code(1);
}

#[test]
fn json_output_has_the_documented_keys() {
    let tmp = broken();
    let out = lint(tmp.path())
        .args(["--format", "json", "bad"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &list[0];
    for key in [
        "code", "name", "legacy", "severity", "path", "line", "column", "message",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    let legacy: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["legacy"].as_str())
        .collect();
    for name in [
        "executable",
        "setu",
        "setpipefail",
        "dibdebugtrace",
        "which",
        "indent",
    ] {
        assert!(legacy.contains(&name), "no {name} finding: {legacy:?}");
    }
}

#[test]
fn sarif_declares_every_rule() {
    let tmp = broken();
    let out = lint(tmp.path())
        .args(["--format", "sarif", "bad"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let listed = dibkit()
        .args(["lint", "--list-rules", "--format", "json"])
        .output()
        .unwrap();
    let rules: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        rules.as_array().unwrap().len()
    );
    let result = &doc["runs"][0]["results"][0];
    assert!(result["ruleId"].as_str().unwrap().starts_with("DIB"));
    assert!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
}

#[test]
fn github_annotations_are_automatic_under_actions() {
    let tmp = broken();
    let out = lint(tmp.path())
        .arg("bad")
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .all(|l| l.starts_with("::error ") || l.starts_with("::warning ")),
        "{text}"
    );
    assert!(text.contains("file=bad/install.d/50-bad,line="), "{text}");
}

/// Annotations name files as GitHub does (`elements/x`, not `./elements/x`); a finding about a
/// directory carries no `file=` and names the directory in its message.
#[test]
fn github_annotations_use_repository_paths() {
    let tmp = tree(&[
        ("elements/bad/install.d/50-bad", "echo no header\n", 0o755),
        ("elements/bad/element-deps", "no-such-element\n", 0o644),
    ]);
    let out = lint(tmp.path())
        .args(["--format", "github", "."])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("::error file=elements/bad/element-deps,line=1,col=1,title=DIB202"),
        "{text}"
    );
    assert!(!text.contains("file=./"), "{text}");
    let readme: Vec<&str> = text.lines().filter(|l| l.contains("DIB001")).collect();
    assert_eq!(
        readme,
        ["::error title=DIB001 missing-readme::elements/bad: element `bad` has no README.rst"],
        "{text}"
    );
}

#[test]
fn concise_output() {
    let tmp = broken();
    let mut cmd = lint(tmp.path());
    cmd.args(["--format", "concise", "bad"]);
    snap("lint-cli-concise", &mut cmd, tmp.path());
}

#[test]
fn explain_and_list_rules() {
    let mut cmd = dibkit();
    cmd.args(["lint", "--explain", "setpipefail"]);
    snap("lint-cli-explain", &mut cmd, Path::new("/nonexistent"));
    let mut cmd = dibkit();
    cmd.args(["lint", "--list-rules"]);
    snap("lint-cli-list-rules", &mut cmd, Path::new("/nonexistent"));
    dibkit()
        .args(["lint", "--explain", "DIB999"])
        .assert()
        .code(2);
}

#[test]
fn missing_target_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = lint(tmp.path());
    cmd.arg("no-such-dir");
    snap("lint-cli-missing-target", &mut cmd, tmp.path());
    lint(tmp.path()).arg("no-such-dir").assert().code(2);
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn fix_applies_safe_fixes_atomically_and_diff_writes_nothing() {
    let tmp = tree(&[
        ("el/README.rst", "==\nel\n==\n", 0o644),
        ("el/element-deps", "install-bin\ndib-init-system\n", 0o644),
        ("el/install.d/50-el", "#!/bin/bash\necho hi", 0o644),
        (
            "el/environment.d/10-el.bash",
            "export DIB_EL=${DIB_EL:-1}\n",
            0o755,
        ),
        (
            "el/install.d/60-data.sh",
            &format!("{HEADER}echo renamed\n"),
            0o755,
        ),
    ]);
    let el = tmp.path().join("el");
    let before = fs::read_to_string(el.join("element-deps")).unwrap();
    // --diff: shows the change, exits 1, writes nothing.
    let mut cmd = lint(tmp.path());
    cmd.args(["--diff", "el"]);
    snap("lint-cli-diff", &mut cmd, tmp.path());
    assert_eq!(fs::read_to_string(el.join("element-deps")).unwrap(), before);
    assert_eq!(mode(&el.join("install.d/50-el")), 0o644);

    // --fix: safe fixes only; the rename needs --unsafe-fixes.
    lint(tmp.path()).args(["--fix", "el"]).assert().code(1);
    assert_eq!(
        fs::read_to_string(el.join("element-deps")).unwrap(),
        "dib-init-system\ninstall-bin\n"
    );
    assert_eq!(mode(&el.join("install.d/50-el")), 0o755);
    assert_eq!(mode(&el.join("environment.d/10-el.bash")), 0o644);
    let script = fs::read_to_string(el.join("install.d/50-el")).unwrap();
    assert!(script.starts_with("#!/bin/bash\nif [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then\n    set -x\nfi\nset -eu\nset -o pipefail\necho hi\n"), "{script}");
    assert!(el.join("install.d/60-data.sh").exists());
    let leftovers: Vec<PathBuf> = walk(tmp.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".dibkit-fix-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    lint(tmp.path())
        .args(["--fix", "--unsafe-fixes", "el"])
        .assert()
        .code(0);
    assert!(el.join("install.d/60-data").exists());
    assert!(!el.join("install.d/60-data.sh").exists());
    lint(tmp.path()).arg("el").assert().code(0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn suppressions_line_file_dib_lint_and_unused() {
    let tmp = tree(&[
        ("s/README.rst", "=\ns\n=\n", 0o644),
        (
            "s/install.d/50-line",
            &format!(
                "{HEADER}if which curl; then # dibkit: disable=DIB113\n    echo\nfi\nwhich wget\n"
            ),
            0o755,
        ),
        (
            "s/install.d/51-file",
            &format!("# dibkit: disable=which\n{HEADER}which a\nwhich b\n").replacen(
                "# dibkit: disable=which\n#!/bin/bash\n",
                "#!/bin/bash\n# dibkit: disable=which\n",
                1,
            ),
            0o755,
        ),
        (
            "s/install.d/52-legacy",
            "#!/bin/bash\n# dib-lint: disable=sete setu setpipefail dibdebugtrace\necho legacy\n",
            0o755,
        ),
        (
            "s/install.d/53-unused",
            &format!("{HEADER}echo fine # dibkit: disable=DIB104,DIB9999\n"),
            0o755,
        ),
    ]);
    let out = lint(tmp.path())
        .args(["--format", "concise", "s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // The line suppression covers line 9 only; line 12 still reports.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("50-line:12:") && l.contains("DIB113")),
        "{text}"
    );
    assert!(!lines.iter().any(|l| l.contains("50-line:9:")), "{text}");
    assert!(!text.contains("51-file:"), "{text}");
    assert!(!text.contains("52-legacy"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("53-unused") && l.contains("DIB903")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("53-unused") && l.contains("DIB902")),
        "{text}"
    );
}

#[test]
fn tox_ini_and_dibkit_toml() {
    let tmp = tree(&[
        ("c/README.rst", "=\nc\n=\n", 0o644),
        (
            "c/install.d/50-c",
            "#!/bin/bash\nset -eu\nset -o pipefail\nwhich x\n",
            0o755,
        ),
        ("c/install.d/configure", &format!("{HEADER}echo\n"), 0o755),
        ("tox.ini", "[dib-lint]\nignore = which\n", 0o644),
        (
            "dibkit.toml",
            "[lint]\nignore = [\"dibdebugtrace\", \"DIB9998\"]\n[lint.severity]\nmissing-numeric-prefix = \"error\"\n",
            0o644,
        ),
    ]);
    let mut cmd = lint(tmp.path());
    cmd.args(["--format", "concise", "c"]);
    snap("lint-cli-config", &mut cmd, tmp.path());
    fs::write(tmp.path().join("dibkit.toml"), "[lint]\nignore = 3\n").unwrap();
    let out = lint(tmp.path()).arg("c").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dibkit.toml:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_input_never_panics() {
    let tmp = tree(&[
        ("h/README.rst", "=\nh\n=\n", 0o644),
        ("h/element-deps", "\u{0}\u{1}binary", 0o644),
        ("h/element-provides", "", 0o644),
        ("h/install.d/50-binary", "\u{7f}ELF\u{0}\u{0}", 0o755),
        ("h/package-installs.yaml", "", 0o644),
        ("h/pkg-map", "{", 0o644),
        ("h/environment.d/10-h.bash", "", 0o644),
    ]);
    let h = tmp.path().join("h");
    fs::write(h.join("install.d/51-latin1"), b"#!/bin/bash\necho \xe9\n").unwrap();
    fs::set_permissions(
        h.join("install.d/51-latin1"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("52-loop-b", h.join("install.d/52-loop-a")).unwrap();
    std::os::unix::fs::symlink("52-loop-a", h.join("install.d/52-loop-b")).unwrap();
    fs::write(h.join("static/big"), vec![b'x'; 5 * 1024 * 1024]).unwrap_or_else(|_| {
        fs::create_dir_all(h.join("static")).unwrap();
        fs::write(h.join("static/big"), vec![b'x'; 5 * 1024 * 1024]).unwrap();
    });
    let out = lint(tmp.path())
        .args(["--format", "json", "h"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for code in ["DIB901", "DIB408", "DIB005", "DIB303"] {
        assert!(codes.contains(&code), "{code} missing: {codes:?}");
    }
}

#[test]
fn shellcheck_findings_when_installed() {
    if std::process::Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "shellcheck must be installed in CI"
        );
        eprintln!("skipping: shellcheck not installed");
        return;
    }
    let tmp = tree(&[
        ("sc/README.rst", "==\nsc\n==\n", 0o644),
        (
            "sc/install.d/50-sc",
            &format!("{HEADER}cp $DIB_SRC /b\n"),
            0o755,
        ),
    ]);
    let out = lint(tmp.path())
        .args(["--shellcheck", "--format", "json", "sc"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"SC2086"), "{codes:?}");
}

#[test]
fn shipped_elements_are_lint_clean() {
    let mut cmd = dibkit();
    cmd.current_dir(root()).args(["lint", "elements"]);
    cmd.assert().code(0);
    let out = dibkit()
        .current_dir(root())
        .args(["lint", "--format", "json", "elements"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn set_checks_with_elements() {
    let tmp = tree(&[
        ("lib/os/README.rst", "==\nos\n==\n", 0o644),
        ("lib/os/element-provides", "operating-system\n", 0o644),
        ("lib/os/root.d/10-os", &format!("{HEADER}echo os\n"), 0o755),
        ("lib/one/README.rst", "===\none\n===\n", 0o644),
        (
            "lib/one/install.d/50-setup",
            &format!("{HEADER}echo one\n"),
            0o755,
        ),
        ("lib/two/README.rst", "===\ntwo\n===\n", 0o644),
        (
            "lib/two/install.d/50-setup",
            &format!("{HEADER}echo two\n"),
            0o755,
        ),
    ]);
    let mut cmd = lint(tmp.path());
    cmd.args([
        "--builtins",
        "none",
        "--format",
        "concise",
        "-n",
        "lib",
        "--elements",
        "os",
        "one",
        "two",
    ]);
    snap("lint-cli-set", &mut cmd, tmp.path());
}
