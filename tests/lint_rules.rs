//! Every lint rule against its fixtures: `tests/fixtures/lint/<CODE>/fail` must report the
//! rule, `pass` must not, and both outputs are snapshotted. An optional `args` file in a
//! fixture directory adds arguments (one per line), e.g. `--elements` for set rules.

use std::path::Path;

use crate::common::{dibkit, fixtures, run_normalized, settings};

fn rules() -> Vec<(String, String)> {
    let out = dibkit()
        .args(["lint", "--list-rules", "--format", "json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn run(dir: &Path, code: &str) -> (i32, String, String) {
    let extra: Vec<String> = std::fs::read_to_string(dir.join("args"))
        .map(|a| {
            a.lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut cmd = dibkit();
    cmd.current_dir(dir).args([
        "lint",
        "--builtins",
        "none",
        "--format",
        "concise",
        "--color",
        "never",
    ]);
    if !extra.iter().any(|a| a == "--select") {
        cmd.args(["--select", code]);
    }
    // Targets: every directory of the fixture (its elements), then the extra arguments.
    let mut targets: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    targets.sort();
    cmd.args(&targets).args(&extra);
    let text = run_normalized(&mut cmd, &[(dir, "[FIXTURE]")]);
    // One run: the exit status and stdout come back out of the normalised transcript.
    let code = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("exit: "))
        .and_then(|c| c.parse().ok())
        .unwrap_or(-1);
    let stdout = text
        .split_once("--- stdout ---\n")
        .and_then(|(_, rest)| rest.split_once("--- stderr ---"))
        .map_or_else(String::new, |(out, _)| out.to_owned());
    (code, stdout, text)
}

#[test]
fn every_rule_fires_on_fail_and_not_on_pass() {
    let base = fixtures().join("lint");
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (code, name) in rules() {
        if code == "SC" {
            continue; // ShellCheck passthrough: tested in lint_cli with shellcheck installed.
        }
        for kind in ["fail", "pass"] {
            let dir = base.join(&code).join(kind);
            if !dir.is_dir() {
                missing.push(format!("{code} ({name}) has no {kind} fixture"));
                continue;
            }
            let (_, stdout, text) = run(&dir, &code);
            let fired = stdout.contains(&format!(" {code} "));
            if (kind == "fail") != fired {
                wrong.push(format!("{code} ({name}) {kind}:\n{text}"));
            }
            settings().bind(|| {
                insta::assert_snapshot!(format!("lint-{code}-{kind}"), text);
            });
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
