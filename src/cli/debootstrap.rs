//! `dibkit debootstrap`: the debootstrap element's logic, called by its root.d hook (as
//! package-installs calls `dibkit packages`): the local cut-down index, the `.deb` files to
//! fetch, the cache key. Internal; the element's README describes what it does.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Parser, Subcommand};

use super::Failure;
use crate::debootstrap::{cache, kernels, key, run};

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Make a fresh tree with debootstrap: from the local cut-down index when asked and
    /// possible (the packages fetched into the `.deb` cache first), else from the mirror's
    /// own index, retried after a pause; each run from an empty root.
    ///
    /// Exit status: 0 made; 5 every run failed (the end of debootstrap's log on stderr); 2
    /// usage error.
    Bootstrap(Bootstrap),
    /// Print the state of the cached tree for these inputs (`usable`, `stale` or `absent`),
    /// its tarball's path (`.tar.zst` when zstd is on PATH, else `.tar.gz`) and the entry's
    /// lock file (held shared to read the tarball, exclusively to make it, with `flock`).
    /// What writers that died left in the cache's temporaries directory is removed first.
    ///
    /// Exit status: 0 printed; 1 a prepare script is missing (the reason on stderr); 2 usage
    /// error.
    CacheLookup(CacheLookup),
    /// Unpack a cached tree (one archive or two, one after the other) into the root.
    ///
    /// Exit status: 0 unpacked; 5 tar failed.
    Unpack {
        /// The tarball.
        #[arg(long, value_name = "FILE")]
        tarball: PathBuf,
        /// The tree.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
    },
    /// Pack a part of the tree onto the end of a temporary file, compressed as the cache
    /// tarball's name says; with --publish, then make it the tarball (mode 0644, synced,
    /// renamed) and evict the least recently used tarballs over the cache's size limit. The
    /// caller holds the entry's lock exclusively.
    ///
    /// Exit status: 0 packed; 5 tar, the compressor or the rename failed.
    Pack {
        /// The tree.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// The cache tarball the file becomes.
        #[arg(long, value_name = "FILE")]
        tarball: PathBuf,
        /// The temporary file packed into.
        #[arg(long, value_name = "FILE")]
        into: PathBuf,
        /// `all` (into an emptied file), `first` (all but /boot, /var/tmp,
        /// /var/lib/initramfs-tools and the mount points) or `rest` (those).
        #[arg(long, value_enum)]
        part: PackPart,
        /// Rename the file to the tarball when packed.
        #[arg(long)]
        publish: bool,
        /// The cache's size limit in GiB (`DIB_DEBOOTSTRAP_CACHE_MAX_GIB`), kept on publish.
        #[arg(long, value_name = "GIB", default_value_t = 10.0)]
        max_gib: f64,
    },
    /// Print the kernels in the tree's /boot without an initramfs, `VERSION IMAGE` a line;
    /// with --link or --run-hooks, do for them in the tree what their postinst skipped with
    /// INITRD=No.
    ///
    /// Exit status: 0 done; 5 linux-update-symlinks or a kernel hook failed.
    Kernels {
        /// The tree.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// Make their /initrd.img links (linux-update-symlinks), when the tree has it.
        #[arg(long)]
        link: bool,
        /// Run the kernel hooks (/etc/kernel/postinst.d) for each.
        #[arg(long)]
        run_hooks: bool,
    },
    /// Unmount the given mount points in reverse order (the last mounted first), lazily
    /// when busy; a failure is reported and the rest are still unmounted.
    ///
    /// Exit status: 0 all unmounted; 5 one could not be.
    Unmount {
        /// Mount points, in the order they were mounted.
        #[arg(value_name = "DIR")]
        mounts: Vec<PathBuf>,
    },
    /// Print the Debian architecture of a dib ARCH (`x86_64` → `amd64`, ...).
    Arch {
        /// dib's ARCH.
        arch: String,
    },
    /// Print the root.d script that keeps the tree from being prepared (one that runs
    /// between this script and the last prepare script and is not declared compatible) and
    /// that last prepare script; nothing when there is none.
    PrepareBlocker {
        /// The hooks tree's root.d directory.
        #[arg(long, value_name = "DIR")]
        root_d: PathBuf,
        /// The calling script's name.
        #[arg(long = "self", value_name = "NAME")]
        this: String,
        /// The prepare scripts, space-separated.
        #[arg(long, default_value = "")]
        prepare: String,
        /// The compatible scripts, space-separated.
        #[arg(long, default_value = "")]
        compatible: String,
    },
}

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct CacheKey {
    /// `DISTRO_NAME`.
    #[arg(long)]
    pub distro: String,
    /// The release.
    #[arg(long)]
    pub release: String,
    /// The Debian architecture.
    #[arg(long)]
    pub arch: String,
    /// The mirror; absent for debootstrap's default.
    #[arg(long)]
    pub mirror: Option<String>,
    /// Comma-separated components.
    #[arg(long, default_value = "")]
    pub components: String,
    /// debootstrap's variant.
    #[arg(long, default_value = "")]
    pub variant: String,
    /// Extra packages.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Extra debootstrap arguments.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub extra: String,
    /// The keyring.
    #[arg(long, default_value = "")]
    pub keyring: String,
    /// The debootstrap script.
    #[arg(long, default_value = "")]
    pub script: String,
    /// The caller's INITRD; absent when unset.
    #[arg(long)]
    pub initrd: Option<String>,
    /// The prepare scripts' names, space-separated.
    #[arg(long, default_value = "")]
    pub prepare: String,
    /// `DIB_DEBOOTSTRAP_PREPARE_KEY`.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub prepare_key: String,
    /// A script that runs on the tree before it is cached (repeatable, in order).
    #[arg(long = "prepare-script", value_name = "PATH")]
    pub prepare_scripts: Vec<PathBuf>,
}

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct Bootstrap {
    /// The tree (empty).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// `DISTRO_NAME`, for the messages.
    #[arg(long)]
    pub distro: String,
    /// The release.
    #[arg(long)]
    pub release: String,
    /// The Debian architecture.
    #[arg(long)]
    pub arch: String,
    /// The mirror; empty for debootstrap's default.
    #[arg(long, value_name = "URL", default_value = "")]
    pub mirror: String,
    /// Comma-separated components.
    #[arg(long, default_value = "main")]
    pub components: String,
    /// debootstrap's variant.
    #[arg(long, default_value = "minbase")]
    pub variant: String,
    /// Comma-separated extra packages (`--include`).
    #[arg(long, default_value = "")]
    pub include: String,
    /// `DIB_DEBOOTSTRAP_EXTRA_ARGS`.
    #[arg(
        long,
        value_name = "ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub extra_args: String,
    /// The keyring; empty for the release script's.
    #[arg(long, default_value = "")]
    pub keyring: String,
    /// The debootstrap script (needs --mirror).
    #[arg(long, default_value = "")]
    pub script: String,
    /// debootstrap's `--cache-dir` for the `.deb` files.
    #[arg(long, value_name = "DIR")]
    pub deb_cache: PathBuf,
    /// A scratch directory for the local index.
    #[arg(long, value_name = "DIR")]
    pub work: PathBuf,
    /// Try the local index first (`0` not to).
    #[arg(long, default_value = "1")]
    pub local_index: String,
    /// debootstrap's scripts directory.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/debootstrap/scripts"
    )]
    pub scripts_dir: PathBuf,
    /// Runs from the mirror before giving up.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Seconds between them.
    #[arg(long, default_value_t = 15)]
    pub pause: u64,
}

