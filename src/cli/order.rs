//! `dibkit order`: resolve a request and print the execution plan.

use std::io::Write;

use clap::ValueEnum;

use super::request::{RequestArgs, io};
use super::{Color, Failure};
use crate::deps::expand::{self, ResolveError};
use crate::deps::explain::{self, did_you_mean};
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
    let e = explain::explain(err, lib);
    Failure {
        code: 1,
        message: e.message,
        notes: e.notes,
        hint: e.hint,
    }
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
    let plan =
        simulate::plan_with(&lib, &outcome, &super::request::run_parts_filter()?).map_err(io)?;

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
    let status = u8::from(plan.is_fatal());
    // The process exits next: freeing the library and the plan node by node is wasted work
    // (a few percent of a run).
    std::mem::forget((lib, outcome, plan, text));
    Ok(status)
}
