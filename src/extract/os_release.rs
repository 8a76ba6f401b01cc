//! The image's os-release: found inside the image's tree (its symbolic links resolved in the
//! tree, never on the host), and read as os-release(5) says: `KEY=VALUE` lines, values
//! optionally quoted with shell quoting, comments and blank lines ignored.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The fields of an os-release file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Reads os-release text; lines that are not assignments are skipped, as systemd does.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            fields.insert(key.to_owned(), unquote(value));
        }
        Self { fields }
    }

    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `PRETTY_NAME`, else `NAME VERSION`, else `ID`, else `Linux` (os-release(5)'s default).
    #[must_use]
    pub fn describe(&self) -> String {
        if let Some(p) = self.get("PRETTY_NAME") {
            return p.to_owned();
        }
        match (self.get("NAME"), self.get("VERSION")) {
            (Some(n), Some(v)) => format!("{n} {v}"),
            (Some(n), None) => n.to_owned(),
            _ => self.get("ID").unwrap_or("Linux").to_owned(),
        }
    }
}

/// A value with shell quoting undone: double quotes (with `\"`, `\\`, `\$`, `` \` ``
/// escapes), single quotes (literal), or bare with backslash escapes.
fn unquote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            out.extend(chars.next());
                        }
                        _ => out.push(c),
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

/// Where the tree at `root` keeps its os-release: `/etc/os-release`, else
/// `/usr/lib/os-release` (os-release(5)), each followed through symbolic links inside
/// `root`. `None` when neither is a file.
#[must_use]
pub fn find(root: &Path) -> Option<PathBuf> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| resolve_in(root, Path::new(p)))
}

/// `path` (relative to `root`) with every symbolic link on the way resolved as the tree
/// would resolve it were `root` its `/`: an absolute target starts again at `root`, and
/// `..` never climbs above it. `None` when it does not lead to a regular file (or loops).
#[must_use]
pub fn resolve_in(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<Step> = Vec::new();
    push_steps(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(step) = pending.pop() {
        match step {
            Step::Name(name) => {
                let candidate = resolved.join(&name);
                let full = root.join(&candidate);
                let meta = std::fs::symlink_metadata(&full).ok()?;
                if meta.file_type().is_symlink() {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let target = std::fs::read_link(&full).ok()?;
                    push_steps(&mut pending, &target);
                } else {
                    resolved = candidate;
                }
            }
            Step::Parent => {
                resolved.pop();
            }
            Step::Root => resolved = PathBuf::new(),
        }
    }
    let full = root.join(resolved);
    full.is_file().then_some(full)
}

/// One step of a path being resolved.
enum Step {
    Name(OsString),
    Parent,
    Root,
}

/// Pushes `path`'s steps so that the first one is popped first.
fn push_steps(stack: &mut Vec<Step>, path: &Path) {
    let steps: Vec<Step> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::ParentDir => Some(Step::Parent),
            Component::RootDir => Some(Step::Root),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(steps.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn debian_os_release() {
        let os = OsRelease::parse(DEBIAN);
        assert_eq!(os.get("ID"), Some("debian"));
        assert_eq!(os.get("VERSION_CODENAME"), Some("bookworm"));
        assert_eq!(os.get("VERSION_ID"), Some("12"));
        assert_eq!(os.describe(), "Debian GNU/Linux 12 (bookworm)");
    }

    #[test]
    fn quoting_comments_and_junk() {
        let os = OsRelease::parse(
            "# a comment\n\nNAME='Red Hat Enterprise Linux'\nVERSION_ID=\"9.4\"\n  ID=rhel  \n\
             ID_LIKE=\"fedora\"\nVARIANT=\"a \\\"quoted\\\" \\$word\"\nBARE=one\\ two\n\
             not an assignment\n=novalue\nBAD-KEY=x\nEMPTY=\n",
        );
        assert_eq!(os.get("NAME"), Some("Red Hat Enterprise Linux"));
        assert_eq!(os.get("VERSION_ID"), Some("9.4"));
        assert_eq!(os.get("ID"), Some("rhel"));
        assert_eq!(os.get("VARIANT"), Some("a \"quoted\" $word"));
        assert_eq!(os.get("BARE"), Some("one two"));
        assert_eq!(os.get("EMPTY"), None);
        assert_eq!(os.fields.len(), 7, "{os:?}");
        assert_eq!(os.describe(), "Red Hat Enterprise Linux");
        assert_eq!(OsRelease::parse("").describe(), "Linux");
        assert_eq!(
            OsRelease::parse("NAME=Fedora\nVERSION=\"40 (Cloud)\"\n").describe(),
            "Fedora 40 (Cloud)"
        );
    }

    /// /etc/os-release is a link into /usr/lib, relative on Debian, absolute elsewhere; an
    /// absolute link must resolve inside the image, never on the host.
    #[test]
    fn links_resolve_inside_the_tree() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), DEBIAN).unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        assert_eq!(find(root).unwrap(), root.join("usr/lib/os-release"));

        std::fs::remove_file(root.join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/os-release", root.join("etc/os-release")).unwrap();
        assert_eq!(find(root).unwrap(), root.join("usr/lib/os-release"));

        // `..` stops at the tree's root; a link out of the tree does not reach the host.
        std::fs::remove_file(root.join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../usr/lib/os-release",
            root.join("etc/os-release"),
        )
        .unwrap();
        assert_eq!(find(root).unwrap(), root.join("usr/lib/os-release"));

        std::fs::remove_file(root.join("usr/lib/os-release")).unwrap();
        assert_eq!(find(root), None, "the host's /usr/lib/os-release leaked in");

        // A loop is not followed forever.
        std::os::unix::fs::symlink("os-release", root.join("usr/lib/os-release")).unwrap();
        assert_eq!(find(root), None);
    }
}
