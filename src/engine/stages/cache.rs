//! The build cache: the image tree at points between the chroot phases, and the disk image
//! made from the last of them, kept in the cache store (`$DIB_IMAGE_CACHE/dibkit-build`) and
//! reused when nothing the phases up to that point could see has changed.
//!
//! The points ([`Point`]): after pre-install.d; in install.d, before the first hook of an
//! element of the user's (the built-in elements' hooks before it hold the slow package
//! installs; the user's own scripts, edited between builds, come after); after install.d
//! (and `-p`); after post-install.d; after post-root.d; and the disk image made from that
//! tree, before anything mounted it. A tree is kept only when the hooks since the last
//! point the build reached took longer than packing it would ([`KEEP_MIN_SECONDS`]):
//! rerunning a second of hooks is cheaper than unpacking a tree kept for them.
//!
//! root.d and extra-data.d always run: they read the host and the mirror (the base tree, the
//! apt lists, the files extra-data.d copies in), which no key of their inputs could cover.
//! What they leave is the key's base: a digest of the image tree (contents, modes, owners,
//! link targets; the apt lists, so the mirror's index state, are in it) and of the hooks
//! tree (every element file, environment.d, what extra-data.d wrote there) less the phase
//! directories that have not run yet, and of the elements' own directories likewise; with
//! the variables the chroot's hooks see, the build's settings and the dibkit binary. Each
//! cached phase adds its own hooks (`-p` adds its packages; post-root.d, which runs on the
//! host, adds the host environment). The first phase whose key has no entry, and every
//! phase after it, runs.
//!
//! Reusing an entry empties the tree (never across a mount point) and unpacks the entry;
//! mounts that a skipped phase released are released, and an entry that needs a mount this
//! build does not have is not used. post-root.d runs on the host: its tree is cached only
//! when it changed nothing outside the tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::{Held, Kind, Store, tree};
use crate::element::model::{Phase, Root};
use crate::engine::calls::CallRecord;
use crate::engine::cmd;
use crate::engine::context::{Build, ScriptRecord};
use crate::engine::sys::lock::Mode;
use crate::error::Failure;

/// Where the build cache keys the build, in the build's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Point {
    /// After pre-install.d.
    PreInstall,
    /// In install.d, before the first hook of an element of the user's.
    InstallHead,
    /// After install.d and `-p`.
    Install,
    /// After post-install.d.
    PostInstall,
    /// After post-root.d.
    PostRoot,
    /// The disk image made from the tree after post-root.d, not mounted yet.
    Disk,
}

impl Point {
    /// The points whose trees the cache may keep, in order ([`Point::Disk`] is kept by the
    /// disk step itself).
    pub const TREES: [Point; 3] = [Point::InstallHead, Point::Install, Point::PostRoot];

    /// The point, in words.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Point::PreInstall => "pre-install.d",
            Point::InstallHead => "install.d's hooks before the user's",
            Point::Install => "install.d",
            Point::PostInstall => "post-install.d",
            Point::PostRoot => "post-root.d",
            Point::Disk => "the disk image made from the tree after post-root.d",
        }
    }

    /// The point that ends `phase`, for the phases the cache can skip.
    #[must_use]
    pub fn after(phase: Phase) -> Option<Point> {
        match phase {
            Phase::PreInstallD => Some(Point::PreInstall),
            Phase::InstallD => Some(Point::Install),
            Phase::PostInstallD => Some(Point::PostInstall),
            Phase::PostRootD => Some(Point::PostRoot),
            _ => None,
        }
    }
}

/// A tree is kept when the hooks since the last point the build reached ran at least this
/// long (unless `DIBKIT_CACHE_KEEP_SECONDS` says otherwise): packing (and later unpacking)
/// a tree takes a few seconds.
pub const KEEP_MIN_SECONDS: f64 = 3.0;

/// apt's binary caches: derived from the lists (which are in the digest), with their
/// times, so different in every build; apt rebuilds them when they do not match the lists.
/// The debootstrap tarballs leave them out too.
const APT_BINARY_CACHES: [&str; 2] = [
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
];

/// The store's directory below the image cache.
pub const DIR: &str = "dibkit-build";

const TREE: &str = "tree.tar.zst";
const DISK: &str = "disk.raw";
const META: &str = "meta.json";

/// The build cache's state in a build.
#[derive(Debug, Default)]
pub struct State {
    pub store: Option<Store>,
    /// Each point's key.
    pub keys: Vec<(Point, String)>,
    /// The last point whose tree (or disk image) came from the cache.
    pub reused_through: Option<Point>,
    /// The install.d hook [`Point::InstallHead`] comes before: the first of an element of
    /// the user's (`None`: install.d has none, and the point is right after pre-install.d).
    pub split: Option<String>,
    /// The install.d hook just before the split (for the log).
    head_last: Option<String>,
    /// The cached disk image to attach instead of making one, held for reading.
    pub disk: Option<(PathBuf, Held)>,
    /// Its root directory's owner, group and mode.
    pub disk_root: Option<(u32, u32, u32)>,
    /// post-root.d (which runs on the host) changed nothing outside the tree: only then is
    /// what it left kept, as a tree or a disk image.
    post_root_clean: bool,
    /// This build's inputs are its image's last build's, or it is the image's first: the
    /// disk image made is kept.
    keep_disk: bool,
    /// When the build last reached a point (the lookup, a reused or a kept tree).
    mark: Option<Instant>,
    /// What lies outside the tree (hooks tree, image directory) when the keys were made.
    outside: String,
    /// The disk image's entry being synced and renamed into place while the build goes on.
    pending: Option<std::thread::JoinHandle<Result<Vec<crate::cache::Evicted>>>>,
    /// The disk image this image's last build kept, being copied while root.d runs.
    prefetch: Option<Prefetch>,
    /// [`State::disk`] is that copy, in the image directory already.
    pub disk_copied: bool,
}

