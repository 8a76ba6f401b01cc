//! The build cache: the image tree after pre-install.d, after install.d (and `-p`) and after
//! post-root.d, kept in the cache store (`$DIB_IMAGE_CACHE/dibkit-build`) and reused when
//! nothing those phases could see has changed.
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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::{Kind, Store, tree};
use crate::element::model::{Phase, Root};
use crate::engine::calls::CallRecord;
use crate::engine::cmd;
use crate::engine::context::{Build, ScriptRecord};
use crate::engine::sys::lock::Mode;
use crate::error::Failure;

/// The phases whose trees are keyed, in order.
pub const KEYED: [Phase; 4] = [
    Phase::PreInstallD,
    Phase::InstallD,
    Phase::PostInstallD,
    Phase::PostRootD,
];

/// The phases after which the tree is kept.
pub const KEPT: [Phase; 3] = [Phase::PreInstallD, Phase::InstallD, Phase::PostRootD];

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
const META: &str = "meta.json";

/// The build cache's state in a build.
#[derive(Debug, Default)]
pub struct State {
    pub store: Option<Store>,
    /// Each keyed phase's key.
    pub keys: Vec<(Phase, String)>,
    /// The last phase whose tree came from the cache.
    pub reused_through: Option<Phase>,
    /// What lies outside the tree (hooks tree, image directory) when the keys were made.
    outside: String,
}

impl State {
    /// Whether `phase` is skipped: its tree came from the cache.
    #[must_use]
    pub fn covers(&self, phase: Phase) -> bool {
        self.reused_through.is_some_and(|r| phase <= r)
    }

    fn key(&self, phase: Phase) -> Option<&str> {
        self.keys
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, k)| k.as_str())
    }
}

/// What an entry holds besides the tree.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    phase: String,
    /// The records and calls of the keyed phases that made the tree.
    records: Vec<ScriptRecord>,
    calls: Vec<CallRecord>,
    /// Mount points below the tree when it was packed (their contents are not in it).
    mounts: Vec<PathBuf>,
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
    let max_bytes = gib_bytes(b.opts.cache_max_gib);
    let store = Store::open(&b.opts.image_cache.join(DIR), Kind::Dirs, max_bytes)?;
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
    part(&mut h, "format", b"dibkit build cache 1");
    for (label, digest) in &parts {
        part(&mut h, label, digest.as_bytes());
    }
    let mut key = finish(h);
    let mut keys = Vec::new();
    for phase in KEYED {
        let (hooks, _) =
            tree::digest_normalized(&paths.hooks.join(phase.dir()), &[], Some(&paths.build))?;
        let mut own = vec![(format!("{} hooks", phase.dir()), hooks)];
        if phase == Phase::InstallD {
            own.push(("-p packages".into(), digest_of(&b.opts.packages.join("\0"))));
        }
        if phase == Phase::PostRootD {
            own.push((
                "host environment".into(),
                digest_of(&env_text(&b.env_outside, &paths.build)),
            ));
        }
        let mut h = Sha256::new();
        part(&mut h, "previous", key.as_bytes());
        for (label, digest) in &own {
            part(&mut h, label, digest.as_bytes());
        }
        key = finish(h);
        b.log_line(&format!("build cache: {} key {key}", phase.dir()));
        keys.push((phase, key.clone()));
        parts.extend(own);
    }
    for (label, digest) in &parts {
        b.log_line(&format!("build cache: input {label}: {digest}"));
    }
    // This image's previous build's inputs, to say what changed.
    let lineage = digest_of(&format!("{:?}", (&b.opts.elements, &b.opts.output)));
    let last_dir = store.dir().join(".last");
    let last_file = last_dir.join(format!("{lineage}.json"));
    if let Ok(text) = fs::read(&last_file) {
        let last: Vec<(String, String)> = serde_json::from_slice(&text).unwrap_or_default();
        let changed: Vec<&str> = parts
            .iter()
            .filter(|p| !last.contains(p))
            .map(|(l, _)| l.as_str())
            .collect();
        b.step(&format!(
            "build cache: changed since this image's last build, of what the cached phases see: {}",
            if changed.is_empty() {
                "nothing".to_owned()
            } else {
                changed.join(", ")
            }
        ));
    }
    fs::create_dir_all(&last_dir).ok();
    if let Ok(text) = serde_json::to_vec(&parts) {
        fs::write(&last_file, text).ok();
    }
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
    part(&mut h, "image", tree::digest(image_dir, &[])?.0.as_bytes());
    Ok(finish(h))
}

