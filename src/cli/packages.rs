//! `dibkit packages`: what package-installs would install and remove in each phase, after
//! every rule and the pkg-maps. Also the package-installs and pkg-map elements' engine
//! during a build (`--from-env`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::Failure;
use super::request::RequestArgs;
use crate::element::discover::{self, Builtins, Library};
use crate::element::model::Phase;
use crate::packages::{self, Declarations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// Elements of the image, as for disk-image-create (not needed with --from-env).
    #[arg(value_name = "ELEMENT", required_unless_present = "from_env")]
    pub elements: Vec<String>,

    /// Inside a build: take the elements from $IMAGE_ELEMENT, the path from $ELEMENTS_PATH
    /// and every variable from the environment as the hooks see it.
    #[arg(long)]
    pub from_env: bool,

    /// Write `<phase>.install` and `<phase>.uninstall` lists (one package per line) here.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Write each element's pkg-map, and `<element>.resolved` for this distribution, here.
    #[arg(long, value_name = "DIR")]
    pub pkg_map_dir: Option<PathBuf>,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Sources the set's environment.d files in order, as dib does before extra-data.d, and
/// returns the resulting environment.
fn sourced_env(
    lib: &Library,
    plan: &crate::order::plan::Plan,
    args: &Args,
    entries: &[String],
) -> Result<BTreeMap<String, String>, Failure> {
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::usage(format!("temporary directory: {e}"), None))?;
    // dib exports its own variables before it first sources environment.d.
    let caller: BTreeMap<String, String> = std::env::vars().collect();
    let mut path = entries.to_vec();
    if let Builtins::Dir(d) = args.request.builtins() {
        path.push(d.display().to_string());
    }
    let elements_path = path.join(":");
    let arch = args.request.arch();
    let dib_vars = crate::order::dib_env::exported(&crate::order::dib_env::Inputs {
        plan,
        arch: &arch,
        elements_path: &elements_path,
        args: &args.elements,
        scratch: dir.path(),
        caller: &caller,
    });
    let mut script = String::from("set -eu\nset -o pipefail\n");
    for (i, e) in plan.environment.iter().enumerate() {
        let text = if e.note.is_some() {
            "export DIB_DEFAULT_INSTALLTYPE=${DIB_DEFAULT_INSTALLTYPE:-\"source\"}\n"
                .as_bytes()
                .to_vec()
        } else {
            let element = lib
                .get(&e.element)
                .ok_or_else(|| Failure::usage(format!("{} is not on the path", e.element), None))?;
            discover::read(&element.root, &format!("environment.d/{}", e.name))
                .map_err(|err| Failure::usage(err.to_string(), None))?
                .unwrap_or_default()
        };
        let path = dir.path().join(format!("{i:03}"));
        std::fs::write(&path, text)
            .map_err(|err| Failure::usage(format!("{}: {err}", path.display()), None))?;
        let _ = writeln!(script, "source {}", path.display());
    }
    script.push_str("env -0\n");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .envs(&dib_vars)
        .output()
        .map_err(|e| Failure::usage(format!("running bash: {e}"), None))?;
    if !out.status.success() {
        return Err(Failure {
            code: 1,
            message: "sourcing the set's environment.d files failed".to_owned(),
            notes: vec![String::from_utf8_lossy(&out.stderr).trim().to_owned()],
            hint: Some("dib would fail the same way before extra-data.d".to_owned()),
        });
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect())
}

/// Each element's package-installs files, every copy on the path, `.json` before `.yaml`.
fn declarations(lib: &Library, names: &[String]) -> Result<Vec<Declarations>, Failure> {
    let mut out = Vec::new();
    for name in names {
        let Some(element) = lib.get(name) else {
            continue;
        };
        let mut files = Vec::new();
        let roots = std::iter::once(&element.root).chain(element.shadows.iter().map(|s| &s.root));
        for root in roots {
            for file in ["package-installs.json", "package-installs.yaml"] {
                if let Some(bytes) =
                    discover::read(root, file).map_err(|e| Failure::usage(e.to_string(), None))?
                {
                    files.push((
                        root.display_path(file),
                        String::from_utf8_lossy(&bytes).into_owned(),
                    ));
                }
            }
        }
        out.push(Declarations {
            element: name.clone(),
            files,
        });
    }
    Ok(out)
}

/// Each element's pkg-map text.
fn pkg_maps(lib: &Library, names: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for name in names {
        let Some(element) = lib.get(name) else {
            continue;
        };
        if let Some(bytes) = discover::read(&element.root, "pkg-map")
            .map_err(|e| Failure::usage(e.to_string(), None))?
        {
            out.insert(name.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(out)
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::usage(format!("writing {}: {e}", path.display()), None))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display()), None))
}