/// A copy of a kept disk image made while root.d and extra-data.d run, in case the lookup
/// finds that image's key again; dropped otherwise.
#[derive(Debug)]
struct Prefetch {
    key: String,
    held: Held,
    dest: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    copy: std::thread::JoinHandle<Result<u64>>,
}

impl Prefetch {
    /// Stops the copy (if it still runs) and removes it.
    fn drop_copy(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.copy.join();
        fs::remove_file(&self.dest).ok();
    }
}

/// Where the prefetched disk image is copied, in the image directory (left out of what
/// [`outside`] digests).
const PREFETCH: &str = "dibkit-prefetch.raw";

impl State {
    /// Whether `phase` is skipped: its tree came from the cache.
    #[must_use]
    pub fn covers(&self, phase: Phase) -> bool {
        Point::after(phase).is_some_and(|p| self.covers_point(p))
    }

    /// Whether the build up to `point` is skipped.
    #[must_use]
    pub fn covers_point(&self, point: Point) -> bool {
        self.reused_through.is_some_and(|r| point <= r)
    }

    fn key(&self, point: Point) -> Option<&str> {
        self.keys
            .iter()
            .find(|(p, _)| *p == point)
            .map(|(_, k)| k.as_str())
    }

    /// The point, in words.
    #[must_use]
    pub fn label(&self, point: Point) -> String {
        match point {
            Point::InstallHead => match (&self.split, &self.head_last) {
                (Some(split), Some(last)) => format!("install.d up to {last} (before {split})"),
                _ => "pre-install.d (no install.d hook runs before the user's)".to_owned(),
            },
            other => other.name().to_owned(),
        }
    }

    /// Which install.d hooks run in `part` of it, of the phase's `hooks` in order (paths
    /// or names): the head is those before the split, the tail the rest.
    #[must_use]
    pub fn install_part<'h>(&self, hooks: &'h [String], head: bool) -> &'h [String] {
        let at = self
            .split
            .as_ref()
            .and_then(|split| {
                hooks
                    .iter()
                    .position(|h| h.rsplit('/').next() == Some(split.as_str()))
            })
            .unwrap_or(0);
        if head { &hooks[..at] } else { &hooks[at..] }
    }
}

/// What an entry holds besides the tree.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    point: Point,
    /// The records and calls of the keyed phases that made the tree.
    records: Vec<ScriptRecord>,
    calls: Vec<CallRecord>,
    /// Mount points below the tree when it was packed (their contents are not in it).
    mounts: Vec<PathBuf>,
    /// A disk image's root directory's owner, group and mode (the tree's root's, which its
    /// build set once the image was mounted).
    #[serde(default)]
    root: Option<(u32, u32, u32)>,
}

