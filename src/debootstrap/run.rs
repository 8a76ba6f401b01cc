//! The debootstrap runs that make a fresh tree: first from the local, cut-down index
//! ([`super::local`]), with the packages fetched into debootstrap's cache beforehand; when
//! that cannot be made or its run fails, from the mirror's own index, retried with a pause
//! after a failure (a mirror hiccup should not fail the build). Every run starts from an
//! empty root. Progress and failures are written to the writers given; debootstrap's own
//! output goes where ours goes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::local;
use crate::engine::cmd;
use crate::error::last_lines;

/// What the hook asks for.
#[derive(Debug, Clone)]
pub struct Plan {
    pub root: PathBuf,
    pub distro: String,
    pub release: String,
    pub arch: String,
    /// Empty for debootstrap's default.
    pub mirror: String,
    pub components: String,
    pub variant: String,
    pub include: String,
    /// `DIB_DEBOOTSTRAP_EXTRA_ARGS`, split on blanks.
    pub extra_args: String,
    pub keyring: String,
    pub script: String,
    /// debootstrap's `--cache-dir`, for the `.deb` files.
    pub deb_cache: PathBuf,
    /// A scratch directory for the local index.
    pub work: PathBuf,
    /// Try the local index first.
    pub local_index: bool,
    /// debootstrap's scripts directory.
    pub scripts_dir: PathBuf,
    /// How many runs from the mirror's index before giving up.
    pub attempts: u32,
    /// The pause between them.
    pub pause: Duration,
}

/// The options of every debootstrap run (the keyring only where it checks the index).
#[must_use]
pub fn options(p: &Plan) -> Vec<String> {
    let mut o = vec![
        "--verbose".to_owned(),
        format!("--variant={}", p.variant),
        format!("--components={}", p.components),
        format!("--arch={}", p.arch),
    ];
    if !p.include.is_empty() {
        o.push(format!("--include={}", p.include));
    }
    o.push(format!("--cache-dir={}", p.deb_cache.display()));
    o.extend(p.extra_args.split_whitespace().map(str::to_owned));
    o
}

/// The arguments of a run from the mirror.
///
/// # Errors
/// A debootstrap script is named without a mirror.
pub fn mirror_args(p: &Plan) -> Result<Vec<String>, String> {
    let mut a = options(p);
    if !p.keyring.is_empty() {
        a.push(format!("--keyring={}", p.keyring));
    }
    a.push(p.release.clone());
    a.push(p.root.to_string_lossy().into_owned());
    if !p.mirror.is_empty() {
        a.push(p.mirror.clone());
        if !p.script.is_empty() {
            a.push(p.script.clone());
        }
    } else if !p.script.is_empty() {
        return Err("DIB_DEBIAN_DEBOOTSTRAP_SCRIPT needs DIB_DISTRIBUTION_MIRROR".to_owned());
    }
    Ok(a)
}

/// The options a run from the local mirror adds: no signature check (dibkit checked the
/// index), and ca-certificates, which debootstrap adds for an https mirror but not for a
/// local one, joined to the packages of the last `--include`.
#[must_use]
pub fn local_options(p: &Plan, base: &str) -> Vec<String> {
    let mut o = vec!["--no-check-gpg".to_owned()];
    if base.starts_with("https://") {
        let wanted = p
            .extra_args
            .split_whitespace()
            .filter_map(|a| a.strip_prefix("--include="))
            .next_back()
            .unwrap_or(&p.include);
        let sep = if wanted.is_empty() { "" } else { "," };
        o.push(format!("--include={wanted}{sep}ca-certificates"));
    }
    o
}

/// Removes what an interrupted download left in the `.deb` cache an hour ago or more.
fn sweep_stale_fetches(cache: &Path, now: SystemTime) {
    let Ok(list) = fs::read_dir(cache) else {
        return;
    };
    for e in list.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with(".fetch.") {
            // A leftover that cannot be removed only takes space.
            fs::remove_dir_all(e.path())
                .or_else(|_| fs::remove_file(e.path()))
                .ok();
        }
    }
}

