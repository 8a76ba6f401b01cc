//! Shared helpers: a clean `dibkit` command, fixture paths and snapshot normalisation.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// `dibkit` with an environment that does not leak the caller's `ELEMENTS_PATH` or ARCH, run
/// from cargo's scratch directory for tests so that nothing it writes by a relative path lands
/// in the repository (tests that need another directory set their own `current_dir`).
pub(crate) fn dibkit() -> Command {
    let mut cmd = Command::cargo_bin("dibkit").expect("binary built");
    cmd.current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env_remove("ELEMENTS_PATH")
        .env_remove("ARCH")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("DIB_NO_TMPFS")
        .env_remove("DIB_MIN_TMPFS")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a command and renders `exit: N / --- stdout --- / --- stderr ---`, with the
/// fixtures directory and `extra` paths replaced by stable placeholders.
pub(crate) fn run_normalized(cmd: &mut Command, extra: &[(&Path, &str)]) -> String {
    let out = cmd.output().expect("dibkit runs");
    let mut text = format!(
        "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (path, name) in extra {
        text = text.replace(&path.display().to_string(), name);
    }
    text.replace(&fixtures().display().to_string(), "[FIXTURES]")
}

/// insta settings that write snapshots to the top-level `snapshots/` directory.
pub(crate) fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Parses stdout of `dibkit order --format json`.
pub(crate) fn json(cmd: &mut Command) -> (i32, serde_json::Value) {
    let out = cmd.output().expect("dibkit runs");
    let code = out.status.code().unwrap_or(-1);
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, value)
}

/// The element names of a plan.
pub(crate) fn names(plan: &serde_json::Value) -> Vec<String> {
    plan["elements"]
        .as_array()
        .expect("elements array")
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}
