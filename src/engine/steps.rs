//! The build as one list of steps. [`steps`] makes the list from the options and the plan;
//! `--dry-run` prints it ([`render`]) and [`super::run`] executes it, so what the dry run
//! shows is what the build does. Each step says in words what it will do ([`Step::describe`])
//! and which stage function does it ([`Step::run`]).

use std::fmt::Write as _;

use super::context::Build;
use super::disk;
use super::options::{Library, Options, OutputType};
use super::stages::{cache, chroot, export, host, image, phase, prepare};
use crate::element::model::Phase;
use crate::error::Failure;
use crate::order::plan::{INSTALL_TYPE_ENV, Plan};

/// One step of a build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Root, host tools, free space, outputs absent.
    Preflight,
    /// The build directory (on a tmpfs when allowed) and the log.
    Workspace,
    /// The hooks tree, the embedded elements written out, the hooks' environment.
    Assemble,
    /// A phase's hooks, listed from the hooks tree when it starts; skipped when its tree came
    /// from the build cache.
    Phase(Phase),
    /// The build cache's keys from the tree extra-data.d left; the latest cached tree whose
    /// key matches replaces the tree.
    CacheLookup,
    /// The disk image this image's last build kept, copied beside root.d in case the
    /// lookup finds its key again.
    CachePrefetch,
    /// The tree at a point kept in the build cache.
    CacheSave(cache::Point),
    /// With the build cache, install.d runs in two parts: its hooks before the first of an
    /// element of the user's (`true`), then the rest.
    InstallPart(bool),
    /// root.d must have made a root filesystem.
    CheckRoot,
    /// resolv.conf, proc/sys/dev, dib's install-type environment file.
    EnterChroot,
    /// The hooks tree, read-only, at /tmp/in_target.d.
    BindHooks,
    UnbindHooks,
    /// `-p`: install-packages in the chroot.
    InstallPackages,
    /// Chroot mounts released, the tree moved aside for the disk image.
    MoveTreeAside,
    /// The disk image made, mounted where the tree was, the tree copied in.
    CreateDisk,
    /// A tar build makes no disk: block-device.d does not run.
    SkipBlockDevice,
    /// The image's resolv.conf back, every chroot mount released.
    LeaveChroot,
    /// /tmp emptied, logs truncated.
    Scrub,
    /// FAT filled, filesystems trimmed and unmounted, devices detached.
    ReleaseImage,
    /// An output written under a temporary name, then renamed.
    Write(OutputType),
    /// The manifest.
    Manifest,
}

/// The steps of a build, in order.
#[must_use]
pub fn steps(opts: &Options) -> Vec<Step> {
    let mut s = vec![Step::Preflight, Step::Workspace, Step::Assemble];
    if disk_cached(opts) {
        s.push(Step::CachePrefetch);
    }
    s.extend([
        Step::Phase(Phase::RootD),
        Step::CheckRoot,
        Step::EnterChroot,
        Step::Phase(Phase::ExtraDataD),
    ]);
    let cache = opts.build_cache;
    if cache {
        s.push(Step::CacheLookup);
    }
    s.extend([Step::BindHooks, Step::Phase(Phase::PreInstallD)]);
    if cache {
        s.extend([
            Step::InstallPart(true),
            Step::CacheSave(cache::Point::InstallHead),
            Step::InstallPart(false),
        ]);
    } else {
        s.push(Step::Phase(Phase::InstallD));
    }
    if !opts.packages.is_empty() {
        s.push(Step::InstallPackages);
    }
    if cache {
        s.push(Step::CacheSave(cache::Point::Install));
    }
    s.extend([
        Step::Phase(Phase::PostInstallD),
        Step::UnbindHooks,
        Step::Phase(Phase::PostRootD),
    ]);
    if cache {
        s.push(Step::CacheSave(cache::Point::PostRoot));
    }
    if opts.wants_disk() {
        s.extend([
            Step::MoveTreeAside,
            Step::Phase(Phase::BlockDeviceD),
            Step::CreateDisk,
        ]);
    } else {
        s.push(Step::SkipBlockDevice);
    }
    s.extend([
        Step::Phase(Phase::PreFinaliseD),
        Step::BindHooks,
        Step::Phase(Phase::FinaliseD),
        Step::UnbindHooks,
        Step::Phase(Phase::CleanupD),
        Step::LeaveChroot,
        Step::Scrub,
    ]);
    // The tar is written from the image's own filesystems while they are mounted.
    s.extend(
        opts.types
            .iter()
            .filter(|t| !t.is_disk())
            .map(|t| Step::Write(*t)),
    );
    if opts.wants_disk() {
        s.push(Step::ReleaseImage);
    }
    s.extend(
        opts.types
            .iter()
            .filter(|t| t.is_disk())
            .map(|t| Step::Write(*t)),
    );
    s.push(Step::Manifest);
    s
}

