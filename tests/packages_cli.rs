//! `dibkit packages`: package-installs and pkg-map as a user sees them.

use std::fs;

use crate::common::{dibkit, root, run_normalized, settings};

#[test]
fn jenkins_slave_packages_are_mapped_for_debian() {
    let mut cmd = dibkit();
    cmd.args([
        "packages",
        "--format",
        "json",
        "debian-minimal",
        "jenkins-slave",
    ])
    .env("ELEMENTS_PATH", root().join("examples/elements"))
    .env("ARCH", "amd64");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["distro"], "debian");
    assert_eq!(
        v["phases"]["install.d"]["install"],
        serde_json::json!(["curl", "default-jdk-headless", "gcc", "git", "sudo"])
    );
    let mut table = dibkit();
    table
        .args(["packages", "debian-minimal", "jenkins-slave"])
        .env("ELEMENTS_PATH", root().join("examples/elements"))
        .env("ARCH", "amd64");
    let text = run_normalized(&mut table, &[]);
    settings().bind(|| insta::assert_snapshot!("packages-jenkins-slave", text));
}

fn element(dir: &std::path::Path, name: &str, yaml: &str) {
    let el = dir.join(name);
    fs::create_dir_all(&el).unwrap();
    fs::write(el.join("package-installs.yaml"), yaml).unwrap();
    fs::write(el.join("element-deps"), "package-installs\n").unwrap();
}

#[test]
fn arch_rules_and_when_against_the_sourced_environment() {
    let tmp = tempfile::tempdir().unwrap();
    element(
        tmp.path(),
        "rules",
        "always:\narm-only:\n  arch: arm64\nnot-on-amd:\n  not-arch: amd64\nbuild-tool:\n  build-only: true\nwhen-efi:\n  when: DIB_RULES_BOOT = efi\nlate:\n  phase: post-install.d\nnever:\n  phase: install\n",
    );
    let env_dir = tmp.path().join("rules/environment.d");
    fs::create_dir_all(&env_dir).unwrap();
    fs::write(
        env_dir.join("10-rules.bash"),
        "export DIB_RULES_BOOT=${DIB_RULES_BOOT:-efi}\n",
    )
    .unwrap();
    let out = dibkit()
        .args([
            "packages",
            "--format",
            "json",
            "-a",
            "amd64",
            "debian-minimal",
            "rules",
        ])
        .env("ELEMENTS_PATH", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["phases"]["install.d"]["install"],
        serde_json::json!(["always", "build-tool", "when-efi"])
    );
    assert_eq!(
        v["phases"]["install.d"]["uninstall"],
        serde_json::json!(["build-tool"])
    );
    assert_eq!(
        v["phases"]["post-install.d"]["install"],
        serde_json::json!(["late"])
    );
    assert_eq!(v["never_installed_phases"], serde_json::json!(["install"]));
}

#[test]
fn failures_dib_would_hit_are_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    element(tmp.path(), "both", "x:\n  arch: amd64\n  not-arch: arm64\n");
    element(
        tmp.path(),
        "unset",
        "y:\n  when: DIB_NOT_SET_ANYWHERE = 1\n",
    );
    element(tmp.path(), "empty", "");
    for (name, snap) in [
        ("both", "packages-arch-and-not-arch"),
        ("unset", "packages-when-unset"),
        ("empty", "packages-empty"),
    ] {
        let mut cmd = dibkit();
        cmd.args(["packages", "-a", "amd64", "debian-minimal", name])
            .env("ELEMENTS_PATH", tmp.path());
        let text = run_normalized(&mut cmd, &[(tmp.path(), "[TMP]")]);
        assert!(text.starts_with("exit: 1"), "{text}");
        settings().bind(|| insta::assert_snapshot!(snap, text));
    }
}

#[test]
fn writes_phase_lists_and_resolved_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dibkit()
        .args([
            "packages",
            "-a",
            "amd64",
            "debian-minimal",
            "jenkins-slave",
            "--output-dir",
        ])
        .arg(tmp.path().join("lists"))
        .arg("--pkg-map-dir")
        .arg(tmp.path().join("maps"))
        .env("ELEMENTS_PATH", root().join("examples/elements"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("lists/install.d.install")).unwrap(),
        "curl\ndefault-jdk-headless\ngcc\ngit\nsudo\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("lists/pre-install.d.uninstall")).unwrap(),
        ""
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("maps/jenkins-slave.resolved")).unwrap(),
        "java\tdefault-jdk-headless\n"
    );
}
