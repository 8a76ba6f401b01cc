//! Differential tests against upstream diskimage-builder (installed by `tests/oracle/setup`
//! into `target/upstream`). Without it these tests print why and pass, unless
//! `DIBKIT_REQUIRE_ORACLE=1` (set by `.ci/run`) makes a missing oracle a failure.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{dibkit, fixtures, json, root};

fn oracle_ready() -> bool {
    let venv = root().join("target/upstream/venv/bin/python");
    if venv.exists() {
        return true;
    }
    assert!(
        std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
        "DIBKIT_REQUIRE_ORACLE=1 but {} is missing: run tests/oracle/setup",
        venv.display()
    );
    eprintln!("skipping: upstream oracle not installed (run tests/oracle/setup)");
    false
}

fn upstream_elements() -> PathBuf {
    let out = Command::new(root().join("target/upstream/venv/bin/python"))
        .args([
            "-c",
            "import diskimage_builder.paths as p; print(p.get_path('elements'))",
        ])
        .output()
        .expect("venv python runs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Upstream's verdict: `Ok(sorted (name, path))` or `Err(exception class)`.
fn element_info(path: &str, request: &[&str], seed: &str) -> Result<Vec<(String, String)>, String> {
    let out = Command::new(root().join("tests/oracle/element-info"))
        .args(request)
        .env("ELEMENTS_PATH", path)
        .env("PYTHONHASHSEED", seed)
        .output()
        .expect("oracle runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    match lines.next() {
        Some("OK") => Ok(lines
            .map(|l| {
                let (n, p) = l.split_once('\t').unwrap();
                (n.to_owned(), p.to_owned())
            })
            .collect()),
        Some(err) => Err(err
            .trim_start_matches("ERR ")
            .split(':')
            .next()
            .unwrap()
            .to_owned()),
        None => panic!(
            "oracle printed nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn dibkit_info(path: &str, request: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--format", "json"])
        .args(request)
        .env("ELEMENTS_PATH", path);
    let (code, plan) = json(&mut cmd);
    if code == 1 && plan.get("error").is_some() {
        let class = match plan["error"]["kind"].as_str().unwrap() {
            "missing-element" => "MissingElementException",
            "already-provided" | "provided-conflict" => "AlreadyProvidedException",
            "no-operating-system" => "MissingOSException",
            other => panic!("unknown kind {other}"),
        };
        return Err(class.to_owned());
    }
    Ok(plan["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect())
}

fn compare(path: &str, requests: &[Vec<&str>]) {
    let mut mismatches = Vec::new();
    for request in requests {
        // element-info has no `vm` rule: disk-image-create adds block-device-mbr before
        // calling it, and so does dibkit.
        let mut formed = request.clone();
        if request.contains(&"vm") && !request.iter().any(|r| r.starts_with("block-device-")) {
            formed.push("block-device-mbr");
        }
        let want = element_info(path, &formed, "0");
        let got = dibkit_info(path, request);
        if want != got {
            mismatches.push(format!(
                "{request:?}:\n  upstream {want:?}\n  dibkit   {got:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn element_sets_match_upstream_over_its_library() {
    if !oracle_ready() {
        return;
    }
    let lib = upstream_elements();
    let path = lib.display().to_string();
    let mut elements: Vec<String> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| lib.join(n).is_dir())
        .collect();
    elements.sort();
    assert!(elements.len() > 100, "upstream library looks incomplete");
    // Every element with a Debian-family OS and the usual companions, plus full requests.
    let mut requests: Vec<Vec<&str>> = elements
        .iter()
        .map(|e| vec!["base", e.as_str(), "ubuntu-minimal"])
        .collect();
    for r in [
        "base debian-minimal vm block-device-mbr",
        "base ubuntu-minimal vm block-device-efi growroot cloud-init-datasources",
        "base centos vm block-device-gpt",
        "base fedora-minimal vm block-device-mbr simple-init growroot",
        "base rocky-container",
        "vm ubuntu-minimal",
        "base debian-minimal debian-minimal",
        "base nosuchelement",
        "base block-device-mbr",
        "base operating-system ubuntu-minimal",
        "base ubuntu-minimal operating-system",
    ] {
        requests.push(r.split(' ').collect());
    }
    compare(&path, &requests);
}

#[test]
fn fixture_scenarios_match_upstream() {
    if !oracle_ready() {
        return;
    }
    let up = fixtures().join("deps/upstream");
    let path = format!(
        "{}:{}",
        up.join("element-override").display(),
        up.join("elements").display()
    );
    let requests: Vec<Vec<&str>> = [
        "requires-foo",
        "fake",
        "requires-requires-foo",
        "foo",
        "self foo",
        "circular1",
        "provides_virtual requires_virtual",
        "virtual provides_virtual",
        "requires_new_virtual provides_new_virtual",
        "provides_virtual also_provides_virtual",
        "provides_virtual",
        "circular1 operating-system",
        "override_element foo",
    ]
    .iter()
    .map(|r| r.split(' ').collect())
    .collect();
    compare(&path, &requests);
    let extra = fixtures().join("deps/extra/p1").display().to_string();
    let requests: Vec<Vec<&str>> = [
        "os os",
        "withcomment",
        "blank",
        "alias-el os",
        "target-el os",
        ".hidden os",
        "plainfile os",
        "operating-system os",
        "os operating-system",
        "needself os",
        "selfprov os",
        "needs-typo os",
        "needs-virtual os",
        "needs-virtual gives-virtual os",
    ]
    .iter()
    .map(|r| r.split(' ').collect())
    .collect();
    compare(&extra, &requests);
}

/// For the one request whose upstream outcome depends on the hash seed, dibkit's result must
/// be one of upstream's outcomes, and upstream must really vary.
#[test]
fn set_order_dependent_request_is_one_of_upstreams_outcomes() {
    if !oracle_ready() {
        return;
    }
    let path = fixtures().join("deps/extra/p1").display().to_string();
    let outcomes: Vec<_> = (0..10)
        .map(|seed| element_info(&path, &["a", "os"], &seed.to_string()))
        .collect();
    assert!(outcomes.iter().any(Result::is_ok) && outcomes.iter().any(Result::is_err));
    let ours = dibkit_info(&path, &["a", "os"]);
    assert!(outcomes.contains(&ours), "{ours:?} not among {outcomes:?}");
}

/// Upstream's hooks tree (`generate_hooks`) and `dib-run-parts --list` against the plan.
fn run_parts(path: &str, names: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let out = Command::new(root().join("tests/oracle/run-parts-list"))
        .arg("--after-root")
        .arg(path)
        .args(names)
        .output()
        .expect("oracle runs");
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(err) = text.lines().find(|l| l.starts_with("ERR ")) {
        return Err(err.to_owned());
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            sections.push((h.to_owned(), Vec::new()));
        } else if let Some(last) = sections.last_mut() {
            last.1.push(line.to_owned());
        }
    }
    Ok(sections)
}

fn plan_sections(plan: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["exists"].as_bool().unwrap())
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_owned(),
                p["scripts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["name"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    out.push((
        "environment.d".to_owned(),
        plan["environment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect(),
    ));
    out
}

fn compare_run_parts(path: &str, request: &[&str]) {
    let mut cmd = dibkit();
    cmd.args(["order", "--builtins", "none", "-n", "--format", "json"])
        .args(request)
        .env("ELEMENTS_PATH", path);
    let (code, plan) = json(&mut cmd);
    let names = crate::common::names(&plan);
    let upstream = run_parts(path, &names);
    match upstream {
        Ok(sections) => {
            assert_eq!(code, 0, "{request:?}: {}", plan["problems"]);
            assert_eq!(plan_sections(&plan), sections, "{request:?}");
        }
        Err(e) if e.contains("duplicated hook") => {
            assert_eq!(code, 1, "{request:?}: upstream says {e}");
            assert!(
                plan["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["kind"] == "duplicate-hook"),
                "{request:?}"
            );
        }
        Err(e) => panic!("{request:?}: upstream failed: {e}"),
    }
}

#[test]
fn phase_order_matches_dib_run_parts_over_upstream_library() {
    if !oracle_ready() {
        return;
    }
    let path = upstream_elements().display().to_string();
    for request in [
        "base ubuntu-minimal vm block-device-mbr",
        "base debian-minimal vm block-device-efi growroot cloud-init-datasources devuser",
        "base centos vm block-device-gpt dhcp-all-interfaces",
        "base fedora-minimal vm block-device-mbr simple-init growroot openssh-server",
        "base ubuntu-minimal vm block-device-mbr devuser dynamic-login",
        "base debian-minimal vm block-device-mbr dracut-regenerate enable-serial-console stable-interface-names",
    ] {
        let request: Vec<&str> = request.split(' ').collect();
        compare_run_parts(&path, &request);
    }
}

#[test]
fn phase_order_matches_dib_run_parts_over_fixtures() {
    if !oracle_ready() {
        return;
    }
    for (case, request) in [
        ("sorting", "os alpha beta"),
        ("skipped", "os el tools"),
        ("duplicate", "os one two"),
    ] {
        let path = fixtures().join("order").join(case).join("elements");
        let path = path.display().to_string();
        let request: Vec<&str> = request.split(' ').collect();
        compare_run_parts(&path, &request);
    }
}

/// `dibkit packages` over upstream's own elements: `manifests` (reached through `base`)
/// reads `IMAGE_NAME` in environment.d under `set -u`, which dib exports before it sources
/// environment.d; `packages` failed with `IMAGE_NAME: unbound variable`.
/// See: issue 17, item 9.
#[test]
fn packages_over_upstream_debian_minimal_vm_simple_init() {
    if !oracle_ready() {
        return;
    }
    let elements = root().join("target/upstream/src/diskimage_builder/elements");
    let out = dibkit()
        .args(["packages", "--format", "json", "--builtins"])
        .arg(&elements)
        .args(["-a", "amd64", "debian-minimal", "vm", "simple-init"])
        .env_remove("ELEMENTS_PATH")
        .env_remove("IMAGE_NAME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["distro"], "debian");
    let install = v["phases"]["install.d"]["install"].as_array().unwrap();
    for pkg in ["linux-image-amd64", "ifupdown", "openssh-client"] {
        assert!(install.iter().any(|p| p == pkg), "{pkg} in {install:?}");
    }
}