/// Empties `root` for the next run.
fn empty(root: &Path) -> Result<()> {
    for e in fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = e?.path();
        if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

fn debootstrap(args: &[String]) -> Result<bool> {
    let mut c = Command::new("debootstrap");
    c.args(args);
    let status = c
        .status()
        .with_context(|| format!("running {}", cmd::shown(&c)))?;
    Ok(status.success())
}

/// Writes the end of the tree's debootstrap.log.
fn log_tail(root: &Path, err: &mut dyn Write) {
    let log = root.join("debootstrap/debootstrap.log");
    if let Ok(text) = fs::read_to_string(&log) {
        for line in last_lines(&text, 40) {
            writeln!(err, "{line}").ok();
        }
    }
}

/// What the local index gives the run.
struct Local {
    base: String,
    components: Vec<String>,
    options: Vec<String>,
}

/// Makes the local mirror in `work/mirror` and fetches the packages debootstrap will want
/// from it into its cache. `Err` is why it cannot be used.
fn prepare_local(p: &Plan, out: &mut dyn Write) -> Result<Local, String> {
    if !p.script.is_empty() {
        return Err("a debootstrap script is named".to_owned());
    }
    let req = local::Request {
        work: p.work.clone(),
        base: p.mirror.clone(),
        release: p.release.clone(),
        arch: p.arch.clone(),
        components: p.components.clone(),
        include: p.include.clone(),
        extra_args: p.extra_args.clone(),
        keyring: p.keyring.clone(),
        scripts_dir: p.scripts_dir.clone(),
    };
    let made = local::prepare(&req).map_err(|e| e.0)?;
    let options = local_options(p, &made.base);
    // The packages debootstrap will install, as it resolves them.
    let mut print = options.clone();
    print.splice(0..0, self::options(p));
    print.push("--print-debs".to_owned());
    print.push(p.release.clone());
    print.push(p.work.join("print").to_string_lossy().into_owned());
    print.push(format!("file://{}/mirror", p.work.display()));
    let mut c = Command::new("debootstrap");
    c.args(&print);
    let done = c
        .output()
        .map_err(|e| format!("running {}: {e}", cmd::shown(&c)))?;
    if !done.status.success() {
        let stderr = String::from_utf8_lossy(&done.stderr);
        return Err(format!(
            "debootstrap --print-debs failed: {}",
            last_lines(&stderr, 5).join("\n")
        ));
    }
    let stdout = String::from_utf8_lossy(&done.stdout);
    let packages: Vec<&str> = stdout.split_whitespace().collect();
    // Those not in the cache yet are fetched into it first, as debootstrap names them
    // there, over one connection.
    let debs = local::missing_debs(
        &p.work,
        &p.release,
        &p.arch,
        &made.components,
        made.base.trim_end_matches('/'),
        &p.deb_cache,
        &packages,
    )
    .map_err(|e| format!("reading the local mirror in {}: {e}", p.work.display()))?;
    if !debs.is_empty() {
        writeln!(
            out,
            "debootstrap: fetching {} packages into {}",
            debs.len(),
            p.deb_cache.display()
        )
        .ok();
        local::fetch_debs(&p.deb_cache, &debs)
            .map_err(|e| format!("fetching packages failed: {}", e.0))?;
    }
    writeln!(
        out,
        "debootstrap: resolving from a local copy of the index, cut down to {} packages",
        made.packages
    )
    .ok();
    Ok(Local {
        base: made.base,
        components: made.components,
        options,
    })
}

/// Makes the tree in `p.root`: from the local index when asked and possible, else from the
/// mirror, `p.attempts` times at most.
///
/// # Errors
/// Bad arguments, every run failed, or the tree cannot be emptied or finished.
pub fn bootstrap(p: &Plan, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let args = mirror_args(p).map_err(anyhow::Error::msg)?;
    fs::create_dir_all(&p.deb_cache)
        .with_context(|| format!("creating {}", p.deb_cache.display()))?;
    sweep_stale_fetches(&p.deb_cache, SystemTime::now());
    let from = if p.mirror.is_empty() {
        "the debootstrap default mirror"
    } else {
        &p.mirror
    };
    writeln!(
        out,
        "debootstrap: building {} {} ({}) from {from}",
        p.distro, p.release, p.arch
    )
    .ok();
    if p.local_index {
        match prepare_local(p, out) {
            Err(why) => {
                writeln!(err, "debootstrap: no local index: {why}").ok();
                writeln!(
                    out,
                    "debootstrap: no local index; debootstrap reads the mirror's own"
                )
                .ok();
            }
            Ok(l) => {
                out.flush().ok();
                let mut a = options(p);
                a.extend(l.options);
                a.push(p.release.clone());
                a.push(p.root.to_string_lossy().into_owned());
                a.push(format!("file://{}/mirror", p.work.display()));
                if debootstrap(&a)? {
                    // What debootstrap leaves from the real mirror, and no trace of the
                    // local one.
                    local::finish(
                        &p.work,
                        &p.root,
                        &l.base,
                        &p.release,
                        &p.arch,
                        &l.components,
                    )
                    .with_context(|| format!("copying the index into {}", p.root.display()))?;
                    return Ok(());
                }
                writeln!(
                    err,
                    "debootstrap: the run from the local index failed; end of {}:",
                    p.root.join("debootstrap/debootstrap.log").display()
                )
                .ok();
                log_tail(&p.root, err);
                writeln!(err, "debootstrap: trying again from the mirror's own index").ok();
                empty(&p.root)?;
            }
        }
    }
    let mut attempt = 1;
    loop {
        out.flush().ok();
        if debootstrap(&args)? {
            return Ok(());
        }
        writeln!(
            err,
            "debootstrap: attempt {attempt} failed; end of {}:",
            p.root.join("debootstrap/debootstrap.log").display()
        )
        .ok();
        log_tail(&p.root, err);
        if attempt >= p.attempts {
            bail!("debootstrap failed {attempt} times");
        }
        attempt += 1;
        writeln!(
            err,
            "debootstrap: retrying in {} s (attempt {attempt} of {})",
            p.pause.as_secs(),
            p.attempts
        )
        .ok();
        std::thread::sleep(p.pause);
        empty(&p.root)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            root: "/t/root".into(),
            distro: "debian".into(),
            release: "bookworm".into(),
            arch: "amd64".into(),
            mirror: String::new(),
            components: "main".into(),
            variant: "minbase".into(),
            include: String::new(),
            extra_args: String::new(),
            keyring: String::new(),
            script: String::new(),
            deb_cache: "/c/debs-debian".into(),
            work: "/w".into(),
            local_index: true,
            scripts_dir: "/s".into(),
            attempts: 3,
            pause: Duration::ZERO,
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn mirror_runs_take_the_keyring_mirror_and_script() {
        let mut p = plan();
        assert_eq!(
            mirror_args(&p).unwrap(),
            words(
                "--verbose --variant=minbase --components=main --arch=amd64 \
                 --cache-dir=/c/debs-debian bookworm /t/root"
            )
        );
        p.include = "vim".into();
        p.extra_args = "--no-merged-usr  --foo".into();
        p.keyring = "/k.gpg".into();
        p.mirror = "http://m/debian".into();
        p.script = "sid".into();
        assert_eq!(
            mirror_args(&p).unwrap(),
            words(
                "--verbose --variant=minbase --components=main --arch=amd64 --include=vim \
                 --cache-dir=/c/debs-debian --no-merged-usr --foo --keyring=/k.gpg \
                 bookworm /t/root http://m/debian sid"
            )
        );
        p.mirror = String::new();
        assert!(
            mirror_args(&p)
                .unwrap_err()
                .contains("needs DIB_DISTRIBUTION_MIRROR")
        );
    }

    #[test]
    fn an_https_mirror_brings_ca_certificates_to_the_last_include() {
        let mut p = plan();
        assert_eq!(local_options(&p, "http://m"), words("--no-check-gpg"));
        assert_eq!(
            local_options(&p, "https://m"),
            words("--no-check-gpg --include=ca-certificates")
        );
        p.include = "vim".into();
        assert_eq!(
            local_options(&p, "https://m"),
            words("--no-check-gpg --include=vim,ca-certificates")
        );
        p.extra_args = "--include=a --include=b,c".into();
        assert_eq!(
            local_options(&p, "https://m"),
            words("--no-check-gpg --include=b,c,ca-certificates")
        );
    }

    #[test]
    fn only_old_fetch_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".fetch.old")).unwrap();
        fs::write(dir.path().join("a.deb"), "").unwrap();
        sweep_stale_fetches(dir.path(), SystemTime::now());
        assert!(dir.path().join(".fetch.old").exists(), "young: kept");
        sweep_stale_fetches(dir.path(), SystemTime::now() + Duration::from_secs(7200));
        assert!(!dir.path().join(".fetch.old").exists());
        assert!(dir.path().join("a.deb").exists());
    }

    #[test]
    fn emptying_keeps_the_root_and_removes_links_not_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let kept = dir.path().join("kept");
        fs::create_dir_all(root.join("etc/apt")).unwrap();
        fs::create_dir(&kept).unwrap();
        fs::write(kept.join("f"), "").unwrap();
        std::os::unix::fs::symlink(&kept, root.join("link")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        empty(&root).unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        assert!(kept.join("f").exists());
    }
}