/// Runs `dibkit packages`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let (lib, names, env) = if args.from_env {
        let entries = discover::split_path(std::env::var("ELEMENTS_PATH").ok().as_deref());
        let mut lib = discover::discover(&entries, &Builtins::None)
            .map_err(|e| Failure::usage(e.to_string(), Some(e.hint().to_owned())))?;
        lib.load_all()
            .map_err(|e| Failure::usage(e.to_string(), None))?;
        let mut names: Vec<String> = std::env::var("IMAGE_ELEMENT")
            .map_err(|_| {
                Failure::usage(
                    "--from-env: IMAGE_ELEMENT is not set (run it from a build hook)",
                    None,
                )
            })?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        names.sort();
        (lib, names, std::env::vars().collect::<BTreeMap<_, _>>())
    } else {
        let (lib, entries, plan) = args.request.plan(&args.elements)?;
        let env = sourced_env(&lib, &plan, args, &entries)?;
        let names = plan.elements.iter().map(|e| e.name.clone()).collect();
        (lib, names, env)
    };
    let decls = declarations(&lib, &names)?;
    let squashed = packages::squash(&decls, &env).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
        notes: Vec::new(),
        hint: Some("`dibkit lint` explains package-installs problems".to_owned()),
    })?;
    let map_texts = pkg_maps(&lib, &names)?;
    let distro = env.get("DISTRO_NAME").cloned().unwrap_or_default();
    let release = env.get("DIB_RELEASE").cloned().unwrap_or_default();
    if distro.is_empty() && !map_texts.is_empty() {
        return Err(Failure {
            code: 1,
            message: "DISTRO_NAME is not set, so the pkg-maps cannot be resolved".to_owned(),
            notes: Vec::new(),
            hint: Some("the operating-system element exports it from environment.d".to_owned()),
        });
    }
    let mut maps = BTreeMap::new();
    for (element, text) in &map_texts {
        let m = packages::resolve_map(text, &distro, &release).map_err(|e| Failure {
            code: 1,
            message: format!("pkg-map of `{element}`: {e}"),
            notes: Vec::new(),
            hint: None,
        })?;
        maps.insert(element.clone(), m);
    }
    let phases = Phase::PACKAGE_INSTALLS.map(Phase::dir);
    let mut result: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for phase in phases {
        let lists = squashed.get(phase).cloned().unwrap_or_default();
        result.insert(
            phase,
            (
                packages::map_packages(&lists.install, &maps),
                packages::map_packages(&lists.uninstall, &maps),
            ),
        );
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("{}: {e}", dir.display()), None))?;
        for (phase, (install, uninstall)) in &result {
            for (kind, list) in [("install", install), ("uninstall", uninstall)] {
                let mut text = String::new();
                for p in list {
                    let _ = writeln!(text, "{p}");
                }
                write_file(&dir.join(format!("{phase}.{kind}")), &text)?;
            }
        }
    }
    if let Some(dir) = &args.pkg_map_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("{}: {e}", dir.display()), None))?;
        for (element, text) in &map_texts {
            write_file(&dir.join(element), text)?;
            let mut resolved = String::new();
            for (k, v) in &maps[element] {
                let _ = writeln!(resolved, "{k}\t{v}");
            }
            write_file(&dir.join(format!("{element}.resolved")), &resolved)?;
        }
    }
    let text = match args.format {
        Format::Json => {
            let by_phase: serde_json::Map<String, serde_json::Value> = phases
                .iter()
                .map(|p| {
                    let raw = squashed.get(*p).cloned().unwrap_or_default();
                    (
                        (*p).to_owned(),
                        serde_json::json!({
                            "install": result[p].0, "uninstall": result[p].1,
                            "declared": raw,
                        }),
                    )
                })
                .collect();
            let ignored: Vec<&String> = squashed
                .keys()
                .filter(|k| !phases.contains(&k.as_str()))
                .collect();
            format!(
                "{:#}\n",
                serde_json::json!({"distro": distro, "release": release, "arch": env.get("ARCH"), "phases": by_phase, "never_installed_phases": ignored})
            )
        }
        Format::Table => {
            let mut s = format!(
                "packages for {} {} ({})\n",
                if distro.is_empty() { "?" } else { &distro },
                release,
                env.get("ARCH").map_or("?", String::as_str)
            );
            for phase in phases {
                let raw = squashed.get(phase).cloned().unwrap_or_default();
                let (install, uninstall) = &result[phase];
                let _ = writeln!(s, "{phase}");
                let _ = writeln!(
                    s,
                    "  install:   {}",
                    if install.is_empty() {
                        "(none)".to_owned()
                    } else {
                        install.join(" ")
                    }
                );
                let _ = writeln!(
                    s,
                    "  uninstall: {}",
                    if uninstall.is_empty() {
                        "(none)".to_owned()
                    } else {
                        uninstall.join(" ")
                    }
                );
                for (pkg, element) in &raw.install {
                    let _ = writeln!(s, "    {pkg} ({element})");
                }
            }
            for phase in squashed.keys().filter(|k| !phases.contains(&k.as_str())) {
                let _ = writeln!(
                    s,
                    "warning: packages declared for `{phase}` are never installed"
                );
            }
            s
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
    Ok(0)
}
