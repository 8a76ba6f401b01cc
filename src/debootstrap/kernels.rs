//! The kernels a prepared tree got with `INITRD=No`: their postinst made no initramfs and
//! no /initrd.img links. What it skipped is done again here, without `INITRD`, in the tree
//! (with /proc and /sys mounted, as the prepare scripts had them): the links
//! ([`link`], before the image exists, as the postinst makes them), then the kernel hooks
//! ([`run_hooks`]), initramfs-tools' making the image.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::engine::cmd;
use crate::engine::sys::proc::chroot;

/// The kernels in `root`'s /boot (`vmlinuz-VERSION`, `vmlinux-VERSION`) without an
/// initramfs, as (version, image path inside the tree), by name.
#[must_use]
pub fn without_initrd(root: &Path) -> Vec<(String, String)> {
    let Ok(list) = std::fs::read_dir(root.join("boot")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = list
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let version = n
                .strip_prefix("vmlinuz-")
                .or_else(|| n.strip_prefix("vmlinux-"))?
                .to_owned();
            let initrd = root.join("boot").join(format!("initrd.img-{version}"));
            (!initrd.exists()).then(|| (version, format!("/boot/{n}")))
        })
        .collect()
}

/// `program ARGS` in the tree, with the tree's PATH, without TMPDIR and INITRD; its output
/// goes where ours goes.
fn in_tree(root: &Path, env: &[(&str, &str)], program: &str, args: &[String]) -> Result<()> {
    let mut c = Command::new(program);
    c.args(args)
        .envs(env.iter().copied())
        .env_remove("TMPDIR")
        .env_remove("INITRD")
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C");
    chroot(&mut c, root);
    let shown = cmd::shown(&c);
    let status = c
        .status()
        .with_context(|| format!("running {shown} in {}", root.display()))?;
    if !status.success() {
        bail!("{shown} in {} failed ({status})", root.display());
    }
    Ok(())
}

/// Makes the /initrd.img links of `kernels` as their postinst would have, when the tree has
/// linux-update-symlinks.
///
/// # Errors
/// It fails.
pub fn link(root: &Path, kernels: &[(String, String)]) -> Result<()> {
    if !root.join("usr/bin/linux-update-symlinks").is_file() {
        return Ok(());
    }
    for (version, image) in kernels {
        in_tree(
            root,
            &[],
            "linux-update-symlinks",
            &["install".into(), version.clone(), image.clone()],
        )?;
    }
    Ok(())
}

/// Runs the tree's /etc/kernel/postinst.d hooks for kernel `version` (`image` in the
/// tree), as its postinst does.
///
/// # Errors
/// A hook fails.
pub fn run_hooks(root: &Path, version: &str, image: &str) -> Result<()> {
    in_tree(
        root,
        &[("DEB_MAINT_PARAMS", "configure")],
        "run-parts",
        &[
            "--report".into(),
            "--exit-on-error".into(),
            format!("--arg={version}"),
            format!("--arg={image}"),
            "/etc/kernel/postinst.d".into(),
        ],
    )
    .map_err(|e| e.context(format!("running the kernel hooks for {version}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_without_an_initramfs_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        assert!(without_initrd(dir.path()).is_empty());
        std::fs::create_dir_all(&boot).unwrap();
        for f in [
            "vmlinuz-6.1.0-2-amd64",
            "vmlinuz-6.1.0-1-amd64",
            "initrd.img-6.1.0-1-amd64",
            "vmlinux-5.10",
            "config-6.1.0-2-amd64",
        ] {
            std::fs::write(boot.join(f), "").unwrap();
        }
        assert_eq!(
            without_initrd(dir.path()),
            vec![
                ("5.10".to_owned(), "/boot/vmlinux-5.10".to_owned()),
                (
                    "6.1.0-2-amd64".to_owned(),
                    "/boot/vmlinuz-6.1.0-2-amd64".to_owned()
                ),
            ]
        );
    }
    #[test]
    fn a_tree_without_linux_update_symlinks_needs_no_links() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = vec![("6.1".to_owned(), "/boot/vmlinuz-6.1".to_owned())];
        link(dir.path(), &kernels).unwrap();
    }
}
