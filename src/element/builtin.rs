//! The built-in element library, embedded at compile time by `build.rs`.
//!
//! Entries keep their file mode and symlink targets, because both decide whether dib runs a
//! hook. This module only answers lookups; `discover.rs` turns them into elements.

/// What an embedded path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    /// Only built when the library holds a symlink.
    #[allow(dead_code)]
    Symlink(&'static str),
}

/// One embedded file, directory or symlink, relative to `elements/`.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) path: &'static str,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) data: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtin_elements.rs"));

/// The entry at `path` (relative to `elements/`), if any. `ENTRIES` is sorted by path.
pub(crate) fn get(path: &str) -> Option<&'static Entry> {
    ENTRIES
        .binary_search_by(|e| e.path.cmp(path))
        .ok()
        .map(|i| &ENTRIES[i])
}

/// Direct children of the directory `dir` (relative to `elements/`; `""` is the top).
pub(crate) fn children(dir: &str) -> impl Iterator<Item = (&'static str, &'static Entry)> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let start = ENTRIES.partition_point(|e| e.path < prefix.as_str());
    let len = prefix.len();
    let prefix2 = prefix.clone();
    ENTRIES[start..]
        .iter()
        .take_while(move |e| e.path.starts_with(&prefix2))
        .filter_map(move |e| {
            let rest = &e.path[len..];
            (!rest.is_empty() && !rest.contains('/')).then_some((rest, e))
        })
}

/// Names of the top-level entries that are directories: the built-in elements.
pub(crate) fn element_names() -> impl Iterator<Item = &'static str> {
    children("")
        .filter(|(_, e)| e.kind == Kind::Dir)
        .map(|(n, _)| n)
}
