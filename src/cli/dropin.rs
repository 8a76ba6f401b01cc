//! The drop-in for dib's own commands, for engines that call them with fixed command lines
//! (nodepool-builder's `dib-cmd`, Zuul's build-diskimage role):
//! - `disk-image-create` (argv[0] of a symlink to dibkit, or `dibkit disk-image-create`):
//!   dib 3.43's options, parsed as its GNU getopt line does (clustered short options,
//!   abbreviated long ones, `--opt=value`, options after elements, `--`), unknown ones
//!   refused with getopt's message and dib's status 1; then `dibkit build`;
//! - `diskimage-builder`: image files, as `dibkit build --file`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::Failure;
use super::build::DibSettings;

/// dib 3.43's short options (`getopt -o a:ho:t:xucnp:`): the letter and whether it takes a
/// value.
const SHORT: &[(char, bool)] = &[
    ('a', true),
    ('h', false),
    ('o', true),
    ('t', true),
    ('x', false),
    ('u', false),
    ('c', false),
    ('n', false),
    ('p', true),
];

/// dib 3.43's long options (its `getopt -l` list), then dibkit's two additions: options dib's
/// option loop handles but its getopt line lacks, so dib refuses them.
const LONG: &[(&str, bool)] = &[
    ("checksum", false),
    ("no-tmpfs", false),
    ("offline", false),
    ("help", false),
    ("version", false),
    ("min-tmpfs", true),
    ("image-size", true),
    ("image-cache", true),
    ("max-online-resize", true),
    ("mkfs-options", true),
    ("qemu-img-options", true),
    ("ramdisk-element", true),
    ("root-label", true),
    ("install-type", true),
    ("docker-target", true),
    ("logfile", true),
    ("image-extra-size", true),
    ("mkfs-journal-size", true),
];

/// One option as getopt hands it to dib's loop: its name (`-o`, `--logfile`) and value.
pub type Opt = (String, Option<String>);

/// A getopt refusal, worded as GNU getopt words it.
fn getopt_error(message: &str) -> Failure {
    Failure::new(
        1,
        format!("disk-image-create: {message}"),
        Some("`dibkit disk-image-create --help` lists dib 3.43's options".to_owned()),
    )
    .with_note("Terminating... (exit status 1, as dib)")
}