fn part(h: &mut Sha256, label: &str, value: &[u8]) {
    h.update(label.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
}

fn finish(h: Sha256) -> String {
    tree::hex(&h.finalize())
}

/// The variables, with this build's directory written as `@BUILD@` (it differs each build)
/// and without the shell's own bookkeeping (`_`, `SHLVL`, `OLDPWD`).
fn env_text(vars: &[(String, String)], build: &Path) -> String {
    let build = build.display().to_string();
    let mut out = String::new();
    for (k, v) in vars {
        if matches!(k.as_str(), "_" | "SHLVL" | "OLDPWD") {
            continue;
        }
        out.push_str(&format!("{k}={}\0", v.replace(&build, "@BUILD@")));
    }
    out
}

/// What a build records of its inputs for the next build of the same image, to say what
/// changed: the digests of the key's parts, and of each exported variable's value (never
/// the value itself: a variable may hold a password).
#[derive(Serialize, Deserialize, Default)]
struct LastBuild {
    parts: Vec<(String, String)>,
    /// HMACs of the variables' values ([`var_digests`]); empty in an older record (whose
    /// plain digests were under another name) or when the key could not be read.
    #[serde(default)]
    macs: BTreeMap<String, String>,
}

/// `side NAME` (side: chroot or host) to the digest of the variable's value, as the key
/// sees it (the build directory written as `@BUILD@`): an HMAC under the cache's own secret
/// `key` ([`record_key`]), so a short password's digest cannot be guessed by trying values.
fn var_digests(
    side: &str,
    vars: &[(String, String)],
    build: &Path,
    key: &[u8],
) -> BTreeMap<String, String> {
    vars.iter()
        .filter_map(|(k, v)| {
            let text = env_text(&[(k.clone(), v.clone())], build);
            if text.is_empty() {
                return None;
            }
            Some((
                format!("{side} {k}"),
                tree::hex(&hmac_sha256(key, text.as_bytes())),
            ))
        })
        .collect()
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The secret key of the last-build records in `dir` (the cache's `.last`, made private:
/// mode 0700): its `key` file, 32 random bytes at mode 0600, made on first use (linked into
/// place, so two builds starting together agree on one). None when it cannot be read or
/// made: the records then hold no variable digests.
fn record_key(dir: &Path) -> Option<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).ok()?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ok()?;
    let file = dir.join("key");
    let existing = fs::read(&file).ok();
    if let Some(key) = existing.as_ref().filter(|k| k.len() == 32) {
        return Some(key.clone());
    }
    let key = crate::engine::sys::random::bytes::<32>()?;
    // tempfile makes its files with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).ok()?;
    tmp.write_all(&key).ok()?;
    // A short or damaged key is replaced (renamed over); a missing one is linked into place,
    // which keeps one another build linked first. Either way the key used is the one on
    // disk afterwards.
    if existing.is_some() {
        tmp.persist(&file).ok()?;
    } else {
        fs::hard_link(tmp.path(), &file).ok();
    }
    let on_disk = fs::read(&file).ok()?;
    (on_disk.len() == 32).then_some(on_disk)
}

/// Writes `file` (in `dir`) whole or not at all, readable by its owner only; a failure is
/// ignored (the record only serves the next build's log).
fn write_private(dir: &Path, file: &Path, contents: &[u8]) {
    use std::io::Write;
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
        && tmp.write_all(contents).is_ok()
    {
        tmp.persist(file).ok();
    }
}

/// The variables whose values differ between two builds' records, as
/// `host DIB_X (changed), chroot DIB_Y (new), ...`.
fn changed_vars(last: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> String {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in now {
        match last.get(k) {
            Some(old) if old == v => {}
            Some(_) => out.push(format!("{k} (changed)")),
            None => out.push(format!("{k} (new)")),
        }
    }
    for k in last.keys().filter(|k| !now.contains_key(*k)) {
        out.push(format!("{k} (gone)"));
    }
    if out.is_empty() {
        "none by name (their order changed)".to_owned()
    } else {
        out.join(", ")
    }
}

/// The phase directories that have not run when `phase`'s tree is keyed.
fn later_dirs(phase: Option<Phase>) -> Vec<&'static str> {
    Phase::ALL
        .iter()
        .filter(|p| **p > Phase::ExtraDataD && phase.is_none_or(|ph| **p > ph))
        .map(|p| p.dir())
        .collect()
}

/// The digest of the running dibkit: another binary may build differently.
fn engine_digest() -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    if let Ok(bytes) = std::env::current_exe().and_then(fs::read) {
        h.update(bytes);
    }
    finish(h)
}

