//! `dibkit order` over fixture trees: the table and the JSON plan are snapshotted.
//!
//! Each `tests/fixtures/order/<case>/` has `elements/` (or the entries listed in `path`) and
//! an `args` file with one invocation per line.

use crate::common::{dibkit, fixtures, json, run_normalized, settings};

fn cases() -> Vec<(String, Vec<Vec<String>>, String)> {
    let dir = fixtures().join("order");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case in entries {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let args = std::fs::read_to_string(case.join("args")).unwrap();
        let lines = args
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect();
        let path =
            std::fs::read_to_string(case.join("path")).unwrap_or_else(|_| "elements".to_owned());
        let path = path
            .trim()
            .split(':')
            .map(|p| case.join(p).display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        out.push((name, lines, path));
    }
    out
}

#[test]
fn order_fixtures_table_and_json() {
    let cases = cases();
    assert!(cases.len() >= 7, "fixture cases missing");
    for (name, invocations, path) in cases {
        for (i, args) in invocations.iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("-{i}")
            };
            let title = format!("dibkit order {}", args.join(" "));
            let mut table = dibkit();
            table
                .args(["order", "--builtins", "none", "--color", "never"])
                .args(args)
                .env("ELEMENTS_PATH", &path);
            let mut j = dibkit();
            j.args(["order", "--builtins", "none", "--format", "json"])
                .args(args)
                .env("ELEMENTS_PATH", &path);
            settings().bind(|| {
                insta::with_settings!({description => title.clone()}, {
                    insta::assert_snapshot!(
                        format!("order-{name}{suffix}"),
                        run_normalized(&mut table, &[])
                    );
                    insta::assert_snapshot!(
                        format!("order-{name}{suffix}-json"),
                        run_normalized(&mut j, &[])
                    );
                });
            });
        }
    }
}

fn plan(case: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "--format", "json"])
        .args(args)
        .env(
            "ELEMENTS_PATH",
            fixtures().join("order").join(case).join("elements"),
        );
    json(&mut cmd)
}

fn phase_scripts(plan: &serde_json::Value, phase: &str) -> Vec<String> {
    plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == phase)
        .unwrap()["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn scripts_sort_like_lang_c_sort_n() {
    let (code, plan) = plan("sorting", &["-n", "os", "alpha", "beta"]);
    assert_eq!(code, 0);
    assert_eq!(
        phase_scripts(&plan, "install.d"),
        [
            "-5-neg", "abc", "05-x", "9-b", "010-oct", "10", "10-B", "10-a", "10_a", "100-c"
        ]
    );
    let tie = plan["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "order-tie")
        .expect("a tie between alpha and beta");
    assert_eq!(tie["elements"], serde_json::json!(["alpha", "beta"]));
}

#[test]
fn phases_are_all_listed_in_run_order_with_chroot_flag() {
    let (_, plan) = plan("sorting", &["-n", "os", "alpha", "beta"]);
    let phases: Vec<(String, bool)> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_owned(),
                p["chroot"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [
        ("root.d", false),
        ("extra-data.d", false),
        ("pre-install.d", true),
        ("install.d", true),
        ("post-install.d", true),
        ("post-root.d", false),
        ("block-device.d", false),
        ("pre-finalise.d", false),
        ("finalise.d", true),
        ("cleanup.d", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect();
    assert_eq!(phases, want);
}

#[test]
fn silent_skips_are_reported() {
    let (code, plan) = plan("skipped", &["-n", "os", "el", "tools"]);
    assert_eq!(code, 0);
    // Runs: the link that resolves through the merged hooks tree; an absolute link (resolved
    // on the host outside the chroot, in the image inside it, with a warning).
    assert_eq!(phase_scripts(&plan, "install.d"), ["40-link", "60-abs"]);
    assert!(
        plan["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "absolute-symlink")
    );
    assert_eq!(phase_scripts(&plan, "root.d"), ["10-os", "60-abs"]);
    let reasons: Vec<(String, String)> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s["phase"].as_str().unwrap(),
                    s["name"].as_str().unwrap()
                ),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (entry, reason) in [
        ("install.d/10-foo.sh", "bad-name"),
        ("install.d/20-noexec", "not-executable"),
        ("install.d/30-dangling", "dangling-symlink"),
        ("install.d/50-dir", "directory"),
        ("install.d/.hidden", "hidden"),
        ("environment.d/bad~name", "bad-name"),
        ("environment.d/.dot", "hidden"),
    ] {
        assert!(
            reasons.contains(&(entry.to_owned(), reason.to_owned())),
            "{entry} should be skipped as {reason}: {reasons:?}"
        );
    }
    // `tests/` at the element top level is never merged.
    assert!(!reasons.iter().any(|(e, _)| e.contains("99-not-a-hook-dir")));
}

#[test]
fn environment_is_bytewise_not_numeric() {
    let (_, plan) = plan("skipped", &["-n", "os", "el", "tools"]);
    let env: Vec<&str> = plan["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "10-foo",
            "100-x",
            "11-bar",
            "11-dib-install-type.bash",
            "9-bar",
            "abc.bash"
        ]
    );
}

#[test]
fn duplicate_hooks_are_fatal_and_name_both_elements() {
    let (code, plan) = plan("duplicate", &["-n", "os", "one", "two"]);
    assert_eq!(code, 1);
    let dups: Vec<&serde_json::Value> = plan["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "duplicate-hook")
        .collect();
    assert_eq!(
        dups.len(),
        2,
        "install.d/50-foo and environment.d/10-x: {plan}"
    );
    for d in dups {
        assert_eq!(d["elements"], serde_json::json!(["one", "two"]));
        assert_eq!(d["paths"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn vm_rule_adds_block_device_by_arch() {
    let names = |plan: &serde_json::Value| crate::common::names(plan);
    let (_, p) = plan("vm-rule", &["os", "vm"]);
    assert_eq!(names(&p), ["base", "block-device-mbr", "os", "vm"]);
    let (_, p) = plan("vm-rule", &["-a", "arm64", "os", "vm"]);
    assert_eq!(names(&p), ["base", "block-device-efi", "os", "vm"]);
    let (_, p) = plan("vm-rule", &["-a", "aarch64", "-n", "os", "vm"]);
    assert_eq!(names(&p), ["block-device-efi", "os", "vm"]);
    let (_, p) = plan("vm-rule", &["os", "vm", "block-device-efi"]);
    assert_eq!(names(&p), ["base", "block-device-efi", "os", "vm"]);
}
