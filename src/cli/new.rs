//! `dibkit new`: scaffold an element that passes `dibkit lint` from the first commit. Without
//! flags it is the skeleton most elements have; flags shape it, `--minimal` strips it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::Failure;
use crate::element::model::Phase;
use crate::scaffold::{self, Spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The files created, one per line.
    Text,
    /// A JSON object with the element path and its files.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(help_expected = true, after_help = scaffold::VARIABLES)]
pub struct Args {
    /// Name of the new element (a directory name: letters, digits, `_` and `-`).
    pub name: String,

    /// Directory to create the element in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Add a script for this phase (repeatable), e.g. `install.d`.
    #[arg(long = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,

    /// Dependencies for element-deps (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ELEMENTS")]
    pub deps: Vec<String>,

    /// Packages for package-installs.yaml (comma-separated); adds `package-installs` to deps.
    #[arg(long, value_delimiter = ',', value_name = "PACKAGES")]
    pub packages: Vec<String>,

    /// An environment default `NAME=VALUE` (repeatable); exported as `DIB_NAME`.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// Create an operating-system element (provides operating-system, root.d, DISTRO_NAME).
    #[arg(long)]
    pub os: bool,

    /// Also create test-elements/build-succeeds, as dib's own elements have.
    #[arg(long)]
    pub test_element: bool,

    /// Write only what the flags ask for (with none, a README.rst alone) instead of the
    /// skeleton: an install.d script and a package-installs.yaml to fill in, with
    /// `package-installs` in element-deps.
    #[arg(long)]
    pub minimal: bool,

    /// Directory of templates overriding the built-in ones file by file
    /// [default: $XDG_CONFIG_HOME/dibkit/templates if it exists].
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,

    /// List what would be written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn user_templates() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let dir = base.join("dibkit/templates");
    dir.is_dir().then_some(dir)
}

fn spec(args: &Args) -> Result<Spec, Failure> {
    if let Some(why) = scaffold::name_problem(&args.name) {
        return Err(Failure::usage(
            format!("`{}` cannot be an element name: {why}", args.name),
            Some("use letters, digits, `_` and `-`, e.g. `my-element`".to_owned()),
        ));
    }
    let mut phases: Vec<Phase> = Vec::new();
    for p in &args.phases {
        let Some(phase) = Phase::find(p) else {
            let guess = scaffold::phase_names()
                .into_iter()
                .map(|n| (strsim::levenshtein(n, p), n))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, n)| format!("did you mean `{n}`? "));
            return Err(Failure::usage(
                format!("unknown phase `{p}`"),
                Some(format!(
                    "{}phases are: {}",
                    guess.unwrap_or_default(),
                    scaffold::phase_names().join(", ")
                )),
            ));
        };
        if !phases.contains(&phase) {
            phases.push(phase);
        }
    }
    let mut env = Vec::new();
    for e in &args.env {
        let Some((k, v)) = e.split_once('=') else {
            return Err(Failure::usage(
                format!("--env `{e}` is not NAME=VALUE"),
                Some("e.g. --env TOOLS_VERSION=1.2".to_owned()),
            ));
        };
        if !crate::lint::shell::is_name(k) {
            return Err(Failure::usage(
                format!("--env `{k}` is not a shell variable name"),
                Some("use letters, digits and `_`, not starting with a digit".to_owned()),
            ));
        }
        if v.contains(['\'', '"', '$', '`', '\\', '}', '\n']) {
            return Err(Failure::usage(
                format!("--env {k}: the default `{v}` has shell quoting characters"),
                Some(
                    "give a plain value; edit environment.d afterwards for anything else"
                        .to_owned(),
                ),
            ));
        }
        env.push((k.to_owned(), v.to_owned()));
    }
    for name in args.deps.iter().chain(&args.packages) {
        if name.is_empty() || name.chars().any(char::is_whitespace) || name.starts_with('#') {
            return Err(Failure::usage(
                format!("`{name}` is not a valid element or package name"),
                None,
            ));
        }
    }
    Ok(Spec {
        name: args.name.clone(),
        phases,
        deps: args.deps.clone(),
        packages: args.packages.clone(),
        env,
        os: args.os,
        test_element: args.test_element,
        elements_dir: args.dir.display().to_string(),
        minimal: args.minimal,
    })
}

/// Writes the files into a temporary sibling, then moves it into place in one rename, so an
/// interrupted run leaves nothing half-made.
fn create(target: &Path, files: &[scaffold::File]) -> Result<(), String> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".dibkit-new-")
        .tempdir_in(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    for f in files {
        let p = staging.path().join(&f.path);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::write(&p, &f.content).map_err(|e| format!("{}: {e}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", staging.path().display()))?;
    // Claim the name first: create_dir fails if anything exists there, so a concurrent
    // creation is never replaced; the rename then swaps our empty directory for the tree.
    fs::create_dir(target).map_err(|e| format!("{}: {e}", target.display()))?;
    let staged = staging.keep();
    fs::rename(&staged, target).map_err(|e| {
        let _ = fs::remove_dir(target);
        format!("{}: {e}", target.display())
    })
}

/// Runs `dibkit new`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let spec = spec(args)?;
    let target = args.dir.join(&args.name);
    if fs::symlink_metadata(&target).is_ok() {
        return Err(Failure::usage(
            format!("{} already exists; nothing was written", target.display()),
            Some("choose another name or --dir, or remove it first".to_owned()),
        ));
    }
    if !args.dir.is_dir() {
        return Err(Failure::usage(
            format!("--dir {} is not a directory", args.dir.display()),
            Some("create it first".to_owned()),
        ));
    }
    let template_dir = args.template.clone().or_else(user_templates);
    if let Some(t) = &args.template {
        if !t.is_dir() {
            return Err(Failure::usage(
                format!("--template {} is not a directory", t.display()),
                None,
            ));
        }
    }
    let templates = scaffold::templates(template_dir.as_deref()).map_err(|e| {
        Failure::usage(
            format!("cannot read template {e}"),
            Some(
                "template folders hold plain files named like the built-in templates (see --help)"
                    .to_owned(),
            ),
        )
    })?;
    let files = scaffold::files(&spec, &templates);
    if !args.dry_run {
        create(&target, &files)
            .map_err(|e| Failure::usage(format!("creating the element: {e}"), None))?;
    }
    let mut out = String::new();
    match args.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "path": target.join(&f.path).display().to_string(),
                        "mode": format!("{:o}", f.mode),
                    })
                })
                .collect();
            let value = serde_json::json!({
                "element": target.display().to_string(),
                "dry_run": args.dry_run,
                "files": list,
            });
            out.push_str(&format!("{value:#}\n"));
        }
        Format::Text => {
            let verb = if args.dry_run {
                "would create"
            } else {
                "created"
            };
            out.push_str(&format!("{verb} {}/\n", target.display()));
            for f in &files {
                out.push_str(&format!("  {:o}  {}\n", f.mode, f.path));
            }
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
    Ok(0)
}
