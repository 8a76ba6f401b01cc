//! The image root as a chroot: entering it after root.d (resolv.conf, proc/sys/dev, dib's
//! install-type file), the hooks tree bound in for the in-chroot phases, `-p` packages, and
//! leaving it after cleanup.d (resolv.conf back, every chroot mount gone, /tmp emptied, logs
//! truncated).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};

use crate::engine::context::Build;
use crate::engine::ledger::Owner;
use crate::engine::sys;
use crate::error::{Failure, exit, last_lines};
use crate::order::plan::INSTALL_TYPE_ENV;

/// dib's check after root.d: the root must hold something besides lost+found and *tmp.
pub fn check_root(b: &mut Build<'_>) -> Result<(), Failure> {
    let populated = fs::read_dir(&b.paths().mnt).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with("lost+found") && !n.ends_with("tmp")
        })
    });
    if populated {
        Ok(())
    } else {
        Err(anyhow!(
            "root.d left the image root empty: no element of the set provides a root filesystem (did the operating-system element's root.d run?)"
        )
        .into())
    }
}

/// After root.d: the host's resolv.conf in, proc/sys/dev mounted, and dib's install-type
/// environment file written.
pub fn enter(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    let etc = paths.mnt.join("etc");
    fs::create_dir_all(&etc).context("creating etc in the image")?;
    let resolv = etc.join("resolv.conf");
    if fs::symlink_metadata(&resolv).is_ok() {
        fs::rename(&resolv, etc.join("resolv.conf.ORIG"))
            .context("saving the image's resolv.conf")?;
    }
    let host = fs::read("/etc/resolv.conf").unwrap_or_default();
    fs::write(&resolv, host).context("writing resolv.conf into the image")?;
    mount_api_filesystems(b)?;
    let env_dir = paths.hooks.join("environment.d");
    fs::create_dir_all(&env_dir).context("creating environment.d")?;
    fs::write(
        env_dir.join(INSTALL_TYPE_ENV),
        format!(
            "export DIB_DEFAULT_INSTALLTYPE=${{DIB_DEFAULT_INSTALLTYPE:-\"{}\"}}\n",
            b.opts.default_install_type
        ),
    )
    .context("writing the install-type environment file")?;
    Ok(())
}

/// proc, sys, dev and dev/pts in the image root, as dib's `mount_proc_dev_sys`.
pub fn mount_api_filesystems(b: &mut Build<'_>) -> Result<(), Failure> {
    let mnt = b.paths().mnt.clone();
    b.ledger
        .mount_fs(Owner::Chroot, "proc", &mnt.join("proc"))?;
    b.ledger
        .mount_fs(Owner::Chroot, "sysfs", &mnt.join("sys"))?;
    b.ledger
        .bind(Owner::Chroot, Path::new("/dev"), &mnt.join("dev"), false)?;
    // The host's pty instance, so /dev/ptmx (from the /dev bind) and /dev/pts agree.
    b.ledger.bind(
        Owner::Chroot,
        Path::new("/dev/pts"),
        &mnt.join("dev/pts"),
        false,
    )?;
    Ok(())
}

/// The hooks tree, read-only at /tmp/in_target.d, for the in-chroot phases.
pub fn bind_hooks(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    fs::create_dir_all(paths.mnt.join("tmp")).context("creating /tmp in the image")?;
    b.ledger.bind(
        Owner::Chroot,
        &paths.hooks,
        &paths.mnt.join("tmp/in_target.d"),
        true,
    )?;
    Ok(())
}

pub fn unbind_hooks(b: &mut Build<'_>) -> Result<(), Failure> {
    let target = b.paths().mnt.join("tmp/in_target.d");
    b.ledger.unmount(&target)?;
    // The mount point goes too, as in dib; a hook may have left something in it.
    fs::remove_dir(&target).ok();
    Ok(())
}

