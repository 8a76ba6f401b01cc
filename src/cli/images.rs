//! `dibkit build --file`: the images of dib's YAML image files (`imagefile`), each built as
//! dib's `diskimage-builder` builds it (the merged definition's disk-image-create command
//! line and environment, run by the drop-in in a child process), several at once with
//! `--jobs`, then a summary table.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Failure;
use super::build::Args;
use crate::error::exit;
use crate::imagefile::{self, Image, Val, shell_quote};

/// An image file problem as a usage failure naming the file, line and key.
#[allow(clippy::needless_pass_by_value)]
fn schema_failure(e: imagefile::Error) -> Failure {
    Failure::usage(e.to_string(), e.hint.clone())
}

/// Reads, validates and merges the files, and refuses what dibkit cannot build.
pub fn load(args: &Args) -> Result<Vec<Image>, Failure> {
    let mut entries = Vec::new();
    for f in &args.files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Failure::usage(format!("reading {}: {e}", f.display()), None))?;
        entries.extend(imagefile::parse(&f.display().to_string(), &text).map_err(schema_failure)?);
    }
    let images = imagefile::merge(&entries);
    if images.is_empty() {
        return Err(Failure::usage(
            "the image files define no image",
            Some("add an entry: - imagename: vm\n    elements: [debian-minimal, vm]".to_owned()),
        ));
    }
    for img in &images {
        if img.ramdisk() {
            return Err(Failure::new(
                exit::REJECTED,
                format!(
                    "{}: `ramdisk`: image `{}` is a ramdisk (ramdisk-image-create), which dibkit does not build",
                    img.where_set("ramdisk").unwrap_or(&img.origin),
                    img.name
                ),
                Some("build it with dib's diskimage-builder, or drop `ramdisk: true`".to_owned()),
            ));
        }
        if args.strict {
            if let Some(k) = img.additions().first() {
                return Err(Failure::usage(
                    format!(
                        "{}: `{k}`: a dibkit addition (--strict): dib 3.43's disk-image-create refuses --{k}",
                        img.where_set(k).unwrap_or(&img.origin)
                    ),
                    Some(format!(
                        "drop `{k}` for a file dib also builds, or build without --strict"
                    )),
                ));
            }
        }
    }
    Ok(images)
}

/// The output name (`-o`, else dib's `image`), the output types and the log a build writes.
struct Outputs {
    name: String,
    types: Vec<String>,
    log: PathBuf,
}

fn outputs(img: &Image) -> Outputs {
    let mut name = match img.get("imagename") {
        Some(Val::Str(s)) if !s.is_empty() => s.clone(),
        _ => "image".to_owned(),
    };
    let types = match img.get("types") {
        Some(Val::List(l)) if !l.is_empty() => l.clone(),
        _ => vec!["qcow2".to_owned()],
    };
    if let [only] = types.as_slice() {
        let suffix = format!(".{only}");
        if name.ends_with(&suffix) {
            name.truncate(name.len() - suffix.len());
        }
    }
    let log = match img.get("logfile") {
        Some(Val::Str(s)) if !s.is_empty() => PathBuf::from(s),
        _ => PathBuf::from(format!("{name}.d/dibkit.log")),
    };
    Outputs { name, types, log }
}

/// The command line dib prints for an image (`VAR=value disk-image-create ARGS`).
fn command_line(img: &Image) -> String {
    let mut words: Vec<String> = img
        .environment()
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    words.push("disk-image-create".to_owned());
    words.extend(img.args().iter().map(|a| shell_quote(a)));
    words.join(" ")
}