/// After extra-data.d: the keys, then the tree of the latest keyed phase with an entry.
pub fn lookup(b: &mut Build<'_>) -> Result<(), Failure> {
    let paths = b.paths().clone();
    let store = open_store(b)?;
    for p in store.sweep()? {
        b.log_line(&format!(
            "build cache: removed {} (left by a build that was killed)",
            p.display()
        ));
    }
    b.step("build cache: hashing the tree root.d and extra-data.d left");
    let (tree_digest, _) =
        tree::digest_normalized(&paths.mnt, &APT_BINARY_CACHES, Some(&paths.build))?;
    let later = later_dirs(None);
    let (hooks_digest, _) = tree::digest_normalized(&paths.hooks, &later, Some(&paths.build))?;
    let mut elements = Sha256::new();
    for e in &b.plan.elements {
        let Some(el) = b.lib.get(&e.name) else {
            continue;
        };
        let dir = match &el.root {
            Root::Disk(p) => p.clone(),
            Root::Builtin(name) => paths.builtin_dir.join(name),
        };
        let digest = tree::digest_normalized(&dir, &later, Some(&paths.build))?.0;
        part(&mut elements, &e.name, digest.as_bytes());
    }
    let elements = finish(elements);
    let settings = format!(
        "{:?}",
        (
            &b.opts.elements,
            &b.opts.arch,
            b.opts.types.iter().map(|t| t.name()).collect::<Vec<_>>(),
            &b.opts.offline,
            &b.opts.default_install_type,
            b.opts.run_parts.as_str(),
            b.opts.debug_trace,
        )
    );
    let digest_of = |text: &str| {
        let mut h = Sha256::new();
        h.update(text.as_bytes());
        finish(h)
    };
    // What each key is made of, by name: the log says which of them changed since this
    // image's last build.
    let mut parts: Vec<(String, String)> = vec![
        ("dibkit".into(), engine_digest()),
        ("settings".into(), digest_of(&settings)),
        ("tree root.d and extra-data.d left".into(), tree_digest),
        ("hooks tree (less later phases)".into(), hooks_digest),
        ("element directories (less later phases)".into(), elements),
        (
            "chroot environment".into(),
            digest_of(&env_text(&b.env_inside, &paths.build)),
        ),
    ];
    let mut h = Sha256::new();
    part(&mut h, "format", b"dibkit build cache 2");
    for (label, digest) in &parts {
        part(&mut h, label, digest.as_bytes());
    }
    let mut key = finish(h);
    let (split, head_last) = install_split(b);
    b.cache.split.clone_from(&split);
    b.cache.head_last = head_last;
    let install_hooks = crate::order::tree::list_phase(
        Path::new("/"),
        &paths.hooks.join(Phase::InstallD.dir()),
        &b.opts.run_parts,
    )
    .context("listing install.d in the hooks tree")?
    .hooks;
    // Digests of each variable's value, keyed by a secret of the cache's (a value may be a
    // password), for the log to name what changed since the last build.
    let last_dir = store.dir().join(".last");
    let mut vars = BTreeMap::new();
    if let Some(key) = record_key(&last_dir) {
        vars = var_digests("chroot", &b.env_inside, &paths.build, &key);
        vars.extend(var_digests("host", &b.env_outside, &paths.build, &key));
    }
    let mut keys = Vec::new();
    for point in [
        Point::PreInstall,
        Point::InstallHead,
        Point::Install,
        Point::PostInstall,
        Point::PostRoot,
        Point::Disk,
    ] {
        let hooks_of = |phase: Phase| {
            tree::digest_normalized(&paths.hooks.join(phase.dir()), &[], Some(&paths.build))
                .map(|(d, _)| (format!("{} hooks", phase.dir()), d))
        };
        let own = match point {
            Point::PreInstall => vec![hooks_of(Phase::PreInstallD)?],
            Point::InstallHead => {
                let head = b.cache.install_part(&install_hooks, true);
                let mut h = Sha256::new();
                for name in head {
                    let file = paths.hooks.join(Phase::InstallD.dir()).join(name);
                    let bytes =
                        fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                    let mode = fs::metadata(&file).map_or(0, |m| {
                        std::os::unix::fs::PermissionsExt::mode(&m.permissions())
                    });
                    part(&mut h, name, &bytes);
                    part(&mut h, "mode", &mode.to_le_bytes());
                }
                vec![("install.d hooks before the user's".to_owned(), finish(h))]
            }
            Point::Install => vec![
                hooks_of(Phase::InstallD)?,
                ("-p packages".into(), digest_of(&b.opts.packages.join("\0"))),
            ],
            Point::PostInstall => vec![hooks_of(Phase::PostInstallD)?],
            Point::PostRoot => vec![
                hooks_of(Phase::PostRootD)?,
                (
                    "host environment".into(),
                    digest_of(&env_text(&b.env_outside, &paths.build)),
                ),
            ],
            Point::Disk => match disk_settings(b) {
                Some(settings) => vec![("disk layout and size".into(), digest_of(&settings))],
                None => break,
            },
        };
        let mut h = Sha256::new();
        part(&mut h, "previous", key.as_bytes());
        for (label, digest) in &own {
            part(&mut h, label, digest.as_bytes());
        }
        key = finish(h);
        b.log_line(&format!(
            "build cache: key after {} {key}",
            b.cache.label(point)
        ));
        keys.push((point, key.clone()));
        parts.extend(own);
    }
    for (label, digest) in &parts {
        b.log_line(&format!("build cache: input {label}: {digest}"));
    }
    // This image's previous build's inputs, to say what changed.
    let lineage = lineage(b);
    let last_file = last_dir.join(format!("{lineage}.json"));
    // The disk image is worth keeping for a build that repeats the last one's inputs, or
    // this image's first: one after a change (an edit loop) makes a new tree every time.
    b.cache.keep_disk = true;
    if let Ok(text) = fs::read(&last_file) {
        let last: LastBuild = serde_json::from_slice(&text).unwrap_or_default();
        let changed: Vec<&str> = parts
            .iter()
            .filter(|p| !last.parts.contains(p))
            .map(|(l, _)| l.as_str())
            .collect();
        b.cache.keep_disk = changed.is_empty();
        b.step(&format!(
            "build cache: changed since this image's last build, of what the cached phases see: {}",
            if changed.is_empty() {
                "nothing".to_owned()
            } else {
                changed.join(", ")
            }
        ));
        if changed.iter().any(|c| c.ends_with("environment"))
            && !last.macs.is_empty()
            && !vars.is_empty()
        {
            b.log_line(&format!(
                "build cache: variables changed since this image's last build: {}",
                changed_vars(&last.macs, &vars)
            ));
        }
    }
    fs::create_dir_all(&last_dir).ok();
    if let Ok(text) = serde_json::to_vec(&LastBuild { parts, macs: vars }) {
        write_private(&last_dir, &last_file, &text);
    }
    let disk_file = last_dir.join(format!("{lineage}.disk"));
    match keys.iter().find(|(p, _)| *p == Point::Disk) {
        Some((_, key)) => fs::write(&disk_file, key).ok(),
        None => fs::remove_file(&disk_file).ok(),
    };
    b.cache.outside = outside(&paths.hooks, &paths.image_dir)?;
    b.cache.keys = keys;
    b.cache.store = Some(store);
    restore_latest(b)
}

