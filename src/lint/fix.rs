//! `--fix` and `--diff`: applies fixes to the in-memory workspace round by round (rules are
//! pure, so each round re-checks without touching the disk), then writes the net changes
//! atomically or prints them as a diff.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::config::Config;
use super::diagnostic::{Edit, FileId};
use super::model::Workspace;

/// The net change to one file.
#[derive(Debug, Clone)]
pub struct Change {
    pub file: FileId,
    pub path: PathBuf,
    pub old_text: Option<String>,
    pub new_text: Option<String>,
    pub old_mode: u32,
    pub new_mode: u32,
    /// The new path, when renamed.
    pub renamed: Option<PathBuf>,
    /// What was done, one title per applied fix.
    pub titles: Vec<String>,
}

/// Applies fixes to `ws` until none is left (at most 10 rounds). Returns the net changes.
pub fn apply(ws: &mut Workspace, config: &Config, unsafe_fixes: bool) -> Vec<Change> {
    let mut original: BTreeMap<FileId, (Option<String>, u32, PathBuf)> = BTreeMap::new();
    let mut titles: BTreeMap<FileId, Vec<String>> = BTreeMap::new();
    for _ in 0..10 {
        let diagnostics = super::filter(ws, super::check(ws, config), config);
        let mut content_done: Vec<FileId> = Vec::new();
        let mut applied = false;
        for d in &diagnostics {
            let Some(fix) = &d.fix else { continue };
            if !fix.safe && !unsafe_fixes {
                continue;
            }
            let file = match &fix.edit {
                Edit::Content { file, .. }
                | Edit::Mode { file, .. }
                | Edit::Rename { file, .. } => *file,
            };
            original.entry(file).or_insert_with(|| {
                let f = ws.file(file);
                (f.text.clone(), f.mode, f.path.clone())
            });
            match &fix.edit {
                Edit::Content { file, text } => {
                    if content_done.contains(file) || ws.files[*file].text.as_deref() == Some(text)
                    {
                        continue;
                    }
                    content_done.push(*file);
                    ws.files[*file].set_content(text.clone().into_bytes());
                }
                Edit::Mode { file, mode } => {
                    if ws.files[*file].mode == *mode {
                        continue;
                    }
                    ws.files[*file].mode = *mode;
                }
                Edit::Rename { file, to } => {
                    let f = &ws.files[*file];
                    let new_path = f.path.with_file_name(to);
                    let taken = ws.files.iter().any(|o| o.path == new_path) || new_path.exists();
                    if taken {
                        continue;
                    }
                    let new_rel = match f.rel.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{to}"),
                        None => to.clone(),
                    };
                    let f = &mut ws.files[*file];
                    f.path = new_path;
                    f.rel = new_rel;
                }
            }
            titles.entry(file).or_default().push(fix.title.clone());
            applied = true;
        }
        if !applied {
            break;
        }
    }
    original
        .into_iter()
        .filter_map(|(id, (old_text, old_mode, old_path))| {
            let f = ws.file(id);
            let renamed = (f.path != old_path).then(|| f.path.clone());
            let changed = f.text != old_text || f.mode != old_mode || renamed.is_some();
            changed.then(|| Change {
                file: id,
                path: old_path,
                old_text,
                new_text: f.text.clone(),
                old_mode,
                new_mode: f.mode,
                renamed,
                titles: titles.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes the changes: content through a temporary file in the same directory renamed over
/// the original (so an interrupted run leaves the old or the new file, never half of one),
/// then modes, then renames (never over an existing file).
///
/// # Errors
/// The first file that cannot be written; earlier files stay fixed.
pub fn write(changes: &[Change]) -> Result<(), String> {
    for c in changes {
        if c.new_text != c.old_text {
            let text = c.new_text.as_deref().unwrap_or("");
            let dir = c
                .path
                .parent()
                .ok_or_else(|| format!("{}: no parent directory", c.path.display()))?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".dibkit-fix-")
                .tempfile_in(dir)
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
            tmp.write_all(text.as_bytes())
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(c.new_mode & 0o7777))
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
            tmp.persist(&c.path)
                .map_err(|e| format!("{}: {}", c.path.display(), e.error))?;
        } else if c.new_mode != c.old_mode {
            fs::set_permissions(&c.path, fs::Permissions::from_mode(c.new_mode & 0o7777))
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
        }
        if let Some(to) = &c.renamed {
            if to.exists() {
                return Err(format!(
                    "{}: not renamed, {} exists",
                    c.path.display(),
                    to.display()
                ));
            }
            fs::rename(&c.path, to).map_err(|e| format!("{}: {e}", c.path.display()))?;
        }
    }
    Ok(())
}

/// A unified diff of the changes, as `--diff` prints it.
#[must_use]
pub fn diff(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let old_name = c.path.display().to_string();
        let new_name = c.renamed.as_ref().unwrap_or(&c.path).display().to_string();
        if c.renamed.is_some() {
            out.push_str(&format!("rename {old_name} -> {new_name}\n"));
        }
        if c.new_mode != c.old_mode {
            out.push_str(&format!(
                "mode {:o} -> {:o} {new_name}\n",
                c.old_mode & 0o7777,
                c.new_mode & 0o7777
            ));
        }
        if c.new_text != c.old_text {
            let old = c.old_text.as_deref().unwrap_or("");
            let new = c.new_text.as_deref().unwrap_or("");
            let udiff = similar::TextDiff::from_lines(old, new)
                .unified_diff()
                .header(&format!("a/{old_name}"), &format!("b/{new_name}"))
                .to_string();
            out.push_str(&udiff);
        }
    }
    out
}
