//! Assembles the hooks tree (`$TMP_HOOKS_PATH`) as dib's `generate_hooks` does: every
//! top-level directory of every element merged (dotfiles skipped), then the top-level files
//! (later elements win). Duplicates never get here: the plan refuses them first.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::element::discover::{self, Library, Resolved};
use crate::element::model::NodeKind;
use crate::order::plan::Plan;

/// The phase runner copied into the hooks tree.
pub const RUN_PARTS: &str = include_str!("run-parts.bash");
pub const RUN_PARTS_NAME: &str = "dibkit-run-parts";

/// Builds the hooks tree of `plan`'s elements in `hooks`.
pub fn assemble(lib: &Library, plan: &Plan, hooks: &Path) -> Result<()> {
    fs::create_dir_all(hooks).with_context(|| format!("creating {}", hooks.display()))?;
    for pe in &plan.elements {
        let element = lib
            .get(&pe.name)
            .context("planned element is in the library")?;
        for dir in discover::hook_dirs(&element.root)? {
            let dest_dir = hooks.join(&dir);
            fs::create_dir_all(&dest_dir)
                .with_context(|| format!("creating {}", dest_dir.display()))?;
            for node in discover::list(&element.root, &dir)? {
                if node.name.starts_with('.') {
                    continue; // `ls` in generate_hooks never lists dotfiles.
                }
                discover::copy_out(
                    &element.root,
                    &format!("{dir}/{}", node.name),
                    &dest_dir.join(&node.name),
                )?;
            }
        }
        for node in discover::list(&element.root, "")? {
            let is_file = match &node.kind {
                NodeKind::File { .. } => true,
                NodeKind::Symlink { .. } => {
                    matches!(
                        discover::resolve(&element.root, &node.name),
                        Some(Resolved::File { .. })
                    )
                }
                _ => false,
            };
            if is_file && !node.name.ends_with(".pyc") {
                let dest = hooks.join(&node.name);
                if fs::symlink_metadata(&dest).is_ok() {
                    fs::remove_file(&dest)
                        .with_context(|| format!("replacing {}", dest.display()))?;
                }
                discover::copy_out(&element.root, &node.name, &dest)?;
            }
        }
    }
    let runner = hooks.join(RUN_PARTS_NAME);
    fs::write(&runner, RUN_PARTS).with_context(|| format!("writing {}", runner.display()))?;
    fs::set_permissions(&runner, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Writes every element of the set that lives in the embedded library to `dir`, so hooks
/// that read element directories (`IMAGE_ELEMENT_YAML`, pkg-map) find real paths.
pub fn materialize_builtins(lib: &Library, plan: &Plan, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for pe in &plan.elements {
        let element = lib
            .get(&pe.name)
            .context("planned element is in the library")?;
        if matches!(element.root, crate::element::model::Root::Builtin(_)) {
            discover::copy_out(&element.root, "", &dir.join(&pe.name))?;
        }
    }
    Ok(())
}