/// What lies outside the image tree that a host phase could write: the hooks tree and the
/// image directory.
fn outside(hooks: &Path, image_dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    part(&mut h, "hooks", tree::digest(hooks, &[])?.0.as_bytes());
    part(
        &mut h,
        "image",
        tree::digest(image_dir, &[PREFETCH])?.0.as_bytes(),
    );
    Ok(finish(h))
}

/// The image a build makes, for the records of its last build: its elements and output.
fn lineage(b: &Build<'_>) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", (&b.opts.elements, &b.opts.output)).as_bytes());
    finish(h)
}

fn open_store(b: &Build<'_>) -> Result<Store> {
    Store::open(
        &b.opts.image_cache.join(DIR),
        Kind::Dirs,
        gib_bytes(b.opts.cache_max_gib),
    )
}

/// Before root.d: starts copying the disk image this image's last build kept into the
/// image directory, beside root.d and extra-data.d (which mostly use one core), for the
/// lookup to attach if its key comes back; a layout the cache keeps no disk image of, or no
/// such image, does nothing.
pub fn prefetch(b: &mut Build<'_>) -> Result<(), Failure> {
    if disk_settings(b).is_none() {
        return Ok(());
    }
    let store = open_store(b)?;
    let last = store
        .dir()
        .join(".last")
        .join(format!("{}.disk", lineage(b)));
    let Ok(key) = fs::read_to_string(&last) else {
        return Ok(());
    };
    let Some((entry, held)) = store.get(key.trim())? else {
        return Ok(());
    };
    let paths = b.paths().clone();
    fs::create_dir_all(&paths.image_dir).context("creating the image directory")?;
    let dest = paths.image_dir.join(PREFETCH);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let copy = {
        let (src, dest, stop) = (entry.join(DISK), dest.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            crate::engine::sys::proc::background_thread();
            crate::engine::sys::fs::copy_sparse_until(&src, &dest, &stop)
        })
    };
    b.log_line(&format!(
        "build cache: copying the disk image this image's last build kept ({}) while root.d runs, in case nothing changed",
        key.trim()
    ));
    b.cache.prefetch = Some(Prefetch {
        key: key.trim().to_owned(),
        held,
        dest,
        stop,
        copy,
    });
    Ok(())
}

/// `gib` GiB in bytes (the stores' limits).
pub(crate) fn gib_bytes(gib: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (gib.max(0.0) * 1024.0 * 1024.0 * 1024.0) as u64;
    bytes
}

/// The first install.d hook of an element of the user's (not one of the library dibkit
/// brings, embedded or written out with `--builtins DIR`), and the hook before it.
fn install_split(b: &Build<'_>) -> (Option<String>, Option<String>) {
    let builtins = match &b.opts.library {
        crate::engine::options::Library::Dir(d) => fs::canonicalize(d).ok(),
        _ => None,
    };
    let Some(phase) = b.plan.phases.iter().find(|p| p.phase == Phase::InstallD) else {
        return (None, None);
    };
    let users = |element: &str| {
        b.lib.get(element).is_some_and(|el| match &el.root {
            Root::Disk(p) => builtins.as_ref().is_none_or(|d| !p.starts_with(d)),
            Root::Builtin(_) => false,
        })
    };
    let Some(at) = phase.scripts.iter().position(|s| users(&s.element)) else {
        return (None, None);
    };
    let before = at.checked_sub(1).map(|i| phase.scripts[i].name.clone());
    (Some(phase.scripts[at].name.clone()), before)
}

/// What the disk image depends on besides the tree, for a layout the cache can keep the
/// made image of ([`disk::reattachable`], and no block-device.d, whose hooks may do
/// anything to it); `None` otherwise.
fn disk_settings(b: &Build<'_>) -> Option<String> {
    let d = b.opts.disk.as_ref()?;
    if !b.opts.wants_disk()
        || !crate::engine::disk::reattachable(&d.config)
        || b.paths().hooks.join(Phase::BlockDeviceD.dir()).exists()
    {
        return None;
    }
    let efi = b
        .plan
        .elements
        .iter()
        .any(|e| e.name.contains("block-device-efi"));
    Some(format!("{d:?} {efi}"))
}

fn read_meta(entry: &Path) -> Result<Meta> {
    let file = entry.join(META);
    serde_json::from_slice(&fs::read(&file).with_context(|| format!("reading {}", file.display()))?)
        .with_context(|| format!("reading {}", file.display()))
}

