//! The Red Hat family elements as a user meets them before any build: the request lines of
//! issue 13 resolve with the embedded library, their element sets against upstream dib's,
//! the packages they map, the EL7 warnings, registration that shows no credential, and the
//! yum element's repository helper.
//! See: issue 13.

use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use crate::common::{dibkit, json, names, root};

/// The request lines (`-o` dropped), with their `DIB_RELEASE`, and the element that
/// must provide `operating-system`.
const REQUESTS: &[(&str, &str, &str)] = &[
    (
        "40",
        "fedora-minimal vm simple-init growroot jenkins-slave",
        "fedora-minimal",
    ),
    (
        "9-stream",
        "centos-minimal vm simple-init growroot jenkins-slave epel",
        "centos-minimal",
    ),
    ("9", "rhel vm simple-init growroot jenkins-slave", "rhel"),
    ("", "fedora-minimal vm jenkins-slave", "fedora-minimal"),
    (
        "7",
        "centos-minimal vm simple-init growroot jenkins-slave",
        "centos-minimal",
    ),
    ("", "rhel7 vm simple-init growroot jenkins-slave", "rhel"),
    ("", "centos7 vm growroot jenkins-slave", "centos"),
];

/// Whether the embedded library has `simple-init` (another change of issue 14 adds it):
/// without it the request lines are checked without that element.
fn has_simple_init() -> bool {
    let (_, plan) = json(dibkit().args(["order", "--format", "json", "-n", "simple-init"]));
    plan["error"]["kind"] != "missing-element"
}

fn request(line: &str) -> Vec<&str> {
    let simple_init = has_simple_init();
    line.split(' ')
        .filter(|e| simple_init || *e != "simple-init")
        .collect()
}

fn order_from_root(release: &str, elements: &[&str]) -> (i32, serde_json::Value) {
    let mut cmd = dibkit();
    cmd.current_dir("/")
        .args(["order", "--format", "json"])
        .args(elements)
        .env("ELEMENTS_PATH", root().join("examples/elements"))
        .env("ARCH", "amd64");
    if !release.is_empty() {
        cmd.env("DIB_RELEASE", release);
    }
    json(&mut cmd)
}

#[test]
fn request_lines_resolve_from_the_embedded_library() {
    if !has_simple_init() {
        eprintln!("note: no built-in simple-init yet; request lines checked without it");
    }
    for (release, line, os) in REQUESTS {
        let elements = request(line);
        let (code, plan) = order_from_root(release, &elements);
        assert_eq!(code, 0, "{line}: {plan}");
        assert_eq!(plan["provided"]["operating-system"], *os, "{line}");
        for e in &elements {
            assert!(names(&plan).iter().any(|n| n == e), "{line}: {e} missing");
        }
        for e in names(&plan) {
            let origin = &plan["elements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == e)
                .unwrap()["origin"];
            if e != "jenkins-slave" {
                assert_eq!(origin, "builtin", "{line}: {e} is not built in");
            }
        }
    }
}

/// EL7: the thin elements pull in their base element and warn first thing in root.d.
#[test]
fn el7_elements_warn_before_anything_runs() {
    for (element, base, script) in [
        ("rhel7", "rhel", "00-rhel7-end-of-life"),
        ("centos7", "centos", "00-centos7-end-of-life"),
    ] {
        let (code, plan) = order_from_root("", &[element, "vm"]);
        assert_eq!(code, 0, "{plan}");
        assert!(names(&plan).iter().any(|n| n == base));
        let root_d = plan["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == "root.d")
            .unwrap();
        assert_eq!(root_d["scripts"][0]["name"], script, "{element}");
        let out = StdCommand::new("bash")
            .arg(root().join(format!("elements/{element}/root.d/{script}")))
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("end of") && err.contains("DIB_RELEASE=9"),
            "{err}"
        );
    }
    let script = root().join("elements/centos-minimal/root.d/01-centos-minimal-release");
    let run = |release: &str| {
        StdCommand::new("bash")
            .arg(&script)
            .env("DIB_RELEASE", release)
            .output()
            .unwrap()
    };
    let seven = run("7");
    assert!(seven.status.success());
    let err = String::from_utf8_lossy(&seven.stderr);
    assert!(
        err.contains("end of life") && err.contains("DIB_RELEASE=9-stream"),
        "{err}"
    );
    let current = run("9-stream");
    assert!(current.status.success() && current.stderr.is_empty());
    // Debian's rpm writes sqlite only: yum-minimal stops before fetching anything, saying
    // what to use.
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = StdCommand::new("bash")
        .arg(root().join("elements/yum-minimal/root.d/08-yum-chroot"))
        .env("TARGET_ROOT", tmp.path().join("root"))
        .env("TMP_HOOKS_PATH", tmp.path())
        .env("DIB_IMAGE_CACHE", tmp.path().join("cache"))
        .env("DISTRO_NAME", "centos")
        .env("DIB_RELEASE", "7")
        .output()
        .unwrap();
    assert_eq!(bootstrap.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bootstrap.stderr);
    assert!(
        err.contains("Berkeley DB") && err.contains("the centos7 element"),
        "{err}"
    );
    assert!(!tmp.path().join("root").exists());
    let unknown = run("6");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("'6'"));
}