/// The part of the tree `pack` packs.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PackPart {
    All,
    First,
    Rest,
}

#[derive(Debug, Parser)]
#[command(help_expected = true)]
pub struct CacheLookup {
    /// The cache's directory (`$DIB_IMAGE_CACHE/debootstrap`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The hooks tree (the prepare scripts are its root.d scripts).
    #[arg(long, value_name = "DIR")]
    pub hooks: PathBuf,
    /// `DIB_DEBOOTSTRAP_PREPARE_INPUTS`: hooks-tree paths the prepare scripts run.
    #[arg(long, default_value = "")]
    pub prepare_inputs: String,
    /// `DIB_DEBOOTSTRAP_CACHE_MAX_AGE`, in days; 0 for any age.
    #[arg(long, default_value_t = 7)]
    pub max_age: u64,
    /// Any age will do (offline, or the cache forced).
    #[arg(long)]
    pub any_age: bool,
    /// The cache's size limit in GiB (`DIB_DEBOOTSTRAP_CACHE_MAX_GIB`).
    #[arg(long, value_name = "GIB", default_value_t = 10.0)]
    pub max_gib: f64,
    #[command(flatten)]
    pub key: CacheKey,
}

/// The key of a prepared tree, from the arguments and the scripts' contents.
fn cache_key(a: &CacheKey, scripts: &[PathBuf]) -> Result<String, Failure> {
    let mut contents = Vec::new();
    for p in scripts {
        contents.push(
            std::fs::read(p)
                .map_err(|e| Failure::usage(format!("reading {}: {e}", p.display()), None))?,
        );
    }
    let inputs = key::Inputs {
        distro: a.distro.clone(),
        release: a.release.clone(),
        arch: a.arch.clone(),
        mirror: a.mirror.clone(),
        components: a.components.clone(),
        variant: a.variant.clone(),
        include: a.include.clone(),
        extra: a.extra.clone(),
        keyring: a.keyring.clone(),
        script: a.script.clone(),
        initrd: a.initrd.clone(),
        prepare: a.prepare.split_whitespace().map(str::to_owned).collect(),
        prepare_key: a.prepare_key.clone(),
        scripts: contents,
    };
    Ok(key::key(&inputs))
}

