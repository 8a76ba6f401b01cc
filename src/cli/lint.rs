//! `dibkit lint`: every dib-lint check plus the traps dib never reports.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::request::RequestArgs;
use super::{Color, Failure};
use crate::lint::diagnostic::Severity;
use crate::lint::registry::{self, Check, RULES};
use crate::lint::{self, config, fix, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// rustc-style diagnostics with source snippets.
    Full,
    /// One line per finding: `path:line:col: CODE message`.
    Concise,
    /// A JSON list of findings.
    Json,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
    /// GitHub Actions annotations (the default when GITHUB_ACTIONS is set).
    Github,
}

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// Elements to lint: an element, a folder of elements, or a repository with `elements/`.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Also resolve these elements as a build would and check the set (duplicate hooks,
    /// provides conflicts, order ties). Give it last: it takes every following word.
    #[arg(long, value_name = "ELEMENT", num_args = 1..)]
    pub elements: Option<Vec<String>>,

    /// Where element names resolve, and how `--elements` forms its request.
    #[command(flatten)]
    pub request: RequestArgs,

    /// Output format [default: github under GitHub Actions, else full].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Apply safe fixes (atomically), then report what is left.
    #[arg(long)]
    pub fix: bool,

    /// Show the fixes as a diff without writing anything; exit 1 if there are any.
    #[arg(long)]
    pub diff: bool,

    /// Also apply fixes that can change behaviour (renames change the run order).
    #[arg(long)]
    pub unsafe_fixes: bool,

    /// Print the documentation of a rule (code, name or dib-lint name) and exit.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,

    /// List every rule and exit.
    #[arg(long)]
    pub list_rules: bool,

    /// Also run ShellCheck on bash scripts and report its findings (SCnnnn).
    #[arg(long)]
    pub shellcheck: bool,

    /// Configuration file [default: dibkit.toml in the first PATH or its parents].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run only these rules (comma-separated codes, names or dib-lint names).
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    pub select: Vec<String>,

    /// Do not run these rules (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    pub ignore: Vec<String>,

    /// When to use colour.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

fn write_out(text: &str) -> Result<(), Failure> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("writing output: {e}"), None))
}

fn explain(name: &str) -> Result<u8, Failure> {
    let rule = registry::find(name).ok_or_else(|| {
        Failure::usage(
            format!("no rule called `{name}`"),
            Some("`dibkit lint --list-rules` lists codes, names and dib-lint names".to_owned()),
        )
    })?;
    let mut s = format!("# {} ({})\n\n", rule.slug, rule.code);
    let _ = writeln!(s, "Default severity: {}", rule.severity.as_str());
    if !rule.legacy.is_empty() {
        let _ = writeln!(s, "dib-lint name: {}", rule.legacy.join(", "));
    }
    let scope = match rule.check {
        Check::File(_) => "each file",
        Check::Element(_) => "each element",
        Check::Set(_) => "the resolved set (`--elements`)",
        Check::FileAndSet(..) => "each file, and the resolved set (`--elements`)",
        Check::Engine => "the run itself",
    };
    let _ = writeln!(s, "Checks: {scope}\n");
    s.push_str(rule.docs);
    write_out(&s)?;
    Ok(0)
}

fn list_rules(format: Option<Format>) -> Result<u8, Failure> {
    if format == Some(Format::Json) {
        let list: Vec<serde_json::Value> = RULES
            .iter()
            .map(|r| {
                serde_json::json!({
                    "code": r.code, "name": r.slug, "legacy": r.legacy,
                    "severity": r.severity.as_str(), "summary": r.summary,
                })
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&list).expect("serialises");
        s.push('\n');
        write_out(&s)?;
        return Ok(0);
    }
    let mut s = String::new();
    for r in RULES {
        let legacy = if r.legacy.is_empty() {
            String::new()
        } else {
            format!(" (dib-lint: {})", r.legacy.join(", "))
        };
        let _ = writeln!(
            s,
            "{:<7} {:<8} {:<34} {}{legacy}",
            r.code,
            r.severity.as_str(),
            r.slug,
            r.summary
        );
    }
    write_out(&s)?;
    Ok(0)
}

/// Runs `dibkit lint`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if let Some(name) = &args.explain {
        return explain(name);
    }
    if args.list_rules {
        return list_rules(args.format);
    }
    let config_path = args
        .config
        .clone()
        .or_else(|| args.paths.first().and_then(|p| config::find_config(p)));
    if let Some(p) = &args.config {
        if !p.is_file() {
            return Err(Failure::usage(
                format!("--config {}: no such file", p.display()),
                None,
            ));
        }
    }
    let config = config::load(config_path.as_deref(), &args.select, &args.ignore)
        .map_err(|e| Failure::usage(e.to_string(), Some("see `dibkit lint --help`".to_owned())))?;
    let opts = lint::Options {
        targets: args.paths.clone(),
        set: args.elements.clone(),
        elements_path: args.request.entries(),
        builtins: Some(args.request.builtins()),
        skip_base: args.request.skip_base,
        arch: args.request.arch(),
        shellcheck: args.shellcheck,
    };
    let lint_error = |e: lint::Error| match e {
        lint::Error::Resolve(m) => Failure {
            code: 1,
            message: m,
            notes: Vec::new(),
            hint: None,
        },
        lint::Error::Target { .. } => Failure::usage(
            e.to_string(),
            Some(
                "give an element, a folder of elements, or a repository with elements/".to_owned(),
            ),
        ),
        other => Failure::usage(other.to_string(), None),
    };

    let mut fixed_note = None;
    if args.fix || args.diff {
        let (mut ws, _) = lint::load(&opts).map_err(lint_error)?;
        let changes = fix::apply(&mut ws, &config, args.unsafe_fixes);
        if args.diff {
            write_out(&fix::diff(&changes))?;
            return Ok(u8::from(!changes.is_empty()));
        }
        fix::write(&changes).map_err(|e| Failure::usage(format!("writing fixes: {e}"), None))?;
        let count: usize = changes.iter().map(|c| c.titles.len()).sum();
        fixed_note = Some(format!(
            "fixed {count} finding{} in {} file{}",
            if count == 1 { "" } else { "s" },
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ));
    }

    let report = lint::run(&opts, &config).map_err(lint_error)?;
    let format = args.format.unwrap_or_else(|| {
        if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            Format::Github
        } else {
            Format::Full
        }
    });
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = match format {
        Format::Full => render::full(&report.ws, &report.diagnostics, color),
        Format::Concise => render::concise(&report.ws, &report.diagnostics),
        Format::Json => render::json(&report.ws, &report.diagnostics),
        Format::Sarif => render::sarif(&report.ws, &report.diagnostics),
        Format::Github => render::github(&report.ws, &report.diagnostics),
    };
    write_out(&text)?;
    let errors = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = report.diagnostics.len() - errors;
    if matches!(format, Format::Full | Format::Concise) {
        let mut err = std::io::stderr();
        if let Some(note) = fixed_note {
            let _ = writeln!(err, "{note}");
        }
        let fixable = report
            .diagnostics
            .iter()
            .filter(|d| d.fix.as_ref().is_some_and(|f| f.safe))
            .count();
        let elements = report.ws.elements.len();
        let _ = write!(
            err,
            "{elements} element{} checked: {errors} error{}, {warnings} warning{}",
            if elements == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        );
        if fixable > 0 && !args.fix {
            let _ = write!(err, " ({fixable} fixable with --fix)");
        }
        let _ = writeln!(err);
    }
    Ok(u8::from(errors > 0))
}
