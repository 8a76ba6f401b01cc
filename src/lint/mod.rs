//! `dibkit lint`: reads elements into a [`model::Workspace`], runs the rules of
//! [`registry::RULES`] over it, applies configuration and suppressions, and fixes. Rules never
//! touch the filesystem; `walk.rs` reads and `fix.rs` writes.

pub mod config;
pub mod diagnostic;
pub mod fix;
pub mod model;
pub mod registry;
pub mod render;
pub(crate) mod rules;
pub mod shell;
pub mod shellcheck;
pub mod suppress;
pub mod walk;

/// The YAML reader moved to [`crate::yaml`]; this path is kept for existing callers.
pub use crate::yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::deps::expand::{self, Outcome};
use crate::element::discover::{self, Builtins, Library};
use crate::order::simulate;

use config::Config;
use diagnostic::{Diagnostic, FileId, Sink};
use model::{FileKind, SourceFile, Workspace};
use registry::{Check, RULES, SetContext};

/// What to lint and how.
#[derive(Debug, Default)]
pub struct Options {
    pub targets: Vec<PathBuf>,
    /// `--elements`: also check this request as a resolved set.
    pub set: Option<Vec<String>>,
    pub elements_path: Vec<String>,
    pub builtins: Option<Builtins>,
    pub skip_base: bool,
    pub arch: String,
    pub shellcheck: bool,
}

/// Why linting could not be done (exit status 2), or a request that does not resolve (1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Target { path: String, message: String },
    #[error(transparent)]
    Discover(#[from] discover::Error),
    #[error("the --elements set does not resolve: {0}")]
    Resolve(String),
    #[error("shellcheck: {0}")]
    Shellcheck(String),
}