fn restore_latest(b: &mut Build<'_>) -> Result<(), Failure> {
    let Some(store) = b.cache.store.clone() else {
        return Ok(());
    };
    b.cache.mark = Some(Instant::now());
    let mut prefetched = b.cache.prefetch.take();
    if b.cache.key(Point::Disk).is_none() {
        if let Some(p) = prefetched.take() {
            p.drop_copy();
        }
    }
    if let Some(key) = b.cache.key(Point::Disk).map(str::to_owned) {
        let (matching, other) = match prefetched {
            Some(p) if p.key == key => (Some(p), None),
            other => (None, other),
        };
        if let Some(p) = matching {
            let entry = store.path(&key);
            match p.copy.join() {
                Ok(Ok(_)) => {
                    let meta = read_meta(&entry).inspect_err(|_| {
                        fs::remove_file(&p.dest).ok();
                    })?;
                    b.step(&format!(
                        "build cache: reusing the disk image made from the tree after post-root.d (entry {key}, copied while root.d ran): nothing root.d to post-root.d could see changed, nor the layout"
                    ));
                    b.cache.disk_root = meta.root;
                    reuse_records(b, meta);
                    b.cache.disk = Some((p.dest, p.held));
                    b.cache.disk_copied = true;
                    b.cache.reused_through = Some(Point::Disk);
                    return Ok(());
                }
                Ok(Err(e)) => b.log_line(&format!(
                    "build cache: copying the kept disk image failed ({e:#}); copying it again"
                )),
                Err(_) => b.log_line("build cache: copying the kept disk image failed"),
            }
            fs::remove_file(&p.dest).ok();
        } else if let Some(p) = other {
            b.log_line(
                "build cache: the disk image copied while root.d ran is not this build's; dropped",
            );
            p.drop_copy();
        }
        if let Some((entry, reading)) = store.get(&key)? {
            let meta = read_meta(&entry)?;
            b.step(&format!(
                "build cache: reusing the disk image made from the tree after post-root.d (entry {key}): nothing root.d to post-root.d could see changed, nor the layout"
            ));
            b.cache.disk_root = meta.root;
            reuse_records(b, meta);
            b.cache.disk = Some((entry.join(DISK), reading));
            b.cache.reused_through = Some(Point::Disk);
            return Ok(());
        }
        b.log_line(&format!("build cache: no disk image for its key {key}"));
    }
    let mnt = b.paths().mnt.clone();
    for point in Point::TREES.iter().rev() {
        let key = b.cache.key(*point).unwrap_or_default().to_owned();
        let label = b.cache.label(*point);
        let Some((entry, _reading)) = store.get(&key)? else {
            b.log_line(&format!(
                "build cache: no tree after {label} for its key {key}"
            ));
            continue;
        };
        let meta = read_meta(&entry)?;
        let now = tree::mount_points(&mnt);
        if let Some(missing) = meta.mounts.iter().find(|m| !now.contains(m)) {
            b.log_line(&format!(
                "build cache: not using the tree after {label}: it was made with /{} mounted, which this build has not",
                missing.display()
            ));
            continue;
        }
        for extra in now.iter().rev().filter(|m| !meta.mounts.contains(m)) {
            let target = mnt.join(extra);
            if b.ledger
                .owns_mount(crate::engine::ledger::Owner::Chroot, &target)
            {
                return Err(anyhow!(
                    "the cached tree after {label} lacks the chroot mount {}",
                    target.display()
                )
                .into());
            }
            b.log_line(&format!(
                "build cache: unmounting /{} (a phase the cache replaces released it)",
                extra.display()
            ));
            crate::engine::sys::mount::unmount(&target)?;
        }
        b.step(&format!(
            "build cache: reusing the tree after {label} (entry {key}): nothing root.d to there could see changed"
        ));
        tree::clear(&mnt)?;
        let mut tar = Command::new("tar");
        tar.arg("-C")
            .arg(&mnt)
            .args([
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--use-compress-program",
                "zstd -q -d -T0",
                "-xpf",
            ])
            .arg(entry.join(TREE));
        cmd::run(&mut tar)?;
        // The chroot's resolv.conf is the host's while hooks run (the image's waits as
        // resolv.conf.ORIG, restored on leaving); the host's of now, as entering wrote it.
        let resolv = mnt.join("etc/resolv.conf");
        if fs::symlink_metadata(&resolv).is_ok_and(|m| m.is_file()) {
            fs::write(&resolv, fs::read("/etc/resolv.conf").unwrap_or_default())
                .context("writing resolv.conf into the image")?;
        }
        reuse_records(b, meta);
        b.cache.post_root_clean = *point == Point::PostRoot;
        b.cache.reused_through = Some(*point);
        b.cache.mark = Some(Instant::now());
        return Ok(());
    }
    b.step("build cache: no tree to reuse; every phase runs");
    Ok(())
}

/// The records and calls of the hooks an entry skipped, marked as from the cache.
fn reuse_records(b: &mut Build<'_>, meta: Meta) {
    b.records.extend(meta.records.into_iter().map(|mut r| {
        r.cached = true;
        r
    }));
    b.calls.extend(meta.calls);
}

/// The records and calls of the cached phases so far, for an entry.
fn meta(b: &Build<'_>, point: Point, mounts: Vec<PathBuf>) -> Meta {
    let keyed = |p: &str| {
        [
            Phase::PreInstallD,
            Phase::InstallD,
            Phase::PostInstallD,
            Phase::PostRootD,
        ]
        .iter()
        .any(|k| k.dir() == p)
    };
    Meta {
        point,
        records: b
            .records
            .iter()
            .filter(|r| keyed(&r.phase))
            .cloned()
            .collect(),
        calls: b
            .calls
            .iter()
            .filter(|c| keyed(c.caller.split('/').next().unwrap_or_default()))
            .cloned()
            .collect(),
        mounts,
        root: None,
    }
}