fn oracle(path: &str, request: &[&str]) -> Option<Vec<String>> {
    let python = root().join("target/upstream/venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var("DIBKIT_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "DIBKIT_REQUIRE_ORACLE=1 but the upstream oracle is missing"
        );
        return None;
    }
    let out = StdCommand::new(root().join("tests/oracle/element-info"))
        .args(request)
        .env("ELEMENTS_PATH", path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("OK"), "{text}");
    Some(
        lines
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect(),
    )
}

/// For upstream's elements, dibkit's set equals upstream element-info's over upstream's
/// library (with `base` and the `block-device-mbr` disk-image-create adds); where it does not,
/// the operating-system element's README names each element that differs.
#[test]
fn element_sets_match_upstream_or_the_readme_lists_the_difference() {
    let Ok(out) = StdCommand::new(root().join("target/upstream/venv/bin/python"))
        .args([
            "-c",
            "import diskimage_builder.paths as p; print(p.get_path('elements'))",
        ])
        .output()
    else {
        eprintln!("skipping: upstream oracle not installed (run tests/oracle/setup)");
        return;
    };
    let upstream = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let path = format!("{}:{upstream}", root().join("examples/elements").display());
    for (release, line, os) in REQUESTS {
        // Upstream has no rhel7 or centos7 (removed in 3.34), and its simple-init is compared
        // by the change that adds dibkit's.
        if line.contains('7') {
            continue;
        }
        let elements: Vec<&str> = line.split(' ').filter(|e| *e != "simple-init").collect();
        let mut formed = vec!["base", "block-device-mbr"];
        formed.extend(&elements);
        let Some(theirs) = oracle(&path, &formed) else {
            return;
        };
        let (code, plan) = order_from_root(release, &elements);
        assert_eq!(code, 0);
        let mut ours = names(&plan);
        ours.sort();
        let readme = fs::read_to_string(root().join(format!("elements/{os}/README.rst"))).unwrap();
        for e in theirs.iter().filter(|e| !ours.contains(e)) {
            assert!(
                readme.contains(&format!("``{e}``"))
                    && readme.contains("Differences from upstream"),
                "{line}: upstream has {e}, dibkit not, and {os}'s README does not say so"
            );
        }
        let extra: Vec<&String> = ours.iter().filter(|e| !theirs.contains(e)).collect();
        assert!(
            extra.is_empty(),
            "{line}: dibkit has {extra:?}, upstream not"
        );
        if os.ends_with("-minimal") {
            assert_eq!(ours, theirs, "{line}");
        }
    }
}