/// Splits `argv` (without the program name) as `getopt -o a:ho:t:xucnp: -l ...` does:
/// options in order, and the positional arguments (GNU getopt permutes them to the end).
///
/// # Errors
/// An unknown or ambiguous option, a missing value, or a value given to a flag.
pub fn getopt(argv: &[String]) -> Result<(Vec<Opt>, Vec<String>), Failure> {
    let mut opts = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            positional.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let exact = LONG.iter().find(|(l, _)| *l == name);
            let matches: Vec<&(&str, bool)> =
                LONG.iter().filter(|(l, _)| l.starts_with(name)).collect();
            let (long, takes) = match (exact, matches.as_slice()) {
                (Some(e), _) => *e,
                (None, [e]) => **e,
                (None, []) => return Err(getopt_error(&format!("unrecognized option '{arg}'"))),
                (None, many) => {
                    let list: Vec<String> = many.iter().map(|(l, _)| format!("'--{l}'")).collect();
                    return Err(getopt_error(&format!(
                        "option '--{name}' is ambiguous; possibilities: {}",
                        list.join(" ")
                    )));
                }
            };
            let value = match (takes, inline) {
                (false, Some(_)) => {
                    return Err(getopt_error(&format!(
                        "option '--{long}' doesn't allow an argument"
                    )));
                }
                (false, None) => None,
                (true, Some(v)) => Some(v),
                (true, None) => {
                    let Some(v) = argv.get(i) else {
                        return Err(getopt_error(&format!(
                            "option '--{long}' requires an argument"
                        )));
                    };
                    i += 1;
                    Some(v.clone())
                }
            };
            opts.push((format!("--{long}"), value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg.chars().skip(1).collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some((_, takes)) = SHORT.iter().find(|(s, _)| *s == c) else {
                    return Err(getopt_error(&format!("invalid option -- '{c}'")));
                };
                if *takes {
                    let rest: String = chars[j..].iter().collect();
                    let value = if rest.is_empty() {
                        let Some(v) = argv.get(i) else {
                            return Err(getopt_error(&format!(
                                "option requires an argument -- '{c}'"
                            )));
                        };
                        i += 1;
                        v.clone()
                    } else {
                        rest
                    };
                    opts.push((format!("-{c}"), Some(value)));
                    break;
                }
                opts.push((format!("-{c}"), None));
            }
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((opts, positional))
}

/// What dib's `disk-image-create --help` lists, as dibkit builds it.
const HELP: &str = "\
Usage: disk-image-create [OPTION]... [ELEMENT]...

dibkit's drop-in for diskimage-builder 3.43's disk-image-create: the same options,
parsed as dib parses them, building with `dibkit build`.

Options:
    -a ARCH -- architecture of the image (default: $ARCH, else the host's)
    -o NAME -- output name without extension (default: image)
    -t TYPES -- comma-separated output types: qcow2 (default), raw, vhd, tar
    -x -- trace hooks (DIB_DEBUG_TRACE); repeat for more
    -u -- do not compress qcow2 images
    -c -- clear the environment before building (re-executes with an empty one)
    -n -- do not add the base element
    -p PACKAGES -- comma-separated packages to install after install.d (repeatable)
    -h, --help -- this text
    --version -- dibkit's version
    --checksum -- write .md5 and .sha256 files beside each output
    --no-tmpfs -- build on disk, not in a tmpfs
    --offline -- do not refresh caches from the network
    --min-tmpfs GB -- use a tmpfs only with twice this much RAM (default 2)
    --image-size GB -- image size (default: from the tree)
    --image-cache DIR -- cache directory (default: ~/.cache/image-create)
    --max-online-resize N -- ext filesystems resizable online to N blocks (mkfs -E resize=N)
    --mkfs-options OPTS -- options for the root filesystem's mkfs
    --qemu-img-options K=V,... -- qemu-img convert -o options (e.g. compat=0.10)
    --ramdisk-element NAME -- accepted; only ramdisk-image-create uses it
    --root-label LABEL -- label of the root filesystem
    --install-type TYPE -- default install type: source or package
    --docker-target TARGET -- accepted; dibkit does not write docker images
    --logfile FILE -- the build log (implies DIB_QUIET=1: no hook output on the console)
    --image-extra-size MiB -- dibkit addition: extra space (dib 3.43 refuses this option)
    --mkfs-journal-size MiB -- dibkit addition: ext journal size (dib 3.43 refuses it)

Outputs are NAME.TYPE (and NAME.TYPE.md5, NAME.TYPE.sha256 with --checksum); the manifest,
and the log when --logfile is not given, go to NAME.d/. Settings also come from the
environment as in dib (ELEMENTS_PATH, DIB_RELEASE, DIB_*, TMPDIR).
";

/// Runs `disk-image-create ARGS` (argv without the program name).
pub fn disk_image_create(argv: &[String]) -> Result<u8, Failure> {
    let (opts, elements) = getopt(argv)?;
    if opts.iter().any(|(o, _)| o == "-h" || o == "--help") {
        print!("{HELP}");
        return Ok(0);
    }
    if opts.iter().any(|(o, _)| o == "--version") {
        println!(
            "dibkit {} (disk-image-create drop-in, diskimage-builder 3.43 options)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(0);
    }
    // -c: dib re-executes itself with an empty environment (once: HOME is then unset).
    if opts.iter().any(|(o, _)| o == "-c")
        && std::env::var_os("HOME").is_some_and(|h| !h.is_empty())
    {
        use std::os::unix::process::CommandExt;
        eprintln!("Re-execing to clear environment.");
        let exe = std::env::current_exe()
            .map_err(|e| Failure::usage(format!("finding dibkit's own path: {e}"), None))?;
        let e = std::process::Command::new(exe)
            .arg("disk-image-create")
            .args(argv)
            .env_clear()
            .exec();
        return Err(Failure::usage(format!("re-executing dibkit: {e}"), None));
    }
    if elements.is_empty() {
        return Err(Failure::new(
            1,
            "At least one distribution root element must be specified",
            Some("name the elements last: disk-image-create -o NAME debian-minimal vm".to_owned()),
        ));
    }
    let mut build = vec!["dibkit".to_owned(), "build".to_owned()];
    let mut types: Vec<String> = vec!["qcow2".to_owned()];
    let mut output: Option<String> = None;
    let mut logfile: Option<String> = None;
    let mut dib = DibSettings::default();
    let mut mkfs = None;
    let mut resize = None;
    for (o, v) in &opts {
        let v = v.clone().unwrap_or_default();
        match o.as_str() {
            "-a" => build.extend(["--arch".to_owned(), v]),
            "-o" => output = Some(v),
            "-t" => types = v.split(',').map(str::to_owned).collect(),
            "-x" => build.push("-x".to_owned()),
            "-u" => build.push("-u".to_owned()),
            "-n" => build.push("-n".to_owned()),
            "-p" => build.extend(["-p".to_owned(), v]),
            "--checksum" | "--no-tmpfs" | "--offline" => build.push(o.clone()),
            "--min-tmpfs" | "--image-size" | "--image-cache" | "--qemu-img-options" => {
                build.extend([o.clone(), v]);
            }
            "--logfile" => logfile = Some(v),
            "--max-online-resize" => resize = Some(v),
            "--mkfs-options" => mkfs = Some(v),
            "--root-label" => dib.root_label = Some(v),
            "--install-type" => dib.install_type = Some(v),
            "--image-extra-size" => {
                dib.extra_size_mib = Some(v.parse().map_err(|_| {
                    Failure::usage(
                        format!("--image-extra-size `{v}` is not a number of MiB"),
                        None,
                    )
                })?);
            }
            "--mkfs-journal-size" => {
                dib.journal_mib = Some(v.parse().map_err(|_| {
                    Failure::usage(
                        format!("--mkfs-journal-size `{v}` is not a whole number of MiB"),
                        None,
                    )
                })?);
            }
            // Accepted as dib accepts them: ramdisk-image-create and `-t docker` use them.
            _ => {}
        }
    }
    dib.mkfs_options = match (resize, mkfs) {
        (Some(r), Some(m)) => Some(format!("-E resize={r} {m}")),
        (Some(r), None) => Some(format!("-E resize={r}")),
        (None, m) => m,
    };
    // dib drops a `.TYPE` suffix from the name when one type is asked for.
    let mut output = output.unwrap_or_else(|| "image".to_owned());
    if let [only] = types.as_slice() {
        let suffix = format!(".{only}");
        if output.ends_with(&suffix) {
            output.truncate(output.len() - suffix.len());
        }
    }
    let records = PathBuf::from(format!("{output}.d"));
    let log = logfile
        .clone()
        .map_or_else(|| records.join("dibkit.log"), PathBuf::from);
    std::fs::create_dir_all(&records)
        .map_err(|e| Failure::usage(format!("creating {}: {e}", records.display()), None))?;
    dib.records_dir = Some(records);
    // dib prints the hooks' output unless DIB_QUIET=1, which --logfile implies when unset.
    let quiet = match std::env::var("DIB_QUIET").ok().filter(|v| !v.is_empty()) {
        Some(v) => v == "1",
        None => logfile.is_some(),
    };
    if !quiet {
        build.push("-v".to_owned());
    }
    if let Some(b) = std::env::var("DIBKIT_BUILTINS")
        .ok()
        .filter(|v| !v.is_empty())
    {
        build.extend(["--builtins".to_owned(), b]);
    }
    build.extend([
        "-o".to_owned(),
        output,
        "-t".to_owned(),
        types.join(","),
        "--logfile".to_owned(),
        log.display().to_string(),
        // dib renames an old output and builds anyway; engines give fresh names.
        "--force".to_owned(),
        "--".to_owned(),
    ]);
    build.extend(elements);
    let cli = super::Cli::try_parse_from(&build).map_err(|e| {
        Failure::usage(
            format!("disk-image-create: {}", e.kind()),
            Some(format!("dibkit ran `{}`", build.join(" "))),
        )
    })?;
    let super::Command::Build(mut build_args) = cli.command else {
        unreachable!("the argument list starts with `build`")
    };
    build_args.dib = dib;
    super::build::run(&build_args)
}

/// Runs `diskimage-builder [--dry-run] [--stop-on-failure] FILE...`.
pub fn diskimage_builder(argv: &[String]) -> Result<u8, Failure> {
    let mut build = vec!["dibkit".to_owned(), "build".to_owned()];
    let mut files = 0;
    for a in argv {
        match a.as_str() {
            "-h" | "--help" => {
                println!(
                    "usage: diskimage-builder [-h] [--dry-run] [--stop-on-failure] <filename> [<filename> ...]\n\n\
                     dibkit's drop-in: builds the images of dib's YAML image files, as \
                     `dibkit build --file`."
                );
                return Ok(0);
            }
            "--dry-run" | "--stop-on-failure" => build.push(a.clone()),
            f if f.starts_with('-') => {
                return Err(Failure::usage(
                    format!("diskimage-builder: unrecognized arguments: {f}"),
                    Some(
                        "usage: diskimage-builder [--dry-run] [--stop-on-failure] FILE..."
                            .to_owned(),
                    ),
                ));
            }
            f => {
                build.extend(["--file".to_owned(), f.to_owned()]);
                files += 1;
            }
        }
    }
    if files == 0 {
        return Err(Failure::usage(
            "diskimage-builder: the following arguments are required: <filename>",
            Some("usage: diskimage-builder [--dry-run] [--stop-on-failure] FILE...".to_owned()),
        ));
    }
    let cli = super::Cli::try_parse_from(&build)
        .map_err(|e| Failure::usage(format!("diskimage-builder: {}", e.kind()), None))?;
    let super::Command::Build(build_args) = cli.command else {
        unreachable!("the argument list starts with `build`")
    };
    super::build::run(&build_args)
}

/// Which drop-in the program name asks for, if any (`disk-image-create`, `diskimage-builder`).
#[must_use]
pub fn by_name(argv0: &OsString) -> Option<&'static str> {
    match Path::new(argv0).file_name()?.to_str()? {
        "disk-image-create" => Some("disk-image-create"),
        "diskimage-builder" => Some("diskimage-builder"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::getopt;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|&x| x.to_owned()).collect()
    }

    #[test]
    fn nodepool_command_line() {
        let (opts, pos) = getopt(&s(&[
            "-x",
            "-t",
            "qcow2,raw",
            "--checksum",
            "--no-tmpfs",
            "--qemu-img-options",
            "compat=0.10",
            "-o",
            "/images/debian-abc",
            "debian-minimal",
            "vm",
        ]))
        .unwrap();
        assert_eq!(opts.len(), 6);
        assert_eq!(
            opts[4],
            (
                "--qemu-img-options".to_owned(),
                Some("compat=0.10".to_owned())
            )
        );
        assert_eq!(
            opts[5],
            ("-o".to_owned(), Some("/images/debian-abc".to_owned()))
        );
        assert_eq!(pos, ["debian-minimal", "vm"]);
    }

    #[test]
    fn gnu_getopt_forms() {
        let (opts, pos) =
            getopt(&s(&["vm", "-xxofoo", "--check", "--logfile=l", "--", "-n"])).unwrap();
        assert_eq!(
            opts,
            [
                ("-x".to_owned(), None),
                ("-x".to_owned(), None),
                ("-o".to_owned(), Some("foo".to_owned())),
                ("--checksum".to_owned(), None),
                ("--logfile".to_owned(), Some("l".to_owned())),
            ]
        );
        assert_eq!(pos, ["vm", "-n"]);
    }

    #[test]
    fn refusals_as_getopt_words_them() {
        let msg = |v: &[&str]| getopt(&s(v)).unwrap_err().message;
        assert_eq!(
            msg(&["--foo"]),
            "disk-image-create: unrecognized option '--foo'"
        );
        assert_eq!(msg(&["-z"]), "disk-image-create: invalid option -- 'z'");
        assert_eq!(
            msg(&["-o"]),
            "disk-image-create: option requires an argument -- 'o'"
        );
        assert_eq!(
            msg(&["--logfile"]),
            "disk-image-create: option '--logfile' requires an argument"
        );
        assert_eq!(
            msg(&["--checksum=1"]),
            "disk-image-create: option '--checksum' doesn't allow an argument"
        );
        assert_eq!(
            msg(&["--m"]),
            "disk-image-create: option '--m' is ambiguous; possibilities: '--min-tmpfs' '--max-online-resize' '--mkfs-options' '--mkfs-journal-size'"
        );
        assert_eq!(getopt(&s(&["--foo"])).unwrap_err().code, 1);
    }
}