/// `--dry-run`: each build's command line and whether its elements resolve.
fn dry_run(args: &Args, images: &[Image]) -> Result<u8, Failure> {
    let mut out = String::new();
    let mut failed = false;
    for img in images {
        out.push_str(&format!(
            "# {} ({})\n{}\n",
            img.name,
            img.origin,
            command_line(img)
        ));
        let words = img.args();
        let (opts, elements) = super::dropin::getopt(&words)?;
        let mut request = args.request.clone();
        for (o, v) in &opts {
            match o.as_str() {
                "-n" => request.skip_base = true,
                "-a" => request.arch.clone_from(v),
                _ => {}
            }
        }
        if request.elements_path.is_none() {
            request.elements_path = img
                .environment()
                .into_iter()
                .find_map(|(k, v)| (k == "ELEMENTS_PATH").then_some(v));
        }
        match request.plan(&elements) {
            Ok((_, _, plan)) if !plan.is_fatal() => {
                let names: Vec<&str> = plan.elements.iter().map(|e| e.name.as_str()).collect();
                out.push_str(&format!(
                    "  resolves: {} elements: {}\n",
                    names.len(),
                    names.join(" ")
                ));
            }
            Ok((_, _, plan)) => {
                failed = true;
                for p in plan
                    .problems
                    .iter()
                    .filter(|p| p.severity == crate::order::plan::Severity::Error)
                {
                    out.push_str(&format!("  error: {}\n", p.message));
                }
            }
            Err(f) => {
                failed = true;
                out.push_str(&format!("  error: {}\n", f.message));
            }
        }
        out.push('\n');
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
    Ok(if failed { exit::REJECTED } else { 0 })
}

/// `MemAvailable` in KiB.
fn mem_available_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The RAM, in GiB, one build of `img` may take: its tmpfs build directory (twice
/// `min-tmpfs`, as dib requires), or 1 GiB on disk.
fn build_gib(img: &Image) -> u64 {
    let env = img.environment();
    let no_tmpfs = matches!(img.get("no-tmpfs"), Some(Val::Bool(true)))
        || env
            .iter()
            .chain(std::env::vars().collect::<Vec<_>>().iter())
            .any(|(k, v)| k == "DIB_NO_TMPFS" && !v.is_empty() && v != "0");
    if no_tmpfs {
        return 1;
    }
    let min = match img.get("min-tmpfs") {
        Some(Val::Int(n)) => u64::try_from(*n).unwrap_or(2),
        _ => std::env::var("DIB_MIN_TMPFS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    };
    min * 2
}

/// `--jobs` by default: as many builds as there are cores and memory for, each build taking
/// `per_build_gib`, at least one, at most one per image.
#[must_use]
pub fn default_jobs(cores: usize, mem_gib: u64, per_build_gib: u64, images: usize) -> usize {
    let by_mem = usize::try_from(mem_gib / per_build_gib.max(1)).unwrap_or(usize::MAX);
    cores.min(by_mem).min(images).max(1)
}

/// How one build ended.
#[derive(Debug, Clone)]
enum Status {
    Built,
    Failed(i32),
    /// Not started (after a failure with --stop-on-failure).
    Skipped,
}

struct Outcome {
    status: Status,
    seconds: f64,
}

/// Runs `dibkit build --file`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let images = load(args)?;
    if args.dry_run {
        return dry_run(args, &images);
    }
    let per_build = images.iter().map(build_gib).max().unwrap_or(4);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem_gib = mem_available_kib().unwrap_or(0) / 1024 / 1024;
    let jobs = args.jobs.map_or_else(
        || default_jobs(cores, mem_gib, per_build, images.len()),
        |j| j.max(1),
    );
    let exe = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("finding dibkit's own path: {e}"), None))?;
    eprintln!(
        "building {} image(s), {jobs} at a time ({cores} cores, {mem_gib} GiB of memory available, up to {per_build} GiB per build)",
        images.len()
    );
    let next = Mutex::new(0usize);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<Option<Outcome>>> =
        Mutex::new((0..images.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(img) = images.get(i) else { break };
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)[i] =
                            Some(Outcome {
                                status: Status::Skipped,
                                seconds: 0.0,
                            });
                        continue;
                    }
                    let outcome = build_one(args, &exe, img, jobs > 1);
                    if matches!(outcome.status, Status::Failed(_)) && args.stop_on_failure {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(outcome);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut table = format!(
        "\n{:<24} {:<14} {:>8} {:>10}  {}\n",
        "image", "status", "time", "size", "log"
    );
    let mut code = 0;
    for (img, r) in images.iter().zip(&results) {
        let o = outputs(img);
        let (status, seconds) = match r {
            Some(Outcome { status, seconds }) => (status.clone(), *seconds),
            None => (Status::Skipped, 0.0),
        };
        let status_text = match status {
            Status::Built => "built".to_owned(),
            Status::Failed(c) => {
                code = u8::try_from(c)
                    .ok()
                    .filter(|c| *c != 0)
                    .unwrap_or(exit::MACHINERY);
                format!("failed ({c})")
            }
            Status::Skipped => "not started".to_owned(),
        };
        let size: u64 = o
            .types
            .iter()
            .filter_map(|t| std::fs::metadata(format!("{}.{t}", o.name)).ok())
            .map(|m| m.len())
            .sum();
        let size = if matches!(status, Status::Built) {
            format!("{} MiB", size.div_ceil(1024 * 1024))
        } else {
            "-".to_owned()
        };
        let time = if seconds > 0.0 {
            format!("{seconds:.0} s")
        } else {
            "-".to_owned()
        };
        table.push_str(&format!(
            "{:<24} {:<14} {:>8} {:>10}  {}\n",
            img.name,
            status_text,
            time,
            size,
            o.log.display()
        ));
    }
    std::io::stderr().lock().write_all(table.as_bytes()).ok();
    Ok(code)
}

/// Builds one image in a child process: `dibkit disk-image-create ARGS` with the image's
/// environment, as dib's diskimage-builder runs its script. With other builds running beside
/// it, its console output is kept (and its tail shown if it fails) instead of interleaved.
fn build_one(args: &Args, exe: &std::path::Path, img: &Image, parallel: bool) -> Outcome {
    let o = outputs(img);
    let start = Instant::now();
    eprintln!(
        "{}: building ({}), log {}",
        img.name,
        img.origin,
        o.log.display()
    );
    let mut cmd = Command::new(exe);
    cmd.arg("disk-image-create").args(img.args());
    if let Some(p) = &args.request.elements_path {
        cmd.env("ELEMENTS_PATH", p);
    }
    if args.request.builtins != "embedded" {
        cmd.env("DIBKIT_BUILTINS", &args.request.builtins);
    }
    let env = img.environment();
    if parallel
        && std::env::var_os("DIB_QUIET").is_none()
        && !env.iter().any(|(k, _)| k == "DIB_QUIET")
    {
        cmd.env("DIB_QUIET", "1");
    }
    cmd.envs(env);
    let status = if parallel {
        cmd.stdin(Stdio::null());
        match cmd.output() {
            Ok(out) => {
                if !out.status.success() {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(15)..];
                    let mut err = std::io::stderr().lock();
                    for l in tail {
                        writeln!(err, "{}: {l}", img.name).ok();
                    }
                }
                Ok(out.status)
            }
            Err(e) => Err(e),
        }
    } else {
        cmd.status()
    };
    let seconds = start.elapsed().as_secs_f64();
    let status = match status {
        Ok(s) if s.success() => Status::Built,
        Ok(s) => Status::Failed(
            s.code()
                .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)),
        ),
        Err(e) => {
            eprintln!("{}: could not start dibkit: {e}", img.name);
            Status::Failed(i32::from(exit::MACHINERY))
        }
    };
    match &status {
        Status::Built => eprintln!("{}: built in {}", img.name, human(seconds)),
        Status::Failed(c) => eprintln!(
            "{}: failed (exit status {c}) after {}; log {}",
            img.name,
            human(seconds),
            o.log.display()
        ),
        Status::Skipped => {}
    }
    Outcome { status, seconds }
}

fn human(seconds: f64) -> String {
    let d = Duration::from_secs_f64(seconds);
    format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_follow_cores_and_memory() {
        assert_eq!(super::default_jobs(2, 24, 4, 5), 2);
        assert_eq!(super::default_jobs(16, 8, 4, 5), 2);
        assert_eq!(super::default_jobs(16, 64, 4, 3), 3);
        assert_eq!(super::default_jobs(4, 2, 4, 3), 1);
    }
}
