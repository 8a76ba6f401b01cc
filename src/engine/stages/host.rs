//! The host side before and after the build: preflight (checked before anything is
//! touched), the build directory (a tmpfs when allowed, as dib), and the teardown that
//! releases everything on every path out.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

use crate::blockdev::config::Kind;
use crate::engine::context::{Build, Paths};
use crate::engine::options::Options;
use crate::engine::{stale, sys};
use crate::error::Failure;
use crate::order::plan::Plan;

/// Host tools a build needs, with the Debian package that has each.
fn required_tools(plan: &Plan, opts: &Options) -> Vec<(&'static str, &'static str)> {
    let mut tools = vec![("tar", "tar"), ("bash", "bash"), ("find", "findutils")];
    if plan.elements.iter().any(|e| e.name == "debootstrap") {
        tools.push(("debootstrap", "debootstrap"));
    }
    // yum-minimal bootstraps the tree with the host's dnf (its `download` command is in
    // dnf-plugins-core) and rpm.
    if plan.elements.iter().any(|e| e.name == "yum-minimal") {
        tools.extend([
            ("dnf", "dnf"),
            ("rpm", "rpm"),
            (DNF_DOWNLOAD, "dnf-plugins-core"),
        ]);
    }
    if plan
        .elements
        .iter()
        .any(|e| crate::extract::USED_BY.contains(&e.name.as_str()))
    {
        tools.extend(crate::extract::HOST_TOOLS);
    }
    if opts.wants_disk() {
        tools.extend([
            ("losetup", "mount"),
            ("partx", "util-linux"),
            ("sfdisk", "fdisk"),
            ("mkfs.ext4", "e2fsprogs"),
            ("qemu-img", "qemu-utils"),
        ]);
    }
    let fat = opts.disk.as_ref().is_some_and(|d| {
        d.config.nodes.iter().any(
            |n| matches!(&n.kind, Kind::Mkfs { fstype, .. } if crate::engine::disk::is_fat(fstype)),
        )
    });
    if fat {
        tools.extend([("mkfs.vfat", "dosfstools"), ("mcopy", "mtools")]);
    }
    if opts.build_cache {
        // The build cache's trees are zstd-compressed tarballs.
        tools.push(("zstd", "zstd"));
    }
    let mut seen = std::collections::HashSet::new();
    tools.retain(|(tool, _)| seen.insert(*tool));
    tools
}

/// `dnf download`: a plugin of dnf's, not a program of its own.
const DNF_DOWNLOAD: &str = "dnf download";

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether the host has `tool`: a program on PATH, or for `dnf download`, dnf with its
/// download plugin in some Python's `dnf-plugins` directory.
fn available(tool: &str) -> bool {
    if tool == DNF_DOWNLOAD {
        return on_path("dnf") && dnf_plugin_present(Path::new("/usr"), "download.py");
    }
    on_path(tool)
}

/// Whether `usr/lib*/python3*/{dist,site}-packages/dnf-plugins/NAME` exists.
fn dnf_plugin_present(usr: &Path, name: &str) -> bool {
    let Ok(libs) = fs::read_dir(usr) else {
        return false;
    };
    libs.filter_map(Result::ok)
        .filter(|l| l.file_name().to_string_lossy().starts_with("lib"))
        .filter_map(|l| fs::read_dir(l.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|py| py.file_name().to_string_lossy().starts_with("python3"))
        .any(|py| {
            ["dist-packages", "site-packages"]
                .iter()
                .any(|d| py.path().join(d).join("dnf-plugins").join(name).is_file())
        })
}

/// The preflight message for missing host tools: each tool, and one `apt-get install` line
/// with each package once.
fn missing_tools_message(missing: &[(&str, &str)]) -> String {
    let tools: Vec<&str> = missing.iter().map(|m| m.0).collect();
    let mut pkgs: Vec<&str> = Vec::new();
    for (_, p) in missing {
        if !pkgs.contains(p) {
            pkgs.push(p);
        }
    }
    format!(
        "missing host tools: {}; install them with `apt-get install {}`",
        tools.join(", "),
        pkgs.join(" ")
    )
}

/// Checks everything that can be checked before touching the host: outputs in the way,
/// root, host tools, and (for a build on disk) free space.
pub fn preflight(b: &mut Build<'_>) -> Result<(), Failure> {
    let opts = &b.opts;
    if !opts.force {
        for t in &opts.types {
            let p = opts.output_path(t.name());
            if p.exists() {
                return Err(Failure::preflight(format!(
                    "{} exists; pass --force to replace it",
                    p.display()
                )));
            }
        }
    }
    if !sys::proc::is_root() {
        return Err(Failure::preflight(
            "dibkit build must run as root (it mounts filesystems and enters a chroot)",
        ));
    }
    let missing: Vec<(&str, &str)> = required_tools(&b.plan, opts)
        .into_iter()
        .filter(|(t, _)| !available(t))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::preflight(missing_tools_message(&missing)));
    }
    if tmpfs_allowed(opts, mem_total_kib()).is_ok() {
        return Ok(());
    }
    disk_space(&opts.tmp_dir)
}