/// The store and the exclusive lock of `point`'s entry, when it is to be written: not when
/// the build reused it or a later point, nor when another build made it meanwhile.
fn claim(b: &mut Build<'_>, point: Point) -> Result<Option<(Store, Held, String)>, Failure> {
    let Some(store) = b.cache.store.clone() else {
        return Ok(None);
    };
    if b.cache.covers_point(point) {
        return Ok(None);
    }
    let Some(key) = b.cache.key(point).map(str::to_owned) else {
        return Ok(None);
    };
    let held = store.lock(&key, Mode::Exclusive)?;
    if store.exists(&held) {
        b.log_line(&format!(
            "build cache: the entry for {} is kept already (another build made it)",
            b.cache.label(point)
        ));
        return Ok(None);
    }
    Ok(Some((store, held, key)))
}

fn commit(b: &mut Build<'_>, store: &Store, held: &Held, tmp: &Path) -> Result<(), Failure> {
    settle(b);
    for e in store.commit(held, tmp)? {
        b.log_line(&format!(
            "build cache: evicted {} ({} MiB, least recently used) to stay within {} GiB",
            e.name,
            e.bytes >> 20,
            b.opts.cache_max_gib
        ));
    }
    b.cache.mark = Some(Instant::now());
    Ok(())
}

/// At `point`: the tree into the store (unless it came from there, another build made that
/// entry meanwhile, or the hooks since the last point ran too briefly to be worth it).
pub fn save(b: &mut Build<'_>, point: Point) -> Result<(), Failure> {
    if b.cache.covers_point(point) || b.cache.store.is_none() {
        return Ok(());
    }
    let label = b.cache.label(point);
    let paths = b.paths().clone();
    if point == Point::PostRoot {
        b.cache.post_root_clean = outside(&paths.hooks, &paths.image_dir)? == b.cache.outside;
        if !b.cache.post_root_clean {
            b.log_line(
                "build cache: not keeping what post-root.d left: it changed the hooks tree or the image directory, which the cache does not hold",
            );
            return Ok(());
        }
    }
    let since = b.cache.mark.map_or(f64::MAX, |m| m.elapsed().as_secs_f64());
    if since < b.opts.cache_keep_seconds {
        b.log_line(&format!(
            "build cache: not keeping the tree after {label}: the hooks since the last point ran in {since:.1} s, less than keeping and unpacking a tree takes"
        ));
        return Ok(());
    }
    let Some((store, held, key)) = claim(b, point)? else {
        return Ok(());
    };
    b.step(&format!(
        "build cache: keeping the tree after {label} ({key})"
    ));
    let tmp = store.begin(&held)?;
    let mounts = tree::mount_points(&paths.mnt);
    let file = fs::File::create(tmp.join(TREE)).context("creating the cached tree")?;
    // Mount points are left out whole (their directories stay as this build has them when
    // the entry is unpacked; tar would otherwise set the mounted file system's root's owner
    // and mode); so is the content of the hooks tree's bind mount point.
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(&paths.mnt)
        .args([
            "--one-file-system",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--anchored",
            "--exclude=./tmp/in_target.d/*",
        ])
        .args(
            mounts
                .iter()
                .map(|m| format!("--exclude=./{}", m.display())),
        )
        .args(["-b", "256", "-cf", "-", "."]);
    let mut zstd = Command::new("zstd");
    zstd.args(["-q", "-T0", "-1"]);
    cmd::pipeline(&mut tar, &mut zstd, file)?;
    let meta = meta(b, point, mounts);
    fs::write(
        tmp.join(META),
        serde_json::to_vec(&meta).context("writing the entry's record")?,
    )
    .context("writing the entry's record")?;
    commit(b, &store, &held, &tmp)
}

/// The disk image `raw`, just made and not mounted, into the store (unless it came from
/// there or another build made it meanwhile); `root` is the owner, group and mode the
/// build gives its root directory once mounted.
pub fn save_disk(b: &mut Build<'_>, raw: &Path, root: (u32, u32, u32)) -> Result<(), Failure> {
    if !b.cache.post_root_clean {
        return Ok(());
    }
    if !b.cache.keep_disk && b.cache.key(Point::Disk).is_some() {
        b.log_line(
            "build cache: not keeping the disk image: what the phases up to post-root.d see changed since this image's last build, and a build after a change (an edit loop) makes a new tree each time; the next build of the same inputs keeps it",
        );
        return Ok(());
    }
    let Some((store, held, key)) = claim(b, Point::Disk)? else {
        return Ok(());
    };
    b.step(&format!(
        "build cache: keeping the disk image made from the tree after post-root.d ({key})"
    ));
    let tmp = store.begin(&held)?;
    let mut meta = meta(b, Point::Disk, Vec::new());
    meta.root = Some(root);
    fs::write(
        tmp.join(META),
        serde_json::to_vec(&meta).context("writing the entry's record")?,
    )
    .context("writing the entry's record")?;
    // Copying the image into the cache is a memory copy; writing it to the cache's disk
    // takes seconds of I/O, done beside finalise.d and the conversion and waited for
    // before the build ends ([`settle`]). The entry's lock goes with it; a killed build
    // leaves a temporary entry, which the next sweeps.
    if let Err(e) = crate::engine::sys::fs::copy_sparse(raw, &tmp.join(DISK)) {
        // The build does not need the entry: a full cache disk only costs the next build.
        b.log_line(&format!(
            "build cache: keeping the disk image failed: {e:#}"
        ));
        fs::remove_dir_all(&tmp).ok();
        return Ok(());
    }
    b.cache.pending = Some(std::thread::spawn(move || {
        let kept = store.commit(&held, &tmp);
        if kept.is_err() {
            fs::remove_dir_all(&tmp).ok();
        }
        kept
    }));
    Ok(())
}