impl Step {
    /// What the step does, in words, with the settings it uses.
    #[must_use]
    pub fn describe(&self, opts: &Options, plan: &Plan) -> String {
        match self {
            Step::Preflight => match opts.tmpfs_min_gib() {
                Some(_) => "preflight: root, host tools, outputs absent (or --force)".to_owned(),
                None => "preflight: root, host tools, 2 GiB free, outputs absent (or --force); build directory on disk".to_owned(),
            },
            Step::Workspace => match opts.tmpfs_min_gib() {
                Some(gib) => format!(
                    "build directory on a tmpfs with {gib} GiB of RAM or more (else on disk, 2 GiB free)"
                ),
                None => "make the build directory and the log".to_owned(),
            },
            Step::Assemble => {
                let library = match &opts.library {
                    Library::Embedded => "the embedded elements written out",
                    Library::Dir(_) => "the --builtins directory",
                    Library::None => "nothing else (--builtins none)",
                };
                format!(
                    "assemble the hooks tree; write built-in elements out for IMAGE_ELEMENT_YAML; export ELEMENTS_PATH (the user's entries, then {library}), DIB_DEFAULT_INSTALLTYPE={}, DIB_OFFLINE={}, DIB_DEBUG_TRACE={}",
                    opts.default_install_type, opts.offline, opts.debug_trace
                )
            }
            Step::Phase(p) => describe_phase(*p, opts, plan),
            Step::CheckRoot => {
                "check that root.d left a root filesystem in the image root".to_owned()
            }
            Step::CacheLookup => format!(
                "build cache (dibkit-build in the image cache, {} GiB at most): hash the tree and hooks tree root.d and extra-data.d left, the chroot's environment and the settings; key pre-install.d, install.d's hooks before the user's, the rest of install.d (with -p), post-install.d, post-root.d (with the host environment){} on them and their own hooks; reuse the latest kept {}whose key matches and skip the phases up to it (the build log says which and why)",
                opts.cache_max_gib,
                if disk_cached(opts) { " and the disk image (with the layout)" } else { "" },
                if disk_cached(opts) { "disk image or tree " } else { "tree " },
            ),
            Step::CachePrefetch => "build cache: start copying the disk image this image's last build kept into the image directory while root.d and extra-data.d run (attached if the lookup finds its key, dropped otherwise)".to_owned(),
            Step::CacheSave(p) => format!(
                "build cache: keep the tree after {} under its key (unless it came from the cache, or the hooks since the last point ran in under {} s)",
                p.name(),
                opts.cache_keep_seconds
            ),
            Step::InstallPart(head) => {
                let phase = describe_phase(Phase::InstallD, opts, plan);
                if *head {
                    format!(
                        "{phase}; in two parts with the build cache: first the hooks before the first of an element of the user's"
                    )
                } else {
                    "install.d, second part: the rest of its hooks, from the first of an element of the user's".to_owned()
                }
            }
            Step::EnterChroot => format!(
                "swap in the host's resolv.conf; mount proc, sys, dev, dev/pts; write environment.d/{INSTALL_TYPE_ENV}"
            ),
            Step::BindHooks => "bind the hooks tree read-only at /tmp/in_target.d".to_owned(),
            Step::UnbindHooks => "unmount /tmp/in_target.d".to_owned(),
            Step::InstallPackages => format!("install-packages {}", opts.packages.join(" ")),
            Step::MoveTreeAside => "unmount proc/sys/dev; move the tree aside".to_owned(),
            Step::CreateDisk => {
                let d = opts.disk.as_ref().expect("disk builds have a disk configuration");
                let fill = if disk::made_from_tree(&d.config).is_some() {
                    "make its filesystem from the tree (mke2fs -d)"
                } else {
                    "copy the tree in"
                };
                let cached = if disk_cached(opts) {
                    "; build cache: attach a copy of the kept disk image when its key matches (new filesystem UUIDs and partition-table identifiers), else keep the one made before mounting it (on an image's first build, or one whose inputs are its last build's)"
                } else {
                    ""
                };
                format!(
                    "create the disk image (layout below; FS_TYPE={}) sized {}; write /etc/fstab, {fill}, mount proc, sys, dev, dev/pts; export IMAGE_BLOCK_DEVICE(S){cached}",
                    d.fs_type,
                    disk::size_description(d, plan)
                )
            }
            Step::SkipBlockDevice => {
                "block-device.d: skipped (no disk image in a tar build)".to_owned()
            }
            Step::LeaveChroot => {
                "restore resolv.conf; unmount everything below the build directory".to_owned()
            }
            Step::Scrub => "empty /tmp, truncate /var/log".to_owned(),
            Step::ReleaseImage => "copy FAT mount points (e.g. /boot/efi) into their filesystems with mtools when the host cannot mount FAT; fstrim and unmount the image's filesystems, remove the partition devices, detach the loop device".to_owned(),
            Step::Write(t) => {
                let how = match t.disk_format() {
                    Some(format) => format!(
                        "{} to a temporary name, then rename",
                        disk::convert_description(
                            format,
                            opts.compress,
                            opts.qemu_img_options.as_deref(),
                            opts.build_cache
                        )
                    ),
                    None => "temporary name, then rename".to_owned(),
                };
                format!("write {} ({how})", opts.output_path(t.name()).display())
            }
            Step::Manifest => format!(
                "write {} and {}",
                opts.manifest_path().display(),
                opts.log.display()
            ),
        }
    }