/// Everything a lint run found.
#[derive(Debug)]
pub struct Report {
    pub ws: Workspace,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads the targets into a workspace and records every element name that exists.
///
/// # Errors
/// A target that does not exist, or a library that cannot be discovered.
pub fn load(opts: &Options) -> Result<(Workspace, Library), Error> {
    let mut ws = Workspace::default();
    for target in &opts.targets {
        let dirs = walk::element_dirs(target).map_err(|e| Error::Target {
            path: target.display().to_string(),
            message: e.to_string(),
        })?;
        for dir in dirs {
            walk::read_element(&mut ws, &dir);
        }
    }
    // Element names known anywhere: the targets, their sibling elements, ELEMENTS_PATH and
    // the built-in library.
    let mut entries: Vec<String> = Vec::new();
    for e in &ws.elements {
        if let Some(parent) = e.dir.parent() {
            let p = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            let s = p.display().to_string();
            if !entries.contains(&s) {
                entries.push(s);
            }
        }
    }
    entries.extend(opts.elements_path.iter().cloned());
    let builtins = opts.builtins.clone().unwrap_or(Builtins::Embedded);
    let mut lib = discover::discover(&entries, &builtins)?;
    lib.load_all()?;
    for (name, element) in &lib.elements {
        ws.known.insert(
            name.clone(),
            element.provides.iter().map(|p| p.name.clone()).collect(),
        );
    }
    for e in &ws.elements {
        let provides = ws
            .find(e, "element-provides")
            .map(|id| {
                rules::name_lines(ws.file(id))
                    .into_iter()
                    .map(|n| n.0)
                    .collect()
            })
            .unwrap_or_default();
        ws.known.entry(e.name.clone()).or_insert(provides);
    }
    ws.env_assigned = rules::environment_unbound_variable::assigned_anywhere(&ws);
    Ok((ws, lib))
}

/// Runs the file and element rules over the workspace (pure: no I/O).
#[must_use]
pub fn check(ws: &Workspace, config: &Config) -> Vec<Diagnostic> {
    let mut sink = Sink::default();
    for rule in RULES.iter().filter(|r| config.enabled(r)) {
        match rule.check {
            Check::File(f) | Check::FileAndSet(f, _) => {
                for e in &ws.elements {
                    for &id in &e.files {
                        f(ws, id, &mut sink);
                    }
                }
            }
            Check::Element(f) => {
                for e in &ws.elements {
                    f(ws, e, &mut sink);
                }
            }
            Check::Set(_) | Check::Engine => {}
        }
    }
    unreadable(ws, &mut sink);
    sink.diagnostics
}

/// DIB901: files that should be text but cannot be read as text.
fn unreadable(ws: &Workspace, sink: &mut Sink) {
    for e in &ws.elements {
        for &id in &e.files {
            let f = ws.file(id);
            let needs_text = (rules::phase_of(f).is_some() && f.executable())
                || rules::is_environment_file(f)
                || matches!(f.name(), "element-deps" | "element-provides" | "pkg-map");
            match &f.kind {
                FileKind::Unread { reason } if needs_text => {
                    sink.report(
                        &rules::unreadable_file::RULE,
                        id,
                        None,
                        format!("cannot read `{}`: {reason}", f.rel),
                    )
                    .help("dib must read this file; fix it or move it out of the element");
                }
                FileKind::File
                | FileKind::Symlink {
                    dangling: false, ..
                } if needs_text && f.text.is_none() && !f.bytes.is_empty() => {
                    sink.report(
                        &rules::unreadable_file::RULE,
                        id,
                        None,
                        format!("`{}` is not valid UTF-8", f.rel),
                    )
                    .help("save it as UTF-8 text");
                }
                _ => {}
            }
        }
    }
}

/// Expands `--elements` and runs the set rules.
fn check_set(
    ws: &mut Workspace,
    lib: &mut Library,
    opts: &Options,
    request: &[String],
    config: &Config,
) -> Result<Vec<Diagnostic>, Error> {
    let formed = expand::form_request(request, opts.skip_base, &opts.arch);
    let outcome: Outcome = expand::expand(&formed, lib)?;
    if let Err(e @ (expand::ResolveError::Missing { .. } | expand::ResolveError::MissingOs)) =
        &outcome.result
    {
        return Err(Error::Resolve(
            crate::deps::explain::explain(e, lib).one_line(),
        ));
    }
    let plan = match &outcome.result {
        Ok(_) => Some(simulate::plan(lib, &outcome)?),
        Err(_) => None,
    };
    // File ids for every path the plan names, keyed by the plan's own spelling.
    let mut ids: HashMap<String, FileId> = HashMap::new();
    for (id, f) in ws.files.iter().enumerate() {
        // The plan names a symlinked hook by its own path, not its target's: resolve the
        // directory only.
        let real = match (f.path.parent(), f.path.file_name()) {
            (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
                std::fs::canonicalize(dir).map(|d| d.join(name))
            }
            _ => std::fs::canonicalize(&f.path),
        };
        if let Ok(real) = real {
            ids.insert(real.display().to_string(), id);
        }
    }
    let mut wanted: Vec<String> = Vec::new();
    if let Some(p) = &plan {
        wanted.extend(p.problems.iter().flat_map(|x| x.paths.iter().cloned()));
        for e in &p.elements {
            if let Some(el) = lib.get(&e.name) {
                for file in ["package-installs.yaml", "package-installs.json"] {
                    if discover::read(&el.root, file).ok().flatten().is_some() {
                        wanted.push(el.root.display_path(file));
                    }
                }
            }
        }
    }
    if let Err(expand::ResolveError::AlreadyProvided { element, .. }) = &outcome.result {
        if let Some(el) = lib.get(element) {
            wanted.push(el.root.display_path("element-provides"));
        }
    }
    for path in wanted {
        ids.entry(path).or_insert_with_key(|path| {
            ws.add(SourceFile::new(
                PathBuf::from(path),
                None,
                String::new(),
                FileKind::Unread {
                    reason: "outside the lint targets".to_owned(),
                },
            ))
        });
    }
    let request_file = ws.add(SourceFile::new(
        PathBuf::from(format!("(--elements {})", formed.elements.join(" "))),
        None,
        String::new(),
        FileKind::Unread {
            reason: "the request".to_owned(),
        },
    ));
    let cx = SetContext {
        ws,
        outcome: &outcome,
        plan: plan.as_ref(),
        lib,
        ids: &ids,
        request_file,
    };
    let mut sink = Sink::default();
    for rule in RULES.iter().filter(|r| config.enabled(r)) {
        if let Check::Set(f) | Check::FileAndSet(_, f) = rule.check {
            f(&cx, &mut sink);
        }
    }
    Ok(sink.diagnostics)
}

/// Applies configuration and suppressions, and adds the findings about them.
#[must_use]
pub fn filter(
    ws: &mut Workspace,
    diagnostics: Vec<Diagnostic>,
    config: &Config,
) -> Vec<Diagnostic> {
    let mut directives = Vec::new();
    let mut bad = Vec::new();
    for e in &ws.elements {
        for &id in &e.files {
            suppress::parse(id, ws.file(id), &mut directives, &mut bad);
        }
    }
    let mut out = Vec::new();
    for mut d in diagnostics {
        if !config.enabled(d.rule) && d.code.is_none() {
            continue;
        }
        let file = ws.file(d.file);
        if config.ignored_in(d.rule, &file.path) {
            continue;
        }
        let line = d.span.as_ref().map(|s| file.line_col(s.start).0);
        let hit = directives.iter_mut().find(|x| {
            x.file == d.file
                && x.rule.code == d.rule.code
                && (x.applies_to_line.is_none() || x.applies_to_line == line)
        });
        if let Some(x) = hit {
            x.used = true;
            continue;
        }
        d.severity = config.severity(d.rule);
        out.push(d);
    }
    let mut sink = Sink::default();
    if config.enabled(&rules::invalid_suppression::RULE) {
        for b in bad {
            sink.report(
                &rules::invalid_suppression::RULE,
                b.file,
                Some(b.span),
                format!("`{}` is not a dibkit rule", b.name),
            )
            .help("see `dibkit lint --list-rules` for codes, names and dib-lint aliases");
        }
    }
    if config.enabled(&rules::unused_suppression::RULE) {
        for x in directives
            .iter()
            .filter(|x| x.dibkit && !x.used && config.enabled(x.rule))
        {
            sink.report(
                &rules::unused_suppression::RULE,
                x.file,
                Some(x.span.clone()),
                format!("`{}` ({}) reports nothing here", x.rule.code, x.rule.slug),
            )
            .help("remove it from the comment");
        }
    }
    if config.enabled(&rules::unknown_rule_in_config::RULE) && !config.unknown.is_empty() {
        let id = ws.add(SourceFile::new(
            config
                .file
                .clone()
                .unwrap_or_else(|| PathBuf::from("(command line)")),
            None,
            String::new(),
            FileKind::Unread {
                reason: "configuration".to_owned(),
            },
        ));
        for (origin, name) in &config.unknown {
            // Names from the file are reported at the file; name the flag otherwise.
            let from = if origin.starts_with("--") || origin == "tox.ini" {
                format!("{origin}: ")
            } else {
                String::new()
            };
            sink.report(
                &rules::unknown_rule_in_config::RULE,
                id,
                None,
                format!("{from}`{name}` is not a dibkit rule"),
            )
            .help("see `dibkit lint --list-rules`");
        }
    }
    for mut d in sink.diagnostics {
        d.severity = config.severity(d.rule);
        out.push(d);
    }
    out.sort_by(|a, b| {
        let (fa, fb) = (ws.file(a.file), ws.file(b.file));
        fa.path
            .cmp(&fb.path)
            .then(
                a.span
                    .as_ref()
                    .map(|s| s.start)
                    .cmp(&b.span.as_ref().map(|s| s.start)),
            )
            .then(a.code().cmp(b.code()))
    });
    out
}

/// A whole lint run: load, check, set checks, shellcheck, filter.
///
/// # Errors
/// See [`Error`].
pub fn run(opts: &Options, config: &Config) -> Result<Report, Error> {
    let (mut ws, mut lib) = load(opts)?;
    let mut diagnostics = check(&ws, config);
    if let Some(set) = &opts.set {
        diagnostics.extend(check_set(&mut ws, &mut lib, opts, set, config)?);
    }
    if opts.shellcheck {
        diagnostics.extend(shellcheck::run(&ws).map_err(Error::Shellcheck)?);
    }
    let diagnostics = filter(&mut ws, diagnostics, config);
    Ok(Report { ws, diagnostics })
}
