//! Embeds the built-in element library (`elements/`) into the binary.
//!
//! `include_dir`-style crates drop file modes and symlinks, and both matter to dib: a hook
//! without its exec bit never runs, and a symlinked hook may dangle. So this script walks
//! `elements/` itself and writes a table of `(path, kind, mode, bytes)` for `src/element/builtin.rs`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn walk(root: &Path, rel: &Path, out: &mut Vec<(String, String, u32, String)>) {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name())
        .collect();
    names.sort();
    for name in names {
        let rel_path: PathBuf = rel.join(&name);
        let full = root.join(&rel_path);
        let meta = fs::symlink_metadata(&full).expect("metadata");
        let key = rel_path
            .to_str()
            .expect("element paths are UTF-8")
            .to_owned();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).expect("readlink");
            let target = target.to_str().expect("UTF-8 symlink target");
            out.push((
                key,
                format!("Kind::Symlink({target:?})"),
                mode,
                "b\"\"".into(),
            ));
        } else if meta.is_dir() {
            out.push((key, "Kind::Dir".into(), mode, "b\"\"".into()));
            walk(root, &rel_path, out);
        } else {
            let abs = full.canonicalize().expect("canonical path");
            let data = format!("include_bytes!({:?})", abs.to_str().unwrap());
            out.push((key, "Kind::File".into(), mode, data));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("elements");
    println!("cargo:rerun-if-changed=elements");
    let mut entries = Vec::new();
    if root.is_dir() {
        walk(&root, Path::new(""), &mut entries);
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut src = String::from("pub(crate) static ENTRIES: &[Entry] = &[\n");
    for (path, kind, mode, data) in &entries {
        writeln!(
            src,
            "    Entry {{ path: {path:?}, kind: {kind}, mode: 0o{mode:o}, data: {data} }},"
        )
        .unwrap();
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_elements.rs");
    fs::write(out, src).unwrap();
    static_libgcc();
}

/// Links libgcc's unwinder statically, as `gcc -static-libgcc` does, on glibc targets.
///
/// Rust's std asks for `-lgcc_s`, so every run loads libgcc_s.so.1, whose constructor
/// (`__cpu_indicator_init`) executes a dozen CPUID instructions. In a virtual machine each
/// one traps to the hypervisor: measured on this project's 2-core VM, that was 12% of a
/// `dibkit order` run's CPU time, for a library dibkit uses only to unwind a panic. A
/// linker script named `libgcc_s.so`, found first on the search path, answers `-lgcc_s`
/// with the static `libgcc_eh.a` instead; glibc itself stays dynamic, and the binary a
/// position-independent executable.
fn static_libgcc() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
    {
        return;
    }
    let dir = PathBuf::from(var("OUT_DIR")).join("static-libgcc");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").unwrap();
    println!("cargo:rustc-link-search=native={}", dir.display());
}
