//! `dibkit order`: resolve a request and print the execution plan.

use std::io::Write;

use clap::ValueEnum;

use super::request::{RequestArgs, io};
use super::{Color, Failure};
use crate::deps::expand::{self, ResolveError};
use crate::element::discover::Library;
use crate::element::model::Phase;
use crate::order::{render, simulate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// The plan as JSON (stable keys: elements, phases, environment, skipped, problems).
    Json,
    /// The element dependency graph in Graphviz dot.
    Dot,
}

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// Elements to build, as for disk-image-create.
    #[arg(required = true, value_name = "ELEMENT")]
    pub elements: Vec<String>,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Show only this phase (e.g. `install.d`).
    #[arg(long, value_name = "PHASE")]
    pub phase: Option<String>,

    /// Explain one element: where it was found, why it is in the set, what it runs.
    #[arg(long, value_name = "ELEMENT")]
    pub explain: Option<String>,

    /// When to use colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

/// Turns a resolution failure into the user-facing error (exit status 1).
pub(crate) fn resolve_failure(err: &ResolveError, lib: &mut Library) -> Failure {
    // Hints look across the whole path; an unreadable file elsewhere only weakens them.
    let _ = lib.load_all();
    let lib = &*lib;
    let mut notes = Vec::new();
    let hint;
    let mut message = err.message();
    match err {
        ResolveError::Missing { name, chain } => {
            if chain.len() > 1 {
                let parent = &chain[chain.len() - 2];
                if let Some(p) = lib.get(parent) {
                    let line = p
                        .deps
                        .iter()
                        .find(|d| &d.name == name)
                        .map_or(0, |d| d.line);
                    message = format!(
                        "element '{name}' not found, required by '{parent}' at {}:{line}",
                        p.root.display_path("element-deps")
                    );
                }
                notes.push(format!("dependency chain: {}", chain.join(" -> ")));
            } else {
                notes.push("requested on the command line".to_owned());
            }
            if name.trim_start().starts_with('#') {
                hint = Some(
                    "dib has no comments in element-deps: every non-blank line is an element \
                     name; delete the line"
                        .to_owned(),
                );
            } else if let [first, ..] = lib.providers_of(name).as_slice() {
                hint = Some(format!(
                    "'{name}' is a virtual name provided by '{first}'; add '{first}' to the \
                     element list"
                ));
            } else if name == "base" && chain.len() == 1 {
                hint = Some(
                    "no library has 'base': pass -n/--skip-base, or add a directory that has it"
                        .to_owned(),
                );
            } else if name == "block-device" {
                hint = Some(
                    "'vm' needs a block-device-* element: name one (e.g. block-device-mbr) on \
                     the command line; dib only adds it when 'vm' itself is requested"
                        .to_owned(),
                );
            } else if let Some(s) = did_you_mean(name, lib) {
                hint = Some(format!("did you mean '{s}'?"));
            } else {
                hint = Some(
                    "add the directory that holds it to ELEMENTS_PATH or --elements-path"
                        .to_owned(),
                );
            }
        }
        ResolveError::AlreadyProvided { name, by, element } => {
            if by.len() == 1 && by[0] == *element {
                message = format!(
                    "element '{element}' is requested twice and provides '{name}': dib fails \
                     with \"{name}: already provided by ['{element}']\""
                );
                hint = Some(format!("list '{element}' only once"));
            } else {
                hint = Some(format!(
                    "keep only one element that provides '{name}' in the set"
                ));
            }
        }
        ResolveError::Conflict { .. } => {
            hint = Some(
                "do not request an element that another element of the set provides; drop it \
                 from the list"
                    .to_owned(),
            );
        }
        ResolveError::MissingOs => {
            let providers = lib.providers_of(expand::OPERATING_SYSTEM);
            hint = Some(if providers.is_empty() {
                "no element on the path provides 'operating-system'".to_owned()
            } else {
                format!("add one of: {}", providers.join(", "))
            });
        }
    }
    Failure {
        code: 1,
        message,
        notes,
        hint,
    }
}

fn did_you_mean(name: &str, lib: &Library) -> Option<String> {
    lib.elements
        .keys()
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

/// Runs `dibkit order`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let phase = match &args.phase {
        None => None,
        Some(p) => Some(Phase::find(p).ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.dir()).collect();
            Failure::usage(
                format!("unknown phase '{p}'"),
                Some(format!("phases are: {}", names.join(", "))),
            )
        })?),
    };
    let (mut lib, _) = args.request.library()?;
    let request =
        expand::form_request(&args.elements, args.request.skip_base, &args.request.arch());
    let outcome = expand::expand(&request, &mut lib).map_err(io)?;
    if let Err(e) = &outcome.result {
        let mut failure = resolve_failure(e, &mut lib);
        if let Some(u) = &outcome.unstable {
            failure.notes.push(u.clone());
        }
        if args.format == Format::Json {
            // Tools reading JSON get the failure as data too; the message still goes to stderr.
            let value = serde_json::json!({"error": {
                "kind": e.kind(),
                "message": failure.message,
                "chain": match e { ResolveError::Missing { chain, .. } => chain.clone(), _ => Vec::new() },
                "unstable": outcome.unstable,
            }});
            let _ = writeln!(std::io::stdout(), "{value:#}");
        }
        return Err(failure);
    }
    let plan = simulate::plan(&lib, &outcome).map_err(io)?;

    let text = if let Some(name) = &args.explain {
        if !lib.load(name).map_err(io)? {
            let _ = lib.load_all();
            let hint = did_you_mean(name, &lib).map(|s| format!("did you mean '{s}'?"));
            return Err(Failure::usage(
                format!("--explain: element '{name}' is on no path entry"),
                hint,
            ));
        }
        match args.format {
            Format::Json => render::explain_json(&plan, &lib, name),
            _ => render::explain(&plan, &lib, name),
        }
    } else {
        match args.format {
            Format::Table => render::table(&plan, phase),
            Format::Json => render::json(&plan, phase),
            Format::Dot => render::dot(&plan),
        }
    };
    // JSON and dot carry no styles: write them straight, without scanning for escapes.
    let written =
        if args.format == Format::Table || args.explain.is_some() && args.format != Format::Json {
            anstream::AutoStream::new(std::io::stdout(), args.color.choice())
                .lock()
                .write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    written.map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
    Ok(u8::from(plan.is_fatal()))
}
