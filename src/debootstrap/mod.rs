//! The debootstrap element's logic, out of its shell hook: the local, cut-down index
//! debootstrap resolves from ([`local`], over the pure functions of [`index`]) and the cache
//! key of a prepared tree ([`key`]). The element calls it through `dibkit debootstrap`; this
//! module never prints.

pub mod cache;
pub mod index;
pub mod kernels;
pub mod key;
pub mod local;
pub mod run;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The Debian architecture of a dib `ARCH` (`x86_64` is `amd64`, ...); others as given.
#[must_use]
pub fn debian_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        other => other,
    }
}

/// The first `root.d` script that runs between `this` and the last prepare script (bytewise
/// order, as dib-run-parts sorts these names) and is neither a prepare script nor declared
/// compatible: it could change what the prepare scripts do, so the tree is not prepared.
#[must_use]
pub fn prepare_blocker(
    root_d: &[String],
    this: &str,
    prepare: &[String],
    compatible: &[String],
) -> Option<String> {
    let last = prepare.iter().max()?;
    let mut names: Vec<&String> = root_d.iter().collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| n.as_str() > this && *n < last)
        .find(|n| !prepare.contains(n) && !compatible.contains(n))
        .cloned()
}

/// The scripts whose contents go into the cache key: each prepare script (`root.d/NAME` of
/// the hooks tree, which must be an executable file), then, when there are any, the
/// hooks-tree paths they run themselves (`DIB_DEBOOTSTRAP_PREPARE_INPUTS`).
///
/// # Errors
/// A prepare script is missing or not executable: the message names it.
pub fn prepare_scripts(
    hooks: &Path,
    prepare: &[String],
    inputs: &[String],
) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for name in prepare {
        let path = hooks.join("root.d").join(name);
        let runnable = std::fs::metadata(&path)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !runnable {
            return Err(format!(
                "DIB_DEBOOTSTRAP_PREPARE names root.d/{name}, but the hooks tree has no \
                 executable script of that name"
            ));
        }
        out.push(path);
    }
    if !prepare.is_empty() {
        out.extend(inputs.iter().map(|i| hooks.join(i)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_scripts_must_be_executable_and_bring_their_inputs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path();
        std::fs::create_dir_all(hooks.join("root.d")).unwrap();
        let script = hooks.join("root.d/60-base");
        std::fs::write(&script, "#!/bin/bash\n").unwrap();
        let e = prepare_scripts(hooks, &names("60-base"), &[]).unwrap_err();
        assert!(e.contains("root.d/60-base"), "{e}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            prepare_scripts(hooks, &names("60-base"), &names("pre-install.d/85-x")).unwrap(),
            vec![script, hooks.join("pre-install.d/85-x")]
        );
        assert!(
            prepare_scripts(hooks, &[], &names("pre-install.d/85-x"))
                .unwrap()
                .is_empty()
        );
        assert!(prepare_scripts(hooks, &names("55-none"), &[]).is_err());
    }

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn dib_arches_map_to_debian_ones() {
        assert_eq!(debian_arch("x86_64"), "amd64");
        assert_eq!(debian_arch("aarch64"), "arm64");
        assert_eq!(debian_arch("ppc64le"), "ppc64el");
        assert_eq!(debian_arch("armhf"), "armhf");
    }

    #[test]
    fn only_foreign_scripts_between_block_preparing() {
        let root_d = names("05-early 10-debootstrap 20-dpkg 50-proxy 55-src 60-base 70-late");
        let prepare = names("55-src 60-base");
        let compatible = names("20-dpkg");
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &prepare, &compatible).as_deref(),
            Some("50-proxy")
        );
        let root_d = names("05-early 10-debootstrap 20-dpkg 55-src 60-base 70-late");
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &prepare, &compatible),
            None
        );
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &[], &compatible),
            None
        );
    }
}