    /// Does the step.
    pub fn run(&self, b: &mut Build<'_>) -> Result<(), Failure> {
        match self {
            Step::Preflight => host::preflight(b),
            Step::Workspace => host::workspace(b),
            Step::Assemble => prepare::assemble(b),
            Step::Phase(p) if b.cache.covers(*p) => {
                b.log_line(&format!("{}: reused from the build cache", p.dir()));
                Ok(())
            }
            Step::Phase(p) => phase::run(b, *p).map(|_| ()),
            Step::CacheLookup => cache::lookup(b),
            Step::CachePrefetch => cache::prefetch(b),
            Step::CacheSave(p) => cache::save(b, *p),
            Step::InstallPart(head) if b.cache.covers_point(part_point(*head)) => {
                b.log_line(&format!(
                    "install.d{}: reused from the build cache",
                    if *head {
                        " (before the user's hooks)"
                    } else {
                        ""
                    }
                ));
                Ok(())
            }
            Step::InstallPart(head) => phase::run_part(b, Phase::InstallD, Some(*head)).map(|_| ()),
            Step::InstallPackages if b.cache.covers(Phase::InstallD) => {
                b.log_line("install-packages (-p): reused from the build cache");
                Ok(())
            }
            Step::CheckRoot => chroot::check_root(b),
            Step::EnterChroot => chroot::enter(b),
            Step::BindHooks => chroot::bind_hooks(b),
            Step::UnbindHooks => chroot::unbind_hooks(b),
            Step::InstallPackages => chroot::install_packages(b),
            Step::MoveTreeAside => image::move_tree_aside(b),
            Step::CreateDisk => image::create(b),
            Step::SkipBlockDevice => {
                image::skip_block_device(b);
                Ok(())
            }
            Step::LeaveChroot => chroot::leave(b),
            Step::Scrub => {
                chroot::scrub(b);
                Ok(())
            }
            Step::ReleaseImage => image::release(b),
            Step::Write(t) => export::write(b, *t),
            Step::Manifest => export::manifest(b),
        }
    }
}

