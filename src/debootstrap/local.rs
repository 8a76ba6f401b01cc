//! The local index: fetches the mirror's signed index once, checks it as debootstrap does
//! (`gpgv` over `Release`, the `Packages` file's SHA-256 and size from it), cuts it down to
//! the packages a base system can reach and writes it as a file mirror debootstrap resolves
//! from in a fraction of the time. Anything unusual is [`Unusable`]: the element then runs
//! plain debootstrap.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::index;

/// Why the local index cannot be used (debootstrap then reads the mirror itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

fn unusable(message: impl Into<String>) -> Unusable {
    Unusable(message.into())
}

/// What `debootstrap` is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The working directory: `index/` and `mirror/` are made in it.
    pub work: PathBuf,
    /// The mirror, empty for the release script's default.
    pub base: String,
    pub release: String,
    pub arch: String,
    /// Comma-separated, as `--components`.
    pub components: String,
    /// Comma-separated, as `--include`.
    pub include: String,
    /// `DIB_DEBOOTSTRAP_EXTRA_ARGS`.
    pub extra_args: String,
    /// The keyring given by the user, empty for the release script's.
    pub keyring: String,
    /// debootstrap's `scripts` directory.
    pub scripts_dir: PathBuf,
}

/// The local mirror made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The real mirror (the release script's default when none was given).
    pub base: String,
    /// The components debootstrap takes, in the Release file's order.
    pub components: Vec<String>,
    /// How many packages the cut-down index has.
    pub packages: usize,
}

/// Whether `tool` is an executable on `PATH`.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The first value of a `NAME value` line of a debootstrap script.
fn script_setting(script: &str, name: &str) -> Option<String> {
    script.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.starts_with([' ', '\t'])
            .then(|| rest.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// debootstrap's own default mirror (`DEF_MIRROR` in the debootstrap script on `PATH`).
fn debootstrap_default_mirror() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    let tool = std::env::split_paths(&path)
        .map(|d| d.join("debootstrap"))
        .find(|p| p.is_file())?;
    let text = fs::read_to_string(tool).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("DEF_MIRROR=\"")
            .and_then(|r| r.strip_suffix('"'))
            .map(str::to_owned)
    })
}

/// Fetches `url` (http, https or file) into `dest`.
fn fetch(url: &str, dest: &Path) -> Result<(), Unusable> {
    if let Some(path) = url.strip_prefix("file://") {
        fs::copy(path, dest).map_err(|e| unusable(format!("copying {path}: {e}")))?;
        return Ok(());
    }
    let status = Command::new("wget")
        .args(["-q", "--tries=2", "--timeout=30", "-O"])
        .arg(dest)
        .arg(url)
        .status()
        .map_err(|e| unusable(format!("running wget: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(unusable(format!("wget {url} failed ({status})")))
    }
}

/// The `gpgv` run that checks `Release` against its signature, as debootstrap runs it.
#[must_use]
pub fn gpgv_command(keyring: &str, signature: &Path, release: &Path) -> Command {
    let mut cmd = Command::new("gpgv");
    cmd.arg("--keyring")
        .arg(keyring)
        .arg("--ignore-time-conflict")
        .arg(signature)
        .arg(release)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The extra debootstrap arguments the local index supports: the last `--include` and
/// whether signatures are checked. Any other argument makes it unusable.
fn extra_args(extra: &str, include: &str) -> Result<(String, bool), Unusable> {
    let mut include = include.to_owned();
    let mut check = true;
    for arg in extra.split_whitespace() {
        if let Some(v) = arg.strip_prefix("--include=") {
            v.clone_into(&mut include);
        } else if arg == "--no-check-gpg" {
            check = false;
        } else if !(arg.starts_with("--variant=")
            || arg.starts_with("--exclude=")
            || matches!(arg, "--merged-usr" | "--no-merged-usr" | "--verbose"))
        {
            return Err(unusable(format!("debootstrap argument {arg}")));
        }
    }
    Ok((include, check))
}

/// The text of the release script and its siblings whose names start with its name, and of
/// `debian-common`: every word in them may be a package debootstrap adds.
fn script_texts(script: &Path) -> Vec<String> {
    let (Some(dir), Some(name)) = (script.parent(), script.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(name.as_ref()))
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths.push(dir.join("debian-common"));
    paths
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect()
}

/// Decompresses a checked `Packages.gz` or `Packages.xz`.
fn unpack(file: &Path) -> Result<String, Unusable> {
    let bytes = if file.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(
            fs::File::open(file).map_err(|e| unusable(format!("{}: {e}", file.display())))?,
        )
        .read_to_end(&mut out)
        .map_err(|e| unusable(format!("unpacking {}: {e}", file.display())))?;
        out
    } else {
        let out = Command::new("xz")
            .arg("-dc")
            .arg(file)
            .output()
            .map_err(|e| unusable(format!("running xz: {e}")))?;
        if !out.status.success() {
            return Err(unusable(format!("xz failed on {}", file.display())));
        }
        out.stdout
    };
    String::from_utf8(bytes).map_err(|_| unusable(format!("{} is not UTF-8", file.display())))
}

/// Whether `file` has the SHA-256 and size of the Release file's entry.
fn matches(file: &Path, entry: Option<&(String, u64)>) -> bool {
    let Some((sha, size)) = entry else {
        return false;
    };
    fs::read(file).is_ok_and(|b| b.len() as u64 == *size && super::key::sha256_hex(&b) == *sha)
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), Unusable> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| unusable(format!("{}: {e}", dir.display())))?;
    }
    fs::write(path, bytes).map_err(|e| unusable(format!("{}: {e}", path.display())))
}