fn packages(release: &str, elements: &[&str]) -> serde_json::Value {
    let mut cmd = dibkit();
    cmd.args(["packages", "--format", "json"])
        .args(elements)
        .env("ELEMENTS_PATH", root().join("examples/elements"))
        .env("ARCH", "amd64")
        .env("DIB_RELEASE", release);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn install_d(v: &serde_json::Value) -> Vec<String> {
    v["phases"]["install.d"]["install"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn packages_are_mapped_for_fedora_centos_and_el7() {
    let fedora = packages("40", &["fedora-minimal", "vm", "growroot", "jenkins-slave"]);
    assert_eq!(fedora["distro"], "fedora");
    let install = install_d(&fedora);
    for p in [
        "java-21-openjdk-headless",
        "cloud-utils-growpart",
        "redhat-lsb-core",
        "kernel",
        "git",
        "python3-libselinux",
    ] {
        assert!(install.contains(&p.to_owned()), "{p} not in {install:?}");
    }
    for generic in ["java", "growpart", "lsb_release"] {
        assert!(!install.contains(&generic.to_owned()), "{generic} unmapped");
    }
    let uninstall = fedora["phases"]["install.d"]["uninstall"].to_string();
    assert!(uninstall.contains("linux-firmware"), "{uninstall}");

    let centos = install_d(&packages(
        "9-stream",
        &["centos-minimal", "growroot", "epel"],
    ));
    for p in ["ed", "hostname", "postfix", "cloud-utils-growpart"] {
        assert!(centos.contains(&p.to_owned()), "{p} not in {centos:?}");
    }
    let centos10 = install_d(&packages("10-stream", &["centos-minimal"]));
    assert!(centos10.contains(&"dhcpcd".to_owned()), "{centos10:?}");

    let el7 = install_d(&packages("7", &["rhel7", "growroot", "jenkins-slave"]));
    for p in [
        "java-11-openjdk-headless",
        "libselinux-python",
        "policycoreutils-python",
    ] {
        assert!(el7.contains(&p.to_owned()), "{p} not in {el7:?}");
    }
    assert!(!el7.contains(&"policycoreutils-python-utils".to_owned()));
    assert!(!el7.contains(&"java-21-openjdk-headless".to_owned()));
}

fn sh(script: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = StdCommand::new("bash");
    cmd.arg(script).args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Registration with a credential, traced (`DIB_DEBUG_TRACE=1`): subscription-manager gets it,
/// nothing the script prints shows it; unregistering removes the registration.
#[test]
fn rhel_registration_never_prints_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let calls = tmp.path().join("calls");
    // subscription-manager is not on this machine; the stand-in records its arguments.
    fs::write(
        bin.join("subscription-manager"),
        format!("#!/bin/bash\necho \"$*\" >> {}\n", calls.display()),
    )
    .unwrap();
    fs::set_permissions(
        bin.join("subscription-manager"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let register = root().join("elements/rhel-common/pre-install.d/00-rhel-registration");
    let secret = "hunter2-Pa55";
    let out = sh(
        &register,
        tmp.path(),
        &[
            ("PATH", &path),
            ("DIB_DEBUG_TRACE", "1"),
            ("REG_METHOD", "portal"),
            ("REG_USER", "builder"),
            ("REG_PASSWORD", secret),
            ("REG_REPOS", "rhel-9-baseos,rhel-9-appstream"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(secret));
    }
    let recorded = fs::read_to_string(&calls).unwrap();
    assert!(recorded.contains(&format!("register --username builder --password {secret}")));
    assert!(recorded.contains("repos --enable rhel-9-baseos --enable rhel-9-appstream"));

    let disabled = sh(
        &register,
        tmp.path(),
        &[("PATH", &path), ("REG_METHOD", "disable")],
        &[],
    );
    assert!(disabled.status.success());
    let wrong = sh(
        &register,
        tmp.path(),
        &[("PATH", &path), ("REG_METHOD", "portl")],
        &[],
    );
    assert_eq!(wrong.status.code(), Some(1));

    fs::remove_file(&calls).unwrap();
    let unregister = root().join("elements/rhel-common/finalise.d/60-rhel-unregister");
    let out = sh(
        &unregister,
        tmp.path(),
        &[("PATH", &path), ("REG_METHOD", "portal")],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&calls).unwrap(), "unregister\nclean\n");
}

/// The yum element's repository helper: templates need the mirror, the build's repositories
/// stand in for the image's own, and restoring leaves exactly the image's own.
#[test]
fn mirror_repositories_stand_in_and_are_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let helper = root().join("elements/yum/bin/dib-yum-repos");
    let templates = root().join("elements/centos-minimal/yum.repos.d/9-stream");
    let out_dir = tmp.path().join("rendered");
    let t = templates.to_str().unwrap();
    let o = out_dir.to_str().unwrap();
    let unset = sh(
        &helper,
        tmp.path(),
        &[("DISTRO_NAME", "centos")],
        &["render", t, o],
    );
    assert_eq!(unset.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("DIB_DISTRIBUTION_MIRROR"));
    let ok = sh(
        &helper,
        tmp.path(),
        &[(
            "DIB_DISTRIBUTION_MIRROR",
            "http://127.0.0.1:8080/centos-stream/",
        )],
        &["render", t, o],
    );
    assert!(ok.status.success());
    let base = fs::read_to_string(out_dir.join("base.repo")).unwrap();
    assert!(
        base.contains(
            "baseurl=http://127.0.0.1:8080/centos-stream/$releasever-stream/BaseOS/$basearch/os/"
        ),
        "{base}"
    );

    let image = tmp.path().join("image");
    let repos = image.join("etc/yum.repos.d");
    fs::create_dir_all(&repos).unwrap();
    fs::write(repos.join("centos.repo"), "[baseos]\n").unwrap();
    let img = image.to_str().unwrap();
    assert!(
        sh(&helper, tmp.path(), &[], &["swap-in", o, img])
            .status
            .success()
    );
    let mut listed: Vec<String> = fs::read_dir(&repos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "centos.repo.USING_MIRROR",
            "dib-mirror-appstream.repo",
            "dib-mirror-base.repo",
            "dib-mirror-extras-common.repo"
        ]
    );
    assert!(
        sh(&helper, tmp.path(), &[], &["restore", img])
            .status
            .success()
    );
    let listed: Vec<String> = fs::read_dir(&repos)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, ["centos.repo"]);
    assert_eq!(
        fs::read_to_string(repos.join("centos.repo")).unwrap(),
        "[baseos]\n"
    );
}