fn gib_bytes(gib: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (gib.max(0.0) * 1024.0 * 1024.0 * 1024.0) as u64;
    bytes
}

fn restore_latest(b: &mut Build<'_>) -> Result<(), Failure> {
    let Some(store) = b.cache.store.clone() else {
        return Ok(());
    };
    let mnt = b.paths().mnt.clone();
    for phase in KEPT.iter().rev() {
        let key = b.cache.key(*phase).unwrap_or_default().to_owned();
        let Some((entry, _reading)) = store.get(&key)? else {
            b.log_line(&format!(
                "build cache: no tree after {} for its key {key}",
                phase.dir()
            ));
            continue;
        };
        let meta: Meta = serde_json::from_slice(
            &fs::read(entry.join(META)).with_context(|| format!("reading {}", entry.display()))?,
        )
        .with_context(|| format!("reading {}", entry.join(META).display()))?;
        let now = tree::mount_points(&mnt);
        if let Some(missing) = meta.mounts.iter().find(|m| !now.contains(m)) {
            b.log_line(&format!(
                "build cache: not using the tree after {}: it was made with /{} mounted, which this build has not",
                phase.dir(),
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
                    "the cached tree after {} lacks the chroot mount {}",
                    phase.dir(),
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
            "build cache: reusing the tree after {} (entry {key}): nothing root.d to {} could see changed",
            phase.dir(),
            phase.dir()
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
        b.records.extend(meta.records.into_iter().map(|mut r| {
            r.cached = true;
            r
        }));
        b.calls.extend(meta.calls);
        b.cache.reused_through = Some(*phase);
        return Ok(());
    }
    b.step("build cache: no tree to reuse; every phase runs");
    Ok(())
}

/// After `phase`: its tree into the store (unless it came from there, or another build
/// made that entry meanwhile).
pub fn save(b: &mut Build<'_>, phase: Phase) -> Result<(), Failure> {
    let Some(store) = b.cache.store.clone() else {
        return Ok(());
    };
    if b.cache.covers(phase) {
        return Ok(());
    }
    let Some(key) = b.cache.key(phase).map(str::to_owned) else {
        return Ok(());
    };
    let paths = b.paths().clone();
    if phase == Phase::PostRootD && outside(&paths.hooks, &paths.image_dir)? != b.cache.outside {
        b.log_line(
            "build cache: not keeping the tree after post-root.d: it changed the hooks tree or the image directory, which the cache does not hold",
        );
        return Ok(());
    }
    let held = store.lock(&key, Mode::Exclusive)?;
    if store.exists(&held) {
        b.log_line(&format!(
            "build cache: the tree after {} is kept already (another build made it)",
            phase.dir()
        ));
        return Ok(());
    }
    b.step(&format!(
        "build cache: keeping the tree after {} ({key})",
        phase.dir()
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
    let keyed = |p: &str| KEYED.iter().any(|k| k.dir() == p);
    let meta = Meta {
        phase: phase.dir().to_owned(),
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
    };
    fs::write(
        tmp.join(META),
        serde_json::to_vec(&meta).context("writing the entry's record")?,
    )
    .context("writing the entry's record")?;
    for e in store.commit(&held, &tmp)? {
        b.log_line(&format!(
            "build cache: evicted {} ({} MiB, least recently used) to stay within {} GiB",
            e.name,
            e.bytes >> 20,
            b.opts.cache_max_gib
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
