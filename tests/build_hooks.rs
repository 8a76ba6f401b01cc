//! Hooks-tree assembly (no root needed): what lands in `$TMP_HOOKS_PATH`, and that element
//! symlinks never make the build write outside it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use dibkit::deps::expand;
use dibkit::element::discover::{self, Builtins};
use dibkit::order::simulate;

fn plan_for(
    path: &Path,
    elements: &[&str],
    builtins: &Builtins,
) -> (discover::Library, dibkit::order::plan::Plan) {
    let entries = vec![path.display().to_string()];
    let mut lib = discover::discover(&entries, builtins).unwrap();
    let args: Vec<String> = elements.iter().map(|s| (*s).to_owned()).collect();
    let request = expand::form_request(&args, true, "amd64");
    let outcome = expand::expand(&request, &mut lib).unwrap();
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let plan = simulate::plan(&lib, &outcome).unwrap();
    (lib, plan)
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn symlink_from_one_element_never_redirects_another_elements_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = tmp.path().join("lib");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    write(
        &lib_dir.join("os/element-provides"),
        "operating-system\n",
        0o644,
    );
    fs::create_dir_all(lib_dir.join("a/static/etc")).unwrap();
    std::os::unix::fs::symlink(&outside, lib_dir.join("a/static/etc/foo")).unwrap();
    write(
        &lib_dir.join("b/static/etc/foo/planted"),
        "should never leave the tree\n",
        0o644,
    );
    let (lib, plan) = plan_for(&lib_dir, &["os", "a", "b"], &Builtins::None);
    let hooks = tmp.path().join("hooks");
    let err = dibkit::engine::hooks::assemble(&lib, &plan, &hooks).unwrap_err();
    assert!(
        format!("{err:#}").contains("refusing to merge a directory through it"),
        "{err:#}"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the symlink"
    );
}

#[test]
fn a_file_replaces_an_earlier_elements_symlink_instead_of_writing_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib_dir = tmp.path().join("lib");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "original\n").unwrap();
    write(
        &lib_dir.join("os/element-provides"),
        "operating-system\n",
        0o644,
    );
    fs::create_dir_all(lib_dir.join("a/static/etc")).unwrap();
    std::os::unix::fs::symlink(&victim, lib_dir.join("a/static/etc/conf")).unwrap();
    write(&lib_dir.join("b/static/etc/conf"), "from b\n", 0o644);
    let (lib, plan) = plan_for(&lib_dir, &["os", "a", "b"], &Builtins::None);
    let hooks = tmp.path().join("hooks");
    dibkit::engine::hooks::assemble(&lib, &plan, &hooks).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "original\n");
    assert_eq!(
        fs::read_to_string(hooks.join("static/etc/conf")).unwrap(),
        "from b\n"
    );
}

#[test]
fn builtin_set_assembles_with_modes_and_runner() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let (lib, plan) = plan_for(
        &empty,
        &["base", "debian-minimal", "openssh-server"],
        &Builtins::Embedded,
    );
    let hooks = tmp.path().join("hooks");
    dibkit::engine::hooks::assemble(&lib, &plan, &hooks).unwrap();
    for phase in &plan.phases {
        for s in &phase.scripts {
            let p = hooks.join(phase.phase.dir()).join(&s.name);
            let mode = fs::metadata(&p)
                .unwrap_or_else(|_| panic!("{} missing", p.display()))
                .permissions()
                .mode();
            assert!(mode & 0o111 != 0, "{} lost its exec bit", p.display());
        }
    }
    for e in &plan.environment {
        if e.note.is_none() {
            assert!(
                hooks.join("environment.d").join(&e.name).is_file(),
                "{}",
                e.name
            );
        }
    }
    assert!(hooks.join("dibkit-run-parts").is_file());
    assert!(hooks.join("bin/install-packages").is_file());
    let builtins = tmp.path().join("builtin");
    dibkit::engine::hooks::materialize_builtins(&lib, &plan, &builtins).unwrap();
    assert!(builtins.join("debian-minimal/README.rst").is_file());
}

/// Runs the bootloader element's install.d/18-bootloader-packages with `env`, a PATH whose
/// `dpkg-query` says only `installed` are installed and whose `install-packages` records its
/// arguments: (exit code, stderr, what install-packages was given).
fn bootloader_packages(env: &[(&str, &str)], installed: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let log = dir.path().join("installed.log");
    write(
        &bin.join("dpkg-query"),
        &format!(
            "#!/bin/bash\nfor p in {installed}; do [ \"$p\" = \"${{@: -1}}\" ] && printf 'ii ' && exit 0; done\nexit 1\n"
        ),
        0o755,
    );
    write(
        &bin.join("install-packages"),
        &format!("#!/bin/bash\necho \"$*\" >> {}\n", log.display()),
        0o755,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("elements/bootloader/install.d/18-bootloader-packages");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = std::process::Command::new(script)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn bootloader_packages_installs_only_the_missing_ones_for_disk_builds() {
    let disk = [
        ("DIB_MOUNTPOINTS", "/"),
        ("ARCH", "amd64"),
        ("DISTRO_NAME", "debian"),
        ("DIB_BLOCK_DEVICE", "efi"),
    ];
    let (code, err, got) = bootloader_packages(&disk, "dosfstools");
    assert_eq!(code, 0, "{err}");
    assert_eq!(got, "grub-pc grub-efi-amd64-bin\n");
    let (code, _, got) = bootloader_packages(&disk, "grub-pc grub-efi-amd64-bin dosfstools");
    assert_eq!((code, got.as_str()), (0, ""));
    // No disk image yet (a tar build): nothing, unless finalise.d asks.
    let (code, _, got) = bootloader_packages(&disk[1..], "");
    assert_eq!((code, got.as_str()), (0, ""));
    let mut skip = disk.to_vec();
    skip.push(("DIB_SKIP_GRUB_PACKAGE_INSTALL", "True"));
    let (code, _, got) = bootloader_packages(&skip, "");
    assert_eq!((code, got.as_str()), (0, ""));
}

#[test]
fn bootloader_packages_refuses_arm64_without_uefi() {
    let env = [
        ("DIB_MOUNTPOINTS", "/"),
        ("ARCH", "arm64"),
        ("DISTRO_NAME", "debian"),
        ("DIB_BLOCK_DEVICE", "mbr"),
    ];
    let (code, err, got) = bootloader_packages(&env, "");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "bootloader: ARCH arm64 boots only through UEFI, but DIB_BLOCK_DEVICE is 'mbr'; \
         use the block-device-efi element\n"
    );
    assert_eq!(got, "");
}