/// `-p`: install-packages once after install.d, in the chroot.
pub fn install_packages(b: &mut Build<'_>) -> Result<(), Failure> {
    b.step(&format!("install-packages {}", b.opts.packages.join(" ")));
    let mut cmd = std::process::Command::new("/bin/bash");
    cmd.arg("-c")
        .arg("install-packages \"$@\"")
        .arg("install-packages")
        .args(&b.opts.packages);
    cmd.env_clear()
        .envs(b.env_inside.iter().map(|(k, v)| (k, v)));
    sys::proc::chroot(&mut cmd, &b.paths().mnt);
    let out = cmd
        .output()
        .context("running install-packages in the chroot")?;
    b.log
        .write_all(&out.stdout)
        .and_then(|()| b.log.write_all(&out.stderr))
        .context("writing the log")?;
    if !out.status.success() {
        return Err(hook_failure(
            "install.d",
            "install-packages (-p)",
            "(command line)",
            Path::new("/usr/local/bin/install-packages"),
            out.status.code().unwrap_or(-1),
            &last_lines(&String::from_utf8_lossy(&out.stderr), 20),
        ));
    }
    Ok(())
}

/// A hook that failed: its phase, name, element and file, and the end of its output.
#[must_use]
pub fn hook_failure(
    phase: &str,
    script: &str,
    element: &str,
    path: &Path,
    status: i32,
    tail: &[String],
) -> Failure {
    let mut failure = Failure::new(
        exit::HOOK,
        format!("{phase}/{script} from element `{element}` failed with exit status {status}"),
        None,
    )
    .with_note(format!("script {}", path.display()));
    if !tail.is_empty() {
        failure = failure.with_note(format!(
            "last lines of its output:\n    {}",
            tail.join("\n    ")
        ));
    }
    failure
}

/// After cleanup.d: the image's own resolv.conf back, the chroot mounts gone.
pub fn leave(b: &mut Build<'_>) -> Result<(), Failure> {
    let mnt = b.paths().mnt.clone();
    let etc = mnt.join("etc");
    let resolv = etc.join("resolv.conf");
    let orig = etc.join("resolv.conf.ORIG");
    // dib keeps a resolv.conf that a hook turned into a symlink; otherwise it restores.
    let replaced = fs::symlink_metadata(&resolv).is_ok_and(|m| m.file_type().is_symlink());
    if replaced {
        remove_if_there(&orig)?;
    } else {
        remove_if_there(&resolv)?;
        if fs::symlink_metadata(&orig).is_ok() {
            fs::rename(&orig, &resolv).context("restoring the image's resolv.conf")?;
        }
    }
    b.ledger.release(Owner::Chroot, &mut b.log)?;
    // Whatever a hook left mounted goes; the disk image's own filesystems stay mounted for
    // the scrub, the tar export and the FAT fill.
    let ledger = &b.ledger;
    let left = sys::mount::sweep_except(&mnt, |m| ledger.owns_mount(Owner::Image, m));
    if !left.is_empty() {
        return Err(anyhow!("still mounted in the image: {left:?}").into());
    }
    Ok(())
}

fn remove_if_there(path: &Path) -> Result<(), Failure> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow!("removing {}: {e}", path.display()).into())
        }
        _ => Ok(()),
    }
}

/// dib's final scrub: /tmp emptied, logs truncated. Best effort, as in dib: what cannot be
/// removed stays in the image.
///
/// An image whose `/tmp`, `/var` or `/var/log` is a symlink is left alone there: followed on
/// the host it would lead out of the image (dib's `find -P` does not follow it either).
pub fn scrub(b: &mut Build<'_>) {
    let mnt = b.paths().mnt.clone();
    for rel in ["tmp", "var", "var/log"] {
        if fs::symlink_metadata(mnt.join(rel)).is_ok_and(|m| m.file_type().is_symlink()) {
            b.log_line(&format!(
                "note: /{rel} is a symlink in the image; not scrubbed"
            ));
        }
    }
    let real_dir = |rel: &str| {
        let mut p = mnt.clone();
        for part in rel.split('/') {
            p.push(part);
            if !fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_dir()) {
                return None;
            }
        }
        Some(p)
    };
    if let Some(Ok(rd)) = real_dir("tmp").map(fs::read_dir) {
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(err) = removed {
                b.log_line(&format!("note: could not remove {}: {err}", p.display()));
            }
        }
    }
    if let Some(logs) = real_dir("var/log") {
        truncate_logs(&logs);
    }
}

fn truncate_logs(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            truncate_logs(&e.path());
        } else if ft.is_file() {
            // Best effort, as dib's `truncate` loop.
            fs::File::create(e.path()).ok();
        }
    }
}