/// Runs the subcommand.
///
/// # Errors
/// Usage and I/O errors (exit status 2).
pub fn run(args: &Args) -> Result<u8, Failure> {
    match &args.command {
        Sub::Arch { arch } => {
            println!("{}", crate::debootstrap::debian_arch(arch));
            Ok(0)
        }
        Sub::PrepareBlocker {
            root_d,
            this,
            prepare,
            compatible,
        } => {
            let list = std::fs::read_dir(root_d)
                .map_err(|e| Failure::usage(format!("reading {}: {e}", root_d.display()), None))?;
            let names: Vec<String> = list
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            if let Some(name) = crate::debootstrap::prepare_blocker(
                &names,
                this,
                &words(prepare),
                &words(compatible),
            ) {
                let final_script = words(prepare).into_iter().max().unwrap_or_default();
                println!("{name} {final_script}");
            }
            Ok(0)
        }
        Sub::Bootstrap(a) => {
            let plan = run::Plan {
                root: a.root.clone(),
                distro: a.distro.clone(),
                release: a.release.clone(),
                arch: a.arch.clone(),
                mirror: a.mirror.clone(),
                components: a.components.clone(),
                variant: a.variant.clone(),
                include: a.include.clone(),
                extra_args: a.extra_args.clone(),
                keyring: a.keyring.clone(),
                script: a.script.clone(),
                deb_cache: a.deb_cache.clone(),
                work: a.work.clone(),
                local_index: a.local_index != "0",
                scripts_dir: a.scripts_dir.clone(),
                attempts: a.attempts,
                pause: std::time::Duration::from_secs(a.pause),
            };
            run::bootstrap(&plan, &mut std::io::stdout(), &mut std::io::stderr())?;
            Ok(0)
        }
        Sub::CacheLookup(a) => {
            let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            let mut scripts = match crate::debootstrap::prepare_scripts(
                &a.hooks,
                &words(&a.key.prepare),
                &words(&a.prepare_inputs),
            ) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("debootstrap: {e}");
                    return Ok(1);
                }
            };
            scripts.extend(a.key.prepare_scripts.iter().cloned());
            let key = cache_key(&a.key, &scripts)?;
            let name = format!("{}-{}-{}-{key}", a.key.distro, a.key.release, a.key.arch);
            let compression = cache::Compression::available(std::env::var_os("PATH").as_deref());
            let tarball = cache::tarball(&a.dir, &name, compression);
            let store = cache::store(&a.dir, a.max_gib)?;
            store.sweep()?;
            let state = cache::lookup(&tarball, a.max_age, a.any_age, SystemTime::now());
            let entry = tarball
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!(
                "{} {} {}",
                state.word(),
                tarball.display(),
                store.lock_path(&entry).display()
            );
            Ok(0)
        }
        Sub::Unpack { tarball, root } => {
            cache::unpack(tarball, root)?;
            Ok(0)
        }
        Sub::Pack {
            root,
            tarball,
            into,
            part,
            publish,
            max_gib,
        } => {
            let part = match part {
                PackPart::All => cache::Part::All,
                PackPart::First => cache::Part::First,
                PackPart::Rest => cache::Part::Rest,
            };
            cache::pack(root, tarball, into, part)?;
            if *publish {
                cache::publish(into, tarball, *max_gib)?;
            }
            Ok(0)
        }
        Sub::Kernels {
            root,
            link,
            run_hooks,
        } => {
            let list = kernels::without_initrd(root);
            if *link {
                kernels::link(root, &list)?;
            }
            if *run_hooks {
                for (version, image) in &list {
                    println!("debootstrap: running the kernel hooks for {version}");
                    kernels::run_hooks(root, version, image)?;
                }
            }
            if !*link && !*run_hooks {
                for (version, image) in &list {
                    println!("{version} {image}");
                }
            }
            Ok(0)
        }
        Sub::Unmount { mounts } => {
            let mut code = 0;
            for m in mounts.iter().rev() {
                if let Err(e) = crate::engine::sys::mount::unmount(m) {
                    eprintln!("debootstrap: {e:#}");
                    code = crate::error::exit::MACHINERY;
                }
            }
            Ok(code)
        }
    }
}