/// A build on disk needs 2 GiB free in `tmp`.
fn disk_space(tmp: &Path) -> Result<(), Failure> {
    let free = sys::fs::free_bytes(tmp)?;
    let need = 2 * 1024 * 1024 * 1024u64;
    if free < need {
        return Err(Failure::preflight(format!(
            "only {} MiB free in {}; a build needs at least {} MiB (set TMPDIR to a roomier place)",
            free / 1024 / 1024,
            tmp.display(),
            need / 1024 / 1024
        )));
    }
    Ok(())
}

/// Makes the build directory (a tmpfs when allowed) and opens the log.
pub fn workspace(b: &mut Build<'_>) -> Result<(), Failure> {
    // Builds killed without a chance to clean up (SIGKILL) left mounts and loop devices.
    for released in stale::release_dead() {
        b.step(&released.to_string());
    }
    let tmp = b.opts.tmp_dir.clone();
    let workdir = tempfile::Builder::new()
        .prefix(stale::BUILD_DIR_PREFIX)
        .tempdir_in(&tmp)
        .with_context(|| format!("creating the build directory in {}", tmp.display()))?
        .keep();
    // Mount points are compared with /proc/self/mountinfo, which has canonical paths.
    let workdir = fs::canonicalize(&workdir).unwrap_or(workdir);
    // Registered before anything is mounted in it, so a later run can release it.
    match stale::Registration::new(&workdir) {
        Ok(r) => b.registration = Some(r),
        Err(e) => b.step(&format!(
            "not registered as a running build ({e:#}): if it is killed, its mounts stay"
        )),
    }
    let paths = Paths::new(workdir);
    // From here on teardown removes the build directory.
    b.paths = Some(paths.clone());
    let log = File::create(&b.opts.log)
        .with_context(|| format!("creating log {}", b.opts.log.display()))?;
    b.log
        .open(log)
        .with_context(|| format!("writing log {}", b.opts.log.display()))?;
    if let Some(d) = &b.opts.disk {
        let line = format!("block-device configuration from {}", d.origin);
        b.log_line(&line);
    }
    match tmpfs_allowed(&b.opts, mem_total_kib()) {
        Ok(()) => {
            // A tmpfs that cannot be mounted leaves the build on disk, which preflight did
            // not check.
            if let Some((note, on_disk)) =
                use_tmpfs(&paths.build, &paths.image_dir, b.opts.tmpfs_size.as_deref())
            {
                b.step(&note);
                if on_disk {
                    disk_space(&tmp)?;
                }
            }
        }
        Err(Some(note)) => b.step(&note),
        Err(None) => {}
    }
    Ok(())
}

/// Puts the build directory on a tmpfs, as dib does; like dib, two of them, each up to half
/// the RAM: the build directory and, in it, the image directory. When a mount fails, returns
/// what to tell the user and whether the build is on disk (the first mount failed).
fn use_tmpfs(workdir: &Path, image_dir: &Path, size: Option<&str>) -> Option<(String, bool)> {
    if let Err(e) = sys::mount::tmpfs(workdir, size) {
        return Some((format!("building on disk: {e:#}"), true));
    }
    fs::create_dir_all(image_dir)
        .with_context(|| format!("creating {}", image_dir.display()))
        .and_then(|()| sys::mount::tmpfs(image_dir, size))
        .err()
        .map(|e| {
            (
                format!("the image directory shares the build directory's tmpfs: {e:#}"),
                false,
            )
        })
}

/// Whether the build directory is to be a tmpfs on a machine with `mem_kib` of RAM; if not,
/// why (`None`: the user said so).
pub(crate) fn tmpfs_allowed(opts: &Options, mem_kib: Option<u64>) -> Result<(), Option<String>> {
    let need_gib = opts.tmpfs_min_gib().ok_or(None)?;
    let total_gib = mem_kib.unwrap_or(0) / 1024 / 1024;
    if total_gib < need_gib {
        return Err(Some(format!(
            "building on disk: {total_gib} GiB of RAM, a tmpfs build directory needs {need_gib} GiB (--min-tmpfs)"
        )));
    }
    Ok(())
}