/// The point an install.d part ends at.
fn part_point(head: bool) -> cache::Point {
    if head {
        cache::Point::InstallHead
    } else {
        cache::Point::Install
    }
}

/// Whether the build cache may keep the disk image (the layout allows it).
fn disk_cached(opts: &Options) -> bool {
    opts.build_cache
        && opts.wants_disk()
        && opts
            .disk
            .as_ref()
            .is_some_and(|d| disk::reattachable(&d.config))
}

fn describe_phase(p: Phase, opts: &Options, plan: &Plan) -> String {
    let planned = plan.phases.iter().find(|x| x.phase == p);
    let names: Vec<String> = planned
        .map(|x| {
            x.scripts
                .iter()
                .map(|s| format!("{} ({})", s.name, s.element))
                .collect()
        })
        .unwrap_or_default();
    if !planned.is_some_and(|x| x.exists) {
        return format!("{}: no element has it", p.dir());
    }
    let place = if p.chroot() {
        "in chroot"
    } else {
        "on the host"
    };
    let scripts = if names.is_empty() {
        "(no scripts)".to_owned()
    } else {
        names.join(", ")
    };
    let regex = if opts.run_parts.is_default() {
        String::new()
    } else {
        format!(
            " (RUN_PARTS_REGEX={}, the hooks tree decides)",
            opts.run_parts.as_str()
        )
    };
    format!("{} {place}: {scripts}{regex}", p.dir())
}

