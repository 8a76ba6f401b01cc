//! The pre-commit path with the real `pre-commit` tool (installed into `target/precommit` by
//! `tests/oracle/setup`): the README's `language: system` configuration fails a commit with
//! findings and their documentation link, and passes once the element is fixed. Without the
//! tool these tests print why and pass, unless `DIBKIT_REQUIRE_ORACLE=1` makes that a failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::root;

fn pre_commit() -> Option<PathBuf> {
    let tool = root().join("target/precommit/bin/pre-commit");
    if tool.exists() {
        return Some(tool);
    }
    assert!(
        std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
        "DIBKIT_REQUIRE_ORACLE=1 but {} is missing: run tests/oracle/setup",
        tool.display()
    );
    eprintln!("skipping: pre-commit not installed (run tests/oracle/setup)");
    None
}

/// The configuration README.md gives for an installed dibkit.
const CONFIG: &str = "repos:
  - repo: local
    hooks:
      - id: dibkit-lint
        name: dibkit lint
        entry: dibkit lint
        language: system
        pass_filenames: false
        always_run: true
        require_serial: true
";

const HOOK: &str = "#!/bin/bash\n\nif [ \"${DIB_DEBUG_TRACE:-0}\" -gt 0 ]; then\n    set -x\nfi\nset -eu\nset -o pipefail\n\necho configured\n";

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// `pre-commit run --all-files` in `repo`, with the built dibkit first on PATH and every
/// cache inside `home`.
fn run(tool: &Path, repo: &Path, home: &Path) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_dibkit")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(tool)
        .current_dir(repo)
        .args(["run", "--all-files", "--color", "never"])
        .env("PATH", path)
        .env("HOME", home)
        .env("PRE_COMMIT_HOME", home.join("pre-commit"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("ELEMENTS_PATH")
        .output()
        .unwrap()
}

/// See: issue 17, item 11 (a hook named `10-foo.sh` without the exec bit passed the hook).
#[test]
fn pre_commit_hook_fails_with_findings_then_passes_once_fixed() {
    let Some(tool) = pre_commit() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let el = repo.join("elements/myapp");
    write(&repo.join(".pre-commit-config.yaml"), CONFIG, 0o644);
    write(
        &el.join("README.rst"),
        "=====\nmyapp\n=====\n\nInstalls myapp.\n",
        0o644,
    );
    write(
        &el.join("install.d/10-myapp.sh"),
        "echo configured\n",
        0o644,
    );
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);

    let out = run(&tool, &repo, &home);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error[DIB308]"), "{stdout}");
    assert!(
        stdout.contains("see `dibkit lint --explain DIB308` or dibkit's docs/rules.md#dib308"),
        "{stdout}"
    );

    fs::remove_file(el.join("install.d/10-myapp.sh")).unwrap();
    write(&el.join("install.d/10-myapp"), HOOK, 0o755);
    git(&repo, &["add", "-A"]);
    let out = run(&tool, &repo, &home);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("dibkit lint"), "{stdout}");
    assert!(stdout.contains("Passed"), "{stdout}");
}
