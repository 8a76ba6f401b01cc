//! simple-init's family logic, as `dibkit packages` resolves it for each distribution: the
//! `DIB_SIMPLE_INIT_NETWORKMANAGER` default and refusals of its environment.d, every `when:`
//! and `installtype` rule of its package-installs.yaml, and its pkg-map. A fake
//! operating-system element sets DISTRO_NAME and DIB_RELEASE as each family's element does;
//! and `dibkit boot`'s refusals of check flags that cannot work together.

use std::fs;

use crate::common::dibkit;

/// A fake operating-system element in `dir` that takes DISTRO_NAME and DIB_RELEASE from the
/// test's FAKE_DISTRO and FAKE_RELEASE.
fn fake_os(dir: &std::path::Path) {
    let el = dir.join("fake-os");
    fs::create_dir_all(el.join("environment.d")).unwrap();
    fs::write(el.join("element-provides"), "operating-system\n").unwrap();
    fs::write(
        el.join("environment.d/10-fake-os.bash"),
        "export DISTRO_NAME=$FAKE_DISTRO\nexport DIB_RELEASE=$FAKE_RELEASE\n",
    )
    .unwrap();
}

/// What simple-init installs and removes in install.d for `distro` `release` with `env`;
/// `Err(stderr)` when the set's environment.d refuses.
fn resolve(
    distro: &str,
    release: &str,
    env: &[(&str, &str)],
) -> Result<(Vec<String>, Vec<String>), String> {
    let tmp = tempfile::tempdir().unwrap();
    fake_os(tmp.path());
    let mut cmd = dibkit();
    cmd.args([
        "packages",
        "--format",
        "json",
        "-a",
        "amd64",
        "fake-os",
        "simple-init",
    ])
    .env("ELEMENTS_PATH", tmp.path())
    .env("FAKE_DISTRO", distro)
    .env("FAKE_RELEASE", release)
    .env_remove("DIB_SIMPLE_INIT_NETWORKMANAGER")
    .env_remove("DIB_INSTALLTYPE_simple_init")
    .env_remove("DIB_DEFAULT_INSTALLTYPE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = |k: &str| -> Vec<String> {
        v["phases"]["install.d"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    Ok((list("install"), list("uninstall")))
}

fn installs(distro: &str, release: &str, env: &[(&str, &str)]) -> Vec<String> {
    let (install, uninstall) =
        resolve(distro, release, env).unwrap_or_else(|e| panic!("{distro} {release} {env:?}: {e}"));
    assert_eq!(uninstall, ["cloud-init"], "{distro} {release} {env:?}");
    install
}

fn refused(distro: &str, release: &str, env: &[(&str, &str)]) -> String {
    match resolve(distro, release, env) {
        Ok(lists) => panic!("{distro} {release} {env:?} was not refused: {lists:?}"),
        Err(e) => e,
    }
}

#[test]
fn debian_family_uses_ifupdown_and_a_venv() {
    for (distro, release) in [("debian", "bookworm"), ("ubuntu", "noble")] {
        assert_eq!(
            installs(distro, release, &[]),
            ["ifupdown", "isc-dhcp-client", "net-tools", "python3-venv"],
            "{distro}"
        );
        // `repo` builds from a checkout: pbr needs git.
        assert_eq!(
            installs(distro, release, &[("DIB_INSTALLTYPE_simple_init", "repo")]),
            [
                "git",
                "ifupdown",
                "isc-dhcp-client",
                "net-tools",
                "python3-venv"
            ]
        );
        // The explicit 0 is the default.
        assert_eq!(
            installs(distro, release, &[("DIB_SIMPLE_INIT_NETWORKMANAGER", "0")]),
            installs(distro, release, &[])
        );
        let nm = refused(distro, release, &[("DIB_SIMPLE_INIT_NETWORKMANAGER", "1")]);
        assert!(nm.contains("glean configures ifupdown"), "{nm}");
        let package = refused(
            distro,
            release,
            &[("DIB_INSTALLTYPE_simple_init", "package")],
        );
        assert!(package.contains("has no glean package"), "{package}");
    }
}

#[test]
fn red_hat_family_defaults_to_networkmanager() {
    for (distro, release) in [
        ("centos", "9-stream"),
        ("rhel", "9"),
        ("almalinux", "9"),
        ("rocky", "9"),
        ("fedora", "40"),
    ] {
        assert_eq!(
            installs(distro, release, &[]),
            [
                "NetworkManager",
                "NetworkManager-initscripts-ifcfg-rh",
                "dhclient",
                "net-tools",
                "python3"
            ],
            "{distro} {release}"
        );
        // The distribution's glean package, and no virtualenv.
        assert_eq!(
            installs(
                distro,
                release,
                &[("DIB_INSTALLTYPE_simple_init", "package")]
            ),
            [
                "NetworkManager",
                "NetworkManager-initscripts-ifcfg-rh",
                "dhclient",
                "net-tools",
                "python3-glean"
            ],
            "{distro} {release}"
        );
        // No network-scripts on Fedora and EL9.
        let e = refused(distro, release, &[("DIB_SIMPLE_INIT_NETWORKMANAGER", "0")]);
        assert!(e.contains("needs network-scripts"), "{distro}: {e}");
    }
    // EL10: dhcpcd, and NetworkManager without the ifcfg-rh plugin.
    for (distro, release) in [
        ("centos", "10-stream"),
        ("rhel", "10"),
        ("almalinux", "10"),
        ("rocky", "10"),
    ] {
        assert_eq!(
            installs(distro, release, &[]),
            ["NetworkManager", "dhcpcd", "net-tools", "python3"],
            "{distro} {release}"
        );
    }
    // EL8 still has network-scripts.
    assert_eq!(
        installs(
            "centos",
            "8-stream",
            &[("DIB_SIMPLE_INIT_NETWORKMANAGER", "0")]
        ),
        ["dhclient", "net-tools", "network-scripts", "python3"]
    );
}

#[test]
fn suse_uses_wicked() {
    assert_eq!(
        installs("opensuse", "15.6", &[]),
        ["dhcp-client", "net-tools", "python3", "wicked-service"]
    );
    assert_eq!(
        installs(
            "opensuse",
            "15.6",
            &[("DIB_SIMPLE_INIT_NETWORKMANAGER", "1")]
        ),
        ["NetworkManager", "dhcp-client", "net-tools", "python3"]
    );
}

fn boot_refuses(args: &[&str], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vm.qcow2");
    fs::write(&image, "not booted").unwrap();
    let out = dibkit()
        .arg("boot")
        .arg(&image)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn boot_check_flags_that_cannot_work_are_refused_before_booting() {
    boot_refuses(&["--exec", "true"], "--exec runs commands over SSH");
    boot_refuses(&["--ssh", "jenkins"], "--ssh needs --key");
    boot_refuses(&["--name", "w1"], "describe a config drive");
    boot_refuses(
        &["--config-drive", "--address", "192.168.1.5/24"],
        "not on qemu's user network",
    );
    boot_refuses(&["--resize", "+2X"], "--resize +2X: not a size");
    boot_refuses(
        &["--config-drive=/nonexistent-dibkit-dir"],
        "no meta_data.json",
    );
    let out = dibkit()
        .args(["build", "debian-minimal", "--exec", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run with --boot-test"));
}

/// Runs simple-init's extra-data.d clone script as the build would, with `TMP_MOUNT_PATH` in
/// `root` and `env`.
fn clone_glean(root: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let script =
        crate::common::root().join("elements/simple-init/extra-data.d/50-simple-init-glean-repo");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script)
        .env("TMP_MOUNT_PATH", root)
        .env_remove("DIB_INSTALLTYPE_simple_init")
        .env_remove("DIB_DEFAULT_INSTALLTYPE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn repo_install_clones_the_given_location_at_the_given_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("glean");
    fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q"]);
    fs::write(upstream.join("setup.py"), "first\n").unwrap();
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-qm", "one"]);
    git(&upstream, &["tag", "v1"]);
    let v1 = git(&upstream, &["rev-parse", "HEAD"]);
    fs::write(upstream.join("setup.py"), "second\n").unwrap();
    git(&upstream, &["commit", "-qam", "two"]);

    let root = tmp.path().join("root");
    let location = upstream.display().to_string();
    let out = clone_glean(
        &root,
        &[
            ("DIB_INSTALLTYPE_simple_init", "repo"),
            ("DIB_REPOLOCATION_glean", &location),
            ("DIB_REPOREF_glean", "v1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checkout = root.join("tmp/glean.git");
    assert_eq!(
        fs::read_to_string(checkout.join("setup.py")).unwrap(),
        "first\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("at {v1}")));

    // Any other install type clones nothing.
    let other = tmp.path().join("other");
    for env in [
        vec![("DIB_REPOLOCATION_glean", location.as_str())],
        vec![
            ("DIB_INSTALLTYPE_simple_init", "source"),
            ("DIB_DEFAULT_INSTALLTYPE", "repo"),
        ],
        vec![("DIB_INSTALLTYPE_simple_init", "package")],
    ] {
        assert!(clone_glean(&other, &env).status.success());
        assert!(!other.join("tmp/glean.git").exists(), "{env:?}");
    }
    // DIB_DEFAULT_INSTALLTYPE applies when simple-init has no type of its own.
    let default = tmp.path().join("default");
    let out = clone_glean(
        &default,
        &[
            ("DIB_DEFAULT_INSTALLTYPE", "repo"),
            ("DIB_REPOLOCATION_glean", &location),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(default.join("tmp/glean.git/setup.py")).unwrap(),
        "second\n"
    );
}
