//! The hooks tree and the hooks' environment: the elements' directories merged into
//! `$TMP_HOOKS_PATH`, the embedded elements written out for hooks that read element
//! directories, and dib's variables for the host and the chroot.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::element::discover::Library;
use crate::element::model::Root;
use crate::engine::context::Build;
use crate::engine::{env, hooks, host_ca};
use crate::error::Failure;
use crate::order::plan::Plan;

/// Paths of the set's elements as hooks see them (`IMAGE_ELEMENT_YAML`).
fn element_paths(lib: &Library, plan: &Plan, builtin_dir: &Path) -> BTreeMap<String, String> {
    plan.elements
        .iter()
        .filter_map(|e| lib.get(&e.name))
        .map(|e| {
            let path = match &e.root {
                Root::Disk(p) => p.display().to_string(),
                Root::Builtin(name) => builtin_dir.join(name).display().to_string(),
            };
            (e.name.clone(), path)
        })
        .collect()
}

/// Assembles the hooks tree and sets the environment every hook sees.
pub fn assemble(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    b.step(&format!(
        "preparing {} elements in {}",
        b.plan.elements.len(),
        paths.build.display()
    ));
    fs::create_dir_all(&paths.mnt).context("creating the image root")?;
    fs::create_dir_all(&paths.image_dir).context("creating the image directory")?;
    fs::create_dir_all(&b.opts.image_cache)
        .with_context(|| format!("creating {}", b.opts.image_cache.display()))?;
    hooks::materialize_builtins(b.lib, &b.plan, &paths.builtin_dir)?;
    hooks::assemble(b.lib, &b.plan, &paths.hooks)?;
    let element_paths = element_paths(b.lib, &b.plan, &paths.builtin_dir);
    let mut vars = env::dib_vars(&b.plan, &paths, &b.opts, &element_paths);
    if let Some(d) = &b.opts.disk {
        // What hooks may want to know about the disk, exported before root.d as dib does.
        let config = &d.config;
        vars.insert(
            "DIB_ROOT_LABEL".into(),
            config.root_label().unwrap_or_default(),
        );
        vars.insert(
            "DIB_ROOT_FSTYPE".into(),
            config.root_fstype().unwrap_or_default(),
        );
        vars.insert("DIB_BOOT_LABEL".into(), config.boot_label());
        vars.insert("DIB_MOUNTPOINTS".into(), config.mount_points());
    }
    b.env_outside = env::outside(&vars, &element_paths);
    b.env_inside = env::inside(&vars);
    // The host's CAs for HTTPS from the chroot (a TLS-intercepting proxy's included).
    let ssl_cert_file = std::env::var("SSL_CERT_FILE").ok();
    match host_ca::find_bundle(ssl_cert_file.as_deref()) {
        Some(bundle) => {
            host_ca::install(&bundle, &paths.hooks)?;
            b.env_inside.extend(host_ca::chroot_env());
            b.log_line(&format!(
                "the chroot's TLS clients trust the host's CAs ({}) while hooks run",
                bundle.display()
            ));
        }
        None => b.log_line("note: no CA bundle on the host; the chroot uses its own CAs"),
    }
    Ok(())
}