/// `MemTotal` from /proc/meminfo, in KiB.
fn mem_total_kib() -> Option<u64> {
    fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Unmounts everything (the ledger first, then anything a hook left below the build
/// directory) and removes the workspace unless it is kept for debugging.
pub fn teardown(b: &mut Build<'_>, keep: bool) -> Result<()> {
    let mut problems = Vec::new();
    if let Err(e) = b.ledger.release_all(&mut b.log) {
        problems.push(format!("{e:#}"));
    }
    b.image = None;
    let Some(paths) = b.paths.clone() else {
        return Ok(()); // The build directory was never made.
    };
    let left = sys::mount::sweep(&paths.build);
    if !left.is_empty() {
        problems.push(format!("could not unmount {left:?}"));
    }
    if !keep {
        // Never delete through a mount: only when nothing is mounted below the workspace.
        if sys::mount::mounts_below(&paths.build).is_empty() {
            if let Err(e) = fs::remove_dir_all(&paths.build) {
                problems.push(format!("removing {}: {e}", paths.build.display()));
            }
        } else {
            problems.push(format!(
                "left {} in place: something is still mounted in it",
                paths.build.display()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(problems.join("; ")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::engine::options::{Library, Options, OutputType};
    use crate::order::tree::NameFilter;

    pub(crate) fn options() -> Options {
        Options {
            elements: Vec::new(),
            output: "img".into(),
            types: vec![OutputType::Tar],
            arch: "amd64".to_owned(),
            debug_trace: 0,
            packages: Vec::new(),
            offline: String::new(),
            dib_env: Vec::new(),
            default_install_type: "source".to_owned(),
            image_cache: "/cache".into(),
            tmp_dir: "/tmp".into(),
            log: "img.log".into(),
            checksum: false,
            compress: true,
            qemu_img_options: None,
            keep_on_error: false,
            tmpfs: Some(4),
            records_dir: None,
            tmpfs_size: None,
            force: false,
            elements_path: Vec::new(),
            library: Library::Embedded,
            run_parts: NameFilter::default(),
            disk: None,
            build_cache: false,
            cache_max_gib: 20.0,
            cache_keep_seconds: 3.0,
        }
    }

    fn plan(elements: &[&str]) -> crate::order::plan::Plan {
        use crate::deps::expand;
        use crate::element::discover::{self, Builtins};
        let mut lib = discover::discover(&[], &Builtins::Embedded).unwrap();
        let args: Vec<String> = elements.iter().map(|s| (*s).to_owned()).collect();
        let request = expand::form_request(&args, false, "amd64");
        let outcome = expand::expand(&request, &mut lib).unwrap();
        crate::order::simulate::plan(&lib, &outcome).unwrap()
    }

    #[test]
    fn yum_minimal_needs_dnf_rpm_and_dnf_download_from_their_debian_packages() {
        let tools = super::required_tools(&plan(&["fedora-minimal"]), &options());
        for t in [
            ("dnf", "dnf"),
            ("rpm", "rpm"),
            ("dnf download", "dnf-plugins-core"),
        ] {
            assert!(tools.contains(&t), "{t:?} not in {tools:?}");
        }
        let debian = super::required_tools(&plan(&["debian-minimal"]), &options());
        assert!(
            !debian
                .iter()
                .any(|t| t.0.starts_with("dnf") || t.0 == "rpm")
        );
        assert_eq!(
            super::missing_tools_message(&[
                ("dnf", "dnf"),
                ("rpm", "rpm"),
                ("dnf download", "dnf-plugins-core"),
                ("bash", "bash"),
                ("find", "findutils"),
                ("mkfs.ext4", "e2fsprogs"),
                ("mkfs.vfat", "dosfstools"),
                ("mcopy", "mtools"),
                ("mkfs.vfat", "dosfstools"),
            ]),
            "missing host tools: dnf, rpm, dnf download, bash, find, mkfs.ext4, mkfs.vfat, mcopy, mkfs.vfat; \
             install them with `apt-get install dnf rpm dnf-plugins-core bash findutils e2fsprogs dosfstools mtools`"
        );
    }

    #[test]
    fn dnf_download_is_found_in_any_pythons_plugin_directory() {
        let usr = tempfile::tempdir().unwrap();
        assert!(!super::dnf_plugin_present(usr.path(), "download.py"));
        let dir = usr.path().join("lib/python3.11/site-packages/dnf-plugins");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!super::dnf_plugin_present(usr.path(), "download.py"));
        std::fs::write(dir.join("download.py"), "").unwrap();
        assert!(super::dnf_plugin_present(usr.path(), "download.py"));
        let debian = tempfile::tempdir().unwrap();
        let dir = debian.path().join("lib/python3/dist-packages/dnf-plugins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("download.py"), "").unwrap();
        assert!(super::dnf_plugin_present(debian.path(), "download.py"));
    }

    #[test]
    fn tmpfs_needs_the_ram_and_no_kept_directory() {
        let mut opts = options();
        let gib = |n: u64| Some(n * 1024 * 1024);
        assert_eq!(super::tmpfs_allowed(&opts, gib(4)), Ok(()));
        assert_eq!(
            super::tmpfs_allowed(&opts, gib(3)),
            Err(Some(
                "building on disk: 3 GiB of RAM, a tmpfs build directory needs 4 GiB (--min-tmpfs)"
                    .to_owned()
            ))
        );
        assert_eq!(
            super::tmpfs_allowed(&opts, None),
            Err(Some(
                "building on disk: 0 GiB of RAM, a tmpfs build directory needs 4 GiB (--min-tmpfs)"
                    .to_owned()
            ))
        );
        opts.keep_on_error = true;
        assert_eq!(super::tmpfs_allowed(&opts, gib(64)), Err(None));
        opts.keep_on_error = false;
        opts.tmpfs = None;
        assert_eq!(super::tmpfs_allowed(&opts, gib(64)), Err(None));
    }
}