/// Waits for the disk image's entry to be in place (a failure to keep it is only logged:
/// the build does not need it).
pub fn settle(b: &mut Build<'_>) {
    if let Some(p) = b.cache.prefetch.take() {
        p.drop_copy();
    }
    let Some(pending) = b.cache.pending.take() else {
        return;
    };
    match pending.join() {
        Ok(Ok(evicted)) => {
            b.log_line("build cache: the disk image is kept");
            for e in evicted {
                b.log_line(&format!(
                    "build cache: evicted {} ({} MiB, least recently used) to stay within {} GiB",
                    e.name,
                    e.bytes >> 20,
                    b.opts.cache_max_gib
                ));
            }
        }
        Ok(Err(e)) => b.log_line(&format!(
            "build cache: keeping the disk image failed: {e:#}"
        )),
        Err(_) => b.log_line("build cache: keeping the disk image failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_names_the_variables_that_changed() {
        let build = Path::new("/tmp/dibkit_build.x");
        let vars = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            var_digests("chroot", &pairs, build, b"k")
        };
        let last = vars(&[
            ("DIB_A", "1"),
            ("DIB_B", "x"),
            ("DIB_GONE", "y"),
            ("SHLVL", "1"),
        ]);
        let now = vars(&[
            ("DIB_A", "1"),
            ("DIB_B", "z"),
            ("DIB_NEW", "w"),
            ("SHLVL", "2"),
        ]);
        assert_eq!(
            changed_vars(&last, &now),
            "chroot DIB_B (changed), chroot DIB_NEW (new), chroot DIB_GONE (gone)"
        );
        assert_eq!(
            changed_vars(&now, &now),
            "none by name (their order changed)"
        );
        // A host variable holding a path in build directory `build`, under `key`.
        let in_build = |build: &str, key: &[u8]| {
            var_digests(
                "host",
                &[("T".into(), format!("{build}/x"))],
                Path::new(build),
                key,
            )
        };
        // The build directory's own path is not a change.
        let a = in_build("/tmp/dibkit_build.a", b"k");
        assert_eq!(a, in_build("/tmp/dibkit_build.b", b"k"));
        // Another cache's key gives other digests: a value cannot be guessed from them
        // without the key.
        assert_ne!(a, in_build("/tmp/dibkit_build.a", b"other"));
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            tree::hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            tree::hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_records_and_their_key_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let last = dir.path().join(".last");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let key = record_key(&last).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(record_key(&last).unwrap(), key, "the key is kept");
        assert_eq!(mode(&last), 0o700);
        assert_eq!(mode(&last.join("key")), 0o600);
        // A damaged key is replaced.
        fs::write(last.join("key"), b"short").unwrap();
        let new = record_key(&last).unwrap();
        assert_eq!(new.len(), 32);
        assert_ne!(new, key);
        let file = last.join("x.json");
        write_private(&last, &file, b"{}");
        assert_eq!(fs::read(&file).unwrap(), b"{}");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            fs::read_dir(&last).unwrap().count(),
            2,
            "no temporary file is left"
        );
    }

    #[test]
    fn the_build_directory_is_not_in_the_key() {
        let a = env_text(
            &[
                ("TMP_MOUNT_PATH".into(), "/tmp/dibkit_build.abc/mnt".into()),
                ("SHLVL".into(), "2".into()),
                ("DIB_X".into(), "1".into()),
            ],
            Path::new("/tmp/dibkit_build.abc"),
        );
        let b = env_text(
            &[
                ("TMP_MOUNT_PATH".into(), "/tmp/dibkit_build.xyz/mnt".into()),
                ("SHLVL".into(), "3".into()),
                ("DIB_X".into(), "1".into()),
            ],
            Path::new("/tmp/dibkit_build.xyz"),
        );
        assert_eq!(a, b);
        let c = env_text(
            &[("DIB_X".into(), "2".into())],
            Path::new("/tmp/dibkit_build.xyz"),
        );
        assert_ne!(a, c);
    }

    #[test]
    fn later_phases_are_left_out_of_the_base() {
        assert_eq!(
            later_dirs(None),
            [
                "pre-install.d",
                "install.d",
                "post-install.d",
                "post-root.d",
                "block-device.d",
                "pre-finalise.d",
                "finalise.d",
                "cleanup.d"
            ]
        );
        assert_eq!(
            later_dirs(Some(Phase::PostRootD)),
            [
                "block-device.d",
                "pre-finalise.d",
                "finalise.d",
                "cleanup.d"
            ]
        );
    }
}