/// The dry run: the build's name and types, then one line per step.
#[must_use]
pub fn render(steps: &[Step], opts: &Options, plan: &Plan) -> String {
    let types: Vec<&str> = opts.types.iter().map(|t| t.name()).collect();
    let mut s = format!("build {} ({})\n", opts.image_name(), types.join(", "));
    for step in steps {
        let _ = writeln!(s, "  - {}", step.describe(opts, plan));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::expand;
    use crate::element::discover::{self, Builtins};
    use crate::engine::options::DiskOptions;
    use crate::engine::stages::host::tests::options;

    fn plan(elements: &[&str]) -> Plan {
        let mut lib = discover::discover(&[], &Builtins::Embedded).unwrap();
        let args: Vec<String> = elements.iter().map(|s| (*s).to_owned()).collect();
        let request = expand::form_request(&args, false, "amd64");
        let outcome = expand::expand(&request, &mut lib).unwrap();
        crate::order::simulate::plan(&lib, &outcome).unwrap()
    }

    fn disk() -> DiskOptions {
        DiskOptions {
            origin: "test".to_owned(),
            config: crate::blockdev::config::parse(crate::blockdev::config::FALLBACK).unwrap(),
            fs_type: "ext4".to_owned(),
            size_gib: None,
            extra_size_mib: Some(512.0),
            journal_mib: 64,
        }
    }

    /// The dry run is the step list: one line per step, in order, each with its own
    /// description, for tar and disk builds, with and without `-p` and tmpfs.
    #[test]
    fn the_dry_run_prints_each_step_the_build_runs() {
        let plan = plan(&["debian-minimal", "vm"]);
        let mut seen: Vec<std::mem::Discriminant<Step>> = Vec::new();
        let mut cases = Vec::new();
        let mut o = options();
        cases.push(o.clone());
        o.types = vec![OutputType::Qcow2, OutputType::Tar, OutputType::Raw];
        o.disk = Some(disk());
        o.packages = vec!["vim".to_owned()];
        o.tmpfs = None;
        cases.push(o);
        for opts in &cases {
            let steps = steps(opts);
            let text = render(&steps, opts, &plan);
            let lines: Vec<&str> = text.lines().skip(1).collect();
            assert_eq!(lines.len(), steps.len(), "{text}");
            for (step, line) in steps.iter().zip(&lines) {
                let described = step.describe(opts, &plan);
                assert!(!described.trim().is_empty(), "{step:?} has no description");
                assert_eq!(*line, format!("  - {described}"));
                let d = std::mem::discriminant(step);
                if !seen.contains(&d) {
                    seen.push(d);
                }
            }
            assert_eq!(steps.first(), Some(&Step::Preflight));
            assert_eq!(steps.last(), Some(&Step::Manifest));
        }
        // Every kind of step occurs in one of the cases (17 kinds).
        assert_eq!(seen.len(), 17, "{seen:?}");
        let disk_steps = steps(&cases[1]);
        let written: Vec<&Step> = disk_steps
            .iter()
            .filter(|s| matches!(s, Step::Write(_) | Step::ReleaseImage))
            .collect();
        assert_eq!(
            written,
            [
                &Step::Write(OutputType::Tar),
                &Step::ReleaseImage,
                &Step::Write(OutputType::Qcow2),
                &Step::Write(OutputType::Raw)
            ]
        );
        assert!(render(&disk_steps, &cases[1], &plan).contains(
            "sized the tree's size plus 512 MiB (DIB_IMAGE_EXTRA_SIZE) + 64 MiB ext4 journal"
        ));
    }

    /// With the build cache, its lookup comes after extra-data.d (root.d and extra-data.d
    /// always run); install.d runs in two parts, and the tree may be kept between them,
    /// after install.d and `-p`, and after post-root.d; --no-cache has none of these steps.
    #[test]
    fn the_build_cache_steps_sit_between_the_phases_they_key() {
        let plan = plan(&["debian-minimal"]);
        let mut o = options();
        o.packages = vec!["vim".to_owned()];
        assert!(
            !steps(&o)
                .iter()
                .any(|s| matches!(s, Step::CacheLookup | Step::CacheSave(_)))
        );
        o.build_cache = true;
        let s = steps(&o);
        let at = |step: Step| s.iter().position(|x| *x == step).unwrap();
        assert_eq!(
            at(Step::CacheLookup),
            at(Step::Phase(Phase::ExtraDataD)) + 1
        );
        // install.d runs in two parts, with a keep point between them.
        assert!(!s.contains(&Step::Phase(Phase::InstallD)));
        assert_eq!(
            &s[at(Step::Phase(Phase::PreInstallD))..at(Step::InstallPackages)],
            [
                Step::Phase(Phase::PreInstallD),
                Step::InstallPart(true),
                Step::CacheSave(cache::Point::InstallHead),
                Step::InstallPart(false),
            ]
        );
        assert_eq!(
            at(Step::CacheSave(cache::Point::Install)),
            at(Step::InstallPackages) + 1
        );
        assert_eq!(
            at(Step::CacheSave(cache::Point::PostRoot)),
            at(Step::Phase(Phase::PostRootD)) + 1
        );
        let text = render(&s, &o, &plan);
        assert!(
            text.contains(
                "  - build cache (dibkit-build in the image cache, 20 GiB at most): hash the tree"
            ),
            "{text}"
        );
        assert!(text.contains(
            "  - build cache: keep the tree after install.d under its key (unless it came from the cache, or the hooks since the last point ran in under 3 s)"
        ), "{text}");
    }
}
