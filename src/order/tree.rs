//! A phase of the hooks tree as it is on disk when the phase starts: the environment.d files
//! dib-run-parts sources and the hooks it runs, in order. The rules are the plan's own
//! ([`simulate::judge_hook`], [`simulate::judge_env`], [`sort::compare`]); the plan applies
//! them to the elements before the build, this module to the tree a build assembled (hooks may
//! add files to it). The build engine runs exactly this list. Reads the tree; changes nothing.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use regex_lite::Regex;

use super::plan::SkipReason;
use super::simulate::{self, Reason, run_parts_name_ok};
use super::sort;
use crate::element::discover::{self, Resolved};

/// dib-run-parts' name filter for hooks: `RUN_PARTS_REGEX` (an extended regular expression
/// which dib-run-parts gives to `grep -E`; read here with regex-lite, whose classes are
/// ASCII), `^[0-9A-Za-z_-]+$` when unset.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    regex: Option<Regex>,
}

impl NameFilter {
    /// The filter for a `RUN_PARTS_REGEX` value (`None` or empty: dib-run-parts' default).
    ///
    /// # Errors
    /// The expression does not compile.
    pub fn new(run_parts_regex: Option<&str>) -> Result<Self, regex_lite::Error> {
        let regex = run_parts_regex
            .filter(|r| !r.is_empty())
            .map(Regex::new)
            .transpose()?;
        Ok(Self { regex })
    }

    #[must_use]
    pub fn accepts(&self, name: &str) -> bool {
        match &self.regex {
            Some(r) => r.is_match(name),
            None => run_parts_name_ok(name),
        }
    }

    /// Whether this is dib-run-parts' default (no `RUN_PARTS_REGEX`).
    #[must_use]
    pub fn is_default(&self) -> bool {
        self.regex.is_none()
    }

    /// The expression in force, for messages.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.regex
            .as_ref()
            .map_or("^[0-9A-Za-z_-]+$", Regex::as_str)
    }
}

/// What dib-run-parts does with one phase directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseList {
    /// The environment.d files sourced first, in order; `None` when the tree has no
    /// environment.d.
    pub environment: Option<Vec<String>>,
    /// The hooks run, in order.
    pub hooks: Vec<String>,
}

/// Lists phase directory `dir` of a hooks tree, as seen by a process whose `/` is `root`:
/// `/` on the host; the image root for an in-chroot phase, where `dir` is the tree's bind
/// mount (`/tmp/in_target.d/<phase>`) and absolute symlinks resolve inside the image. A
/// missing directory runs nothing (dib skips the phase).
///
/// # Errors
/// A directory of the tree cannot be read.
pub fn list_phase(root: &Path, dir: &Path, filter: &NameFilter) -> std::io::Result<PhaseList> {
    let host_dir = under(root, dir);
    let mut hooks = Vec::new();
    if host_dir.is_dir() {
        for name in names(&host_dir)? {
            let resolved = resolve(root, &dir.join(&name));
            if simulate::judge_hook(&name, resolved, filter).is_ok() {
                hooks.push(name);
            }
        }
    }
    hooks.sort_by(|a, b| sort::compare(a, b));
    let env_dir = dir.parent().unwrap_or(dir).join("environment.d");
    let environment = if under(root, &env_dir).is_dir() {
        let mut files = Vec::new();
        for name in names(&under(root, &env_dir))? {
            if simulate::judge_env(&name, resolve(root, &env_dir.join(&name))).is_ok() {
                files.push(name);
            }
        }
        // `LANG=C sort -n` of full paths that share their directory: byte order of names.
        files.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Some(files)
    } else {
        None
    };
    Ok(PhaseList { environment, hooks })
}

/// The entries of a directory, as UTF-8 names (others cannot pass either filter).
fn names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// `path` (absolute, as seen from `root`) as a host path.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// What `path` resolves to for a process whose `/` is `root`: symlinks are followed one
/// component at a time, an absolute target restarting from `root`.
fn resolve(root: &Path, path: &Path) -> Result<Resolved, Reason> {
    let dangling = || {
        (
            SkipReason::DanglingSymlink,
            format!("{} does not resolve", path.display()),
        )
    };
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_front(&mut todo, path);
    let mut done = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        done.push(&part);
        let host = under(root, &done);
        let meta = fs::symlink_metadata(&host).map_err(|_| dangling())?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(dangling());
            }
            let target = fs::read_link(&host).map_err(|_| dangling())?;
            done.pop();
            if target.is_absolute() {
                done = PathBuf::from("/");
            }
            push_front(&mut todo, &target);
        }
    }
    discover::resolve_host(&under(root, &done)).ok_or_else(dangling)
}

/// Puts `path`'s components in front of `todo`, in order (`..` kept, `.` and `/` dropped).
fn push_front(todo: &mut VecDeque<OsString>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(p) => todo.push_front(p.to_owned()),
            Component::ParentDir => todo.push_front(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn file(path: &Path, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/bash\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn lists_what_dib_run_parts_runs_in_its_order() {
        let tmp = tempfile::tempdir().unwrap();
        let hooks = tmp.path().join("hooks");
        let d = hooks.join("install.d");
        for name in ["10-b", "9-a", "100-c", "10-B", "abc"] {
            file(&d.join(name), 0o755);
        }
        file(&d.join("50-off"), 0o644);
        file(&d.join("50-dot.sh"), 0o755);
        fs::create_dir_all(d.join("60-dir")).unwrap();
        symlink("10-b", d.join("70-link")).unwrap();
        symlink("missing", d.join("80-dangling")).unwrap();
        symlink("50-off", d.join("90-link-off")).unwrap();
        file(&hooks.join("environment.d/10-b.bash"), 0o644);
        file(&hooks.join("environment.d/02-a.bash"), 0o644);
        file(&hooks.join("environment.d/bad name"), 0o644);
        let list = list_phase(Path::new("/"), &d, &NameFilter::default()).unwrap();
        assert_eq!(
            list.hooks,
            ["abc", "9-a", "10-B", "10-b", "70-link", "100-c"]
        );
        assert_eq!(
            list.environment.unwrap(),
            ["02-a.bash".to_owned(), "10-b.bash".to_owned()]
        );
        let dots = NameFilter::new(Some(r"^[0-9a-z.-]+$")).unwrap();
        let list = list_phase(Path::new("/"), &d, &dots).unwrap();
        assert_eq!(
            list.hooks,
            ["abc", "9-a", "10-b", "50-dot.sh", "70-link", "100-c"]
        );
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("image");
        let d = image.join("tmp/in_target.d/install.d");
        fs::create_dir_all(&d).unwrap();
        file(&image.join("usr/bin/in-image"), 0o755);
        symlink("usr/bin", image.join("bin")).unwrap();
        symlink("/bin/in-image", d.join("10-present")).unwrap();
        symlink("/bin/not-in-image", d.join("20-absent")).unwrap();
        let list = list_phase(
            &image,
            Path::new("/tmp/in_target.d/install.d"),
            &NameFilter::default(),
        )
        .unwrap();
        assert_eq!(list.hooks, ["10-present"]);
        assert_eq!(list.environment, None);
    }

    #[test]
    fn a_missing_phase_runs_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let list = list_phase(
            Path::new("/"),
            &tmp.path().join("hooks/finalise.d"),
            &NameFilter::default(),
        )
        .unwrap();
        assert!(list.hooks.is_empty());
    }
}