/// Fetches and checks the index into `work/index` (`InRelease`, `Release`, `Release.gpg`,
/// one unpacked `Packages` per component named after it, `keep`) and writes the cut-down
/// mirror into `work/mirror`.
///
/// # Errors
/// Whatever makes the local index unusable.
pub fn prepare(req: &Request) -> Result<Prepared, Unusable> {
    let script = fs::canonicalize(req.scripts_dir.join(&req.release))
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| unusable(format!("no debootstrap script for {}", req.release)))?;
    let script_text = fs::read_to_string(&script).unwrap_or_default();
    let base = if req.base.is_empty() {
        script_setting(&script_text, "default_mirror")
            .or_else(debootstrap_default_mirror)
            .ok_or_else(|| unusable("no default mirror"))?
    } else {
        req.base.clone()
    };
    let base = base.trim_end_matches('/').to_owned();
    if base.starts_with("http://") || base.starts_with("https://") {
        if !on_path("wget") {
            return Err(unusable("wget is not installed"));
        }
    } else if !base.starts_with("file://") {
        return Err(unusable(format!(
            "mirror {base} is not http, https or file"
        )));
    }
    let (include, check) = extra_args(&req.extra_args, &req.include)?;
    let texts = script_texts(&script);
    let seeds = index::seeds(
        &include,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let keyring = if !check {
        String::new()
    } else if req.keyring.is_empty() {
        script_setting(&script_text, "keyring").unwrap_or_default()
    } else {
        req.keyring.clone()
    };
    if check && (keyring.is_empty() || !Path::new(&keyring).is_file() || !on_path("gpgv")) {
        return Err(unusable("no keyring or no gpgv to check the index with"));
    }

    let dir = req.work.join("index");
    let dists = format!("{base}/dists/{}", req.release);
    fs::create_dir_all(&dir).map_err(|e| unusable(format!("{}: {e}", dir.display())))?;
    fetch(&format!("{dists}/InRelease"), &dir.join("InRelease"))?;
    let inrelease = fs::read(dir.join("InRelease")).map_err(|e| unusable(e.to_string()))?;
    let (release, signature) =
        index::split_inrelease(&inrelease).ok_or_else(|| unusable("InRelease is not signed"))?;
    write(&dir.join("Release"), &release)?;
    write(&dir.join("Release.gpg"), &signature)?;
    if check {
        let ok = gpgv_command(&keyring, &dir.join("Release.gpg"), &dir.join("Release"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(unusable("the index's signature does not check out"));
        }
    }
    let release = String::from_utf8_lossy(&release).into_owned();
    if !index::is_for_release(&release, &req.release) {
        return Err(unusable(format!("the index is not for {}", req.release)));
    }
    let components = index::components(&release, &req.components);
    if components.is_empty() {
        return Err(unusable("none of the components is in the index"));
    }
    let mut packages = Vec::new();
    for comp in &components {
        let path = format!("{comp}/binary-{}/Packages", req.arch);
        // gzip unpacks several times faster than xz; the checked file decides.
        let mut text = None;
        for ext in ["gz", "xz"] {
            if ext == "xz" && !on_path("xz") {
                continue;
            }
            let file = dir.join(format!("{comp}.{ext}"));
            if fetch(&format!("{dists}/{path}.{ext}"), &file).is_ok()
                && matches(
                    &file,
                    index::release_entry(&release, &format!("{path}.{ext}")).as_ref(),
                )
            {
                text = Some(unpack(&file)?);
                break;
            }
        }
        let text = text.ok_or_else(|| unusable(format!("no checked index for {path}")))?;
        write(&dir.join(comp), &text)?;
        packages.push(text);
    }
    let texts: Vec<&str> = packages.iter().map(String::as_str).collect();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let keep = index::closure(&texts, &seeds);
    let mut keep_file = keep.join("\n");
    keep_file.push('\n');
    write(&dir.join("keep"), keep_file)?;
    let keep_set: HashSet<&str> = keep.iter().map(String::as_str).collect();
    let mirror = req.work.join("mirror/dists").join(&req.release);
    let mut entries = Vec::new();
    for (comp, text) in components.iter().zip(&packages) {
        let path = format!("{comp}/binary-{}/Packages", req.arch);
        let cut = index::cut(text, &keep_set);
        write(&mirror.join(&path), &cut)?;
        entries.push((
            super::key::sha256_hex(cut.as_bytes()),
            cut.len() as u64,
            path,
        ));
    }
    write(
        &mirror.join("Release"),
        index::local_release(&release, &entries),
    )?;
    Ok(Prepared {
        base,
        components,
        packages: keep.len(),
    })
}

/// The `.deb` files debootstrap will want, from the local mirror in `work`, that `cache` does
/// not have yet: `(cache name, url)`.
///
/// # Errors
/// The local mirror's index cannot be read.
pub fn missing_debs(
    work: &Path,
    release: &str,
    arch: &str,
    components: &[String],
    base: &str,
    cache: &Path,
    packages: &[&str],
) -> std::io::Result<Vec<(String, String)>> {
    let mut texts = Vec::new();
    for comp in components {
        texts.push(fs::read_to_string(
            work.join("mirror/dists")
                .join(release)
                .join(format!("{comp}/binary-{arch}/Packages")),
        )?);
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let cached: HashSet<String> = fs::read_dir(cache)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Ok(index::debs(&texts, packages)
        .into_iter()
        .filter(|d| !cached.contains(&d.cache_name))
        .map(|d| (d.cache_name, format!("{base}/{}", d.filename)))
        .collect())
}

/// Fetches `(cache name, url)` pairs into `cache`, each file appearing there by an atomic
/// rename (a concurrent build may be reading the cache): file URLs are copied, the others
/// fetched by one `wget` over one kept-alive connection.
///
/// # Errors
/// A file cannot be fetched or renamed; nothing partial is left in the cache.
pub fn fetch_debs(cache: &Path, debs: &[(String, String)]) -> Result<(), Unusable> {
    if debs.is_empty() {
        return Ok(());
    }
    let stage = tempfile::Builder::new()
        .prefix(".fetch.")
        .tempdir_in(cache)
        .map_err(|e| unusable(format!("staging in {}: {e}", cache.display())))?;
    let file_name = |url: &str| url.rsplit('/').next().unwrap_or(url).to_owned();
    if debs.iter().all(|(_, url)| url.starts_with("file://")) {
        for (_, url) in debs {
            fetch(url, &stage.path().join(file_name(url)))?;
        }
    } else {
        let mut urls = String::new();
        for (_, url) in debs {
            urls.push_str(url);
            urls.push('\n');
        }
        let list = stage.path().join(".urls");
        write(&list, urls)?;
        let status = Command::new("wget")
            .args(["-q", "--tries=2", "--timeout=30", "-i"])
            .arg(&list)
            .arg("-P")
            .arg(stage.path())
            .status()
            .map_err(|e| unusable(format!("running wget: {e}")))?;
        if !status.success() {
            return Err(unusable(format!("wget failed ({status})")));
        }
    }
    for (name, url) in debs {
        fs::rename(stage.path().join(file_name(url)), cache.join(name))
            .map_err(|e| unusable(format!("moving {name} into {}: {e}", cache.display())))?;
    }
    Ok(())
}

/// debootstrap's name, in a tree's apt lists, for the file at `url`.
#[must_use]
pub fn list_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.replace('/', "_")
}

/// After a run from the local mirror in `work`: gives the tree in `root` what debootstrap
/// leaves from the real mirror `base` (its Release files and indexes in the apt lists, the
/// sources.list it writes) and no trace of the local one.
///
/// # Errors
/// A file cannot be read or written.
pub fn finish(
    work: &Path,
    root: &Path,
    base: &str,
    release: &str,
    arch: &str,
    components: &[String],
) -> std::io::Result<()> {
    let lists = root.join("var/lib/apt/lists");
    let local = format!(
        "{}_",
        list_name(&format!("file://{}/mirror", work.display()))
    );
    for entry in fs::read_dir(&lists)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&local) {
            fs::remove_file(entry.path())?;
        }
    }
    let dists = format!("{base}/dists/{release}");
    for f in ["InRelease", "Release", "Release.gpg"] {
        fs::copy(
            work.join("index").join(f),
            lists.join(list_name(&format!("{dists}/{f}"))),
        )?;
    }
    for comp in components {
        fs::copy(
            work.join("index").join(comp),
            lists.join(list_name(&format!("{dists}/{comp}/binary-{arch}/Packages"))),
        )?;
    }
    // debootstrap names an http(s) mirror in sources.list; for any other it names its
    // default mirror only if it has that one's index: none, then.
    let sources = if base.starts_with("http://") || base.starts_with("https://") {
        format!("deb {base} {release} {}\n", components.join(" "))
    } else {
        String::new()
    };
    fs::write(root.join("etc/apt/sources.list"), sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_are_debootstraps() {
        assert_eq!(
            list_name("http://deb.example/debian/dists/bookworm/InRelease"),
            "deb.example_debian_dists_bookworm_InRelease"
        );
        assert_eq!(
            list_name("file:///srv/m/dists/x/Release"),
            "_srv_m_dists_x_Release"
        );
    }

    #[test]
    fn finish_leaves_the_real_mirrors_lists_and_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, root) = (tmp.path().join("work"), tmp.path().join("root"));
        for f in ["InRelease", "Release", "Release.gpg", "main"] {
            write(&work.join("index").join(f), f).unwrap();
        }
        let lists = root.join("var/lib/apt/lists");
        let local = list_name(&format!(
            "file://{}/mirror/dists/bookworm/Release",
            work.display()
        ));
        write(&lists.join(&local), "local").unwrap();
        write(&lists.join("lock"), "").unwrap();
        fs::create_dir_all(root.join("etc/apt")).unwrap();
        let comps = ["main".to_owned()];
        finish(
            &work,
            &root,
            "http://m.example/debian",
            "bookworm",
            "amd64",
            &comps,
        )
        .unwrap();
        let mut names: Vec<String> = fs::read_dir(&lists)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "lock",
                "m.example_debian_dists_bookworm_InRelease",
                "m.example_debian_dists_bookworm_Release",
                "m.example_debian_dists_bookworm_Release.gpg",
                "m.example_debian_dists_bookworm_main_binary-amd64_Packages",
            ]
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/apt/sources.list")).unwrap(),
            "deb http://m.example/debian bookworm main\n"
        );
        finish(&work, &root, "file:///srv/m", "bookworm", "amd64", &comps).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("etc/apt/sources.list")).unwrap(),
            ""
        );
    }

    #[test]
    fn gpgv_checks_release_with_the_keyring_as_debootstrap_does() {
        let cmd = gpgv_command(
            "/k.gpg",
            Path::new("/w/Release.gpg"),
            Path::new("/w/Release"),
        );
        assert_eq!(cmd.get_program(), "gpgv");
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "--keyring",
                "/k.gpg",
                "--ignore-time-conflict",
                "/w/Release.gpg",
                "/w/Release"
            ]
        );
    }

    #[test]
    fn extra_args_decide_include_and_checking() {
        assert_eq!(
            extra_args("--verbose --include=a,b --no-check-gpg", "c").unwrap(),
            ("a,b".to_owned(), false)
        );
        assert_eq!(extra_args("", "c").unwrap(), ("c".to_owned(), true));
        assert!(extra_args("--foreign", "").is_err());
    }

    #[test]
    fn script_settings_are_read_from_their_lines() {
        let s = "mirror_style release\ndefault_mirror http://m/debian\nkeyring /k.gpg\n";
        assert_eq!(
            script_setting(s, "default_mirror").as_deref(),
            Some("http://m/debian")
        );
        assert_eq!(script_setting(s, "keyring").as_deref(), Some("/k.gpg"));
        assert_eq!(script_setting(s, "mirror"), None);
    }

    /// The whole local index over the file-mirror fixture: checked, unpacked, cut down.
    #[test]
    fn a_file_mirror_is_cut_down() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debootstrap-mirror");
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("m/dists/bookworm");
        let packages = fs::read(fixture.join("Packages")).unwrap();
        let mut gz = Vec::new();
        std::io::copy(
            &mut flate2::read::GzEncoder::new(&packages[..], flate2::Compression::default()),
            &mut gz,
        )
        .unwrap();
        write(&m.join("main/binary-amd64/Packages.gz"), &gz).unwrap();
        for file in String::from_utf8_lossy(&packages)
            .lines()
            .filter_map(|l| l.strip_prefix("Filename: "))
        {
            write(&tmp.path().join("m").join(file), file).unwrap();
        }
        let release = format!(
            "Suite: oldstable\nCodename: bookworm\nComponents: main contrib\nSHA256:\n {} {} main/binary-amd64/Packages.gz",
            super::super::key::sha256_hex(&gz),
            gz.len()
        );
        write(
            &m.join("InRelease"),
            format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{release}\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n"),
        )
        .unwrap();
        let req = Request {
            work: tmp.path().join("work"),
            base: format!("file://{}/m/", tmp.path().display()),
            release: "bookworm".into(),
            arch: "amd64".into(),
            components: "main".into(),
            include: String::new(),
            extra_args: "--no-check-gpg --include=curl".into(),
            keyring: String::new(),
            scripts_dir: fixture.join("scripts"),
        };
        let got = prepare(&req).unwrap();
        assert_eq!(got.components, ["main"]);
        assert_eq!(got.packages, 9);
        assert!(!got.base.ends_with('/'));
        assert_eq!(
            fs::read_to_string(req.work.join("index/Release")).unwrap(),
            release
        );
        assert_eq!(fs::read(req.work.join("index/main")).unwrap(), packages);
        let local = fs::read_to_string(req.work.join("mirror/dists/bookworm/Release")).unwrap();
        assert!(
            local.starts_with(
                "Suite: oldstable\nCodename: bookworm\nComponents: main contrib\nSHA256:\n "
            ),
            "{local}"
        );
        let cut = fs::read_to_string(
            req.work
                .join("mirror/dists/bookworm/main/binary-amd64/Packages"),
        )
        .unwrap();
        assert_eq!(cut.matches("Package: ").count(), 9);

        let cache = tmp.path().join("cache");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("base-files_12.4_amd64.deb"), "").unwrap();
        let debs = missing_debs(
            &req.work,
            "bookworm",
            "amd64",
            &got.components,
            &got.base,
            &cache,
            &["base-files", "libc6", "curl"],
        )
        .unwrap();
        let names: Vec<&str> = debs.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(names, ["curl_7.88_amd64.deb", "libc6_1%3a2.36-9_amd64.deb"]);
        assert!(
            debs[1]
                .1
                .ends_with("/m/pool/main/g/glibc/libc6_2.36-9_amd64.deb"),
            "{debs:?}"
        );

        fetch_debs(&cache, &debs).unwrap();
        let mut names: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "base-files_12.4_amd64.deb",
                "curl_7.88_amd64.deb",
                "libc6_1%3a2.36-9_amd64.deb"
            ],
            "fetched under debootstrap's names, nothing staged left behind"
        );

        // A corrupt index is not used.
        write(&m.join("main/binary-amd64/Packages.gz"), "corrupt").unwrap();
        let err = prepare(&req).unwrap_err();
        assert!(err.0.contains("no checked index"), "{err}");
    }
}
