//! Renders a [`Plan`] as text: the table, JSON, Graphviz dot and `--explain`. Returns
//! strings (with ANSI styles that the caller strips when colour is off); never prints.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::plan::{Plan, PlanElement, Severity};
use crate::element::discover::Library;
use crate::element::model::Phase;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const HEAD: Style = Style::new().bold().underline();
const GREEN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const BLUE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Blue)));
const YELLOW: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const RED: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn why(e: &PlanElement) -> String {
    if let Some(rule) = e.added_by {
        rule.to_owned()
    } else if e.requested {
        "requested".to_owned()
    } else {
        e.chain.join(" → ")
    }
}

fn where_runs(chroot: bool) -> &'static str {
    if chroot {
        "in chroot"
    } else {
        "outside chroot"
    }
}

/// The default, human-readable view.
#[must_use]
pub fn table(plan: &Plan, only: Option<Phase>) -> String {
    let mut s = String::new();
    if only.is_none() {
        let _ = writeln!(s, "{BOLD}request{BOLD:#}: {}", plan.request.join(" "));
        let _ = writeln!(s);
        elements_table(&mut s, plan);
    }
    phases_table(&mut s, plan, only);
    if only.is_none() {
        let _ = writeln!(
            s,
            "{HEAD}environment.d{HEAD:#} {DIM}(sourced in this order before every phase){DIM:#}"
        );
        if plan.environment.is_empty() {
            let _ = writeln!(s, "  {DIM}(none){DIM:#}");
        }
        let w = plan
            .environment
            .iter()
            .map(|e| e.name.len())
            .max()
            .unwrap_or(0);
        for e in &plan.environment {
            let _ = write!(s, "  {}  {BLUE}{}{BLUE:#}", pad(&e.name, w), e.element);
            if let Some(note) = e.note {
                let _ = write!(s, "  {DIM}{note}{DIM:#}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    let skipped: Vec<_> = plan
        .skipped
        .iter()
        .filter(|k| only.is_none_or(|p| p.dir() == k.phase))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            s,
            "{HEAD}skipped{HEAD:#} {DIM}(never run or sourced){DIM:#}"
        );
        let w = skipped
            .iter()
            .map(|k| k.phase.len() + k.name.len() + 1)
            .max()
            .unwrap_or(0);
        for k in skipped {
            let _ = writeln!(
                s,
                "  {YELLOW}{}{YELLOW:#}  {BLUE}{}{BLUE:#}: {}",
                pad(&format!("{}/{}", k.phase, k.name), w),
                k.element,
                k.message
            );
        }
        let _ = writeln!(s);
    }
    if !plan.problems.is_empty() {
        let _ = writeln!(s, "{HEAD}problems{HEAD:#}");
        for p in &plan.problems {
            let (style, label) = match p.severity {
                Severity::Error => (RED, "error"),
                Severity::Warning => (YELLOW, "warning"),
            };
            let _ = writeln!(s, "  {style}{label}[{}]{style:#}: {}", p.kind, p.message);
        }
        let _ = writeln!(s);
    }
    let scripts: usize = plan.phases.iter().map(|p| p.scripts.len()).sum();
    let errors = plan
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = plan.problems.len() - errors;
    let verdict = if errors > 0 {
        format!("{RED}dib would fail{RED:#}")
    } else {
        format!("{GREEN}ok{GREEN:#}")
    };
    let _ = writeln!(
        s,
        "{verdict}: {}, {}, {} skipped, {}, {}",
        count(plan.elements.len(), "element"),
        count(scripts, "script"),
        plan.skipped.len(),
        count(errors, "error"),
        count(warnings, "warning"),
    );
    s
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn elements_table(s: &mut String, plan: &Plan) {
    let _ = writeln!(s, "{HEAD}elements{HEAD:#} ({})", plan.elements.len());
    let wn = plan
        .elements
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0);
    let wo = plan
        .elements
        .iter()
        .map(|e| e.origin.chars().count())
        .max()
        .unwrap_or(0);
    for e in &plan.elements {
        let mut line = format!(
            "  {BOLD}{}{BOLD:#}  {DIM}{}{DIM:#}  {}",
            pad(&e.name, wn),
            pad(&e.origin, wo),
            why(e)
        );
        if !e.provides.is_empty() {
            let _ = write!(line, "  {GREEN}provides {}{GREEN:#}", e.provides.join(", "));
        }
        let _ = writeln!(s, "{line}");
        for sh in &e.shadows {
            let _ = writeln!(s, "  {}  {DIM}hides {sh}{DIM:#}", pad("", wn));
        }
    }
    let _ = writeln!(s);
}

fn phases_table(s: &mut String, plan: &Plan, only: Option<Phase>) {
    let _ = writeln!(s, "{HEAD}phases{HEAD:#}");
    for (i, phase) in plan.phases.iter().enumerate() {
        if only.is_some_and(|p| p != phase.phase) {
            continue;
        }
        let _ = writeln!(
            s,
            "  {BOLD}{:>2} {}{BOLD:#}  {DIM}{}{DIM:#}",
            i + 1,
            phase.phase,
            where_runs(phase.chroot)
        );
        if !phase.exists {
            let _ = writeln!(s, "       {DIM}(no element has it: not run){DIM:#}");
            continue;
        }
        if phase.scripts.is_empty() {
            let _ = writeln!(s, "       {DIM}(no runnable scripts){DIM:#}");
        }
        let w = phase
            .scripts
            .iter()
            .map(|x| x.name.len())
            .max()
            .unwrap_or(0);
        for script in &phase.scripts {
            let _ = writeln!(
                s,
                "       {}  {BLUE}{}{BLUE:#}",
                pad(&script.name, w),
                script.element
            );
            let mut seen = vec![(phase.phase.dir().to_owned(), script.name.clone())];
            calls_tree(s, plan, &script.calls, 1, &mut seen);
        }
    }
    let _ = writeln!(s);
}

/// The scripts a script runs itself (its `hook-calls`), each under its caller, with the
/// scripts they run in turn.
fn calls_tree(
    s: &mut String,
    plan: &Plan,
    calls: &[super::calls::PlanCall],
    depth: usize,
    seen: &mut Vec<(String, String)>,
) {
    for c in calls {
        let indent = "  ".repeat(depth);
        let _ = write!(
            s,
            "       {indent}{DIM}runs{DIM:#} {}/{}  {BLUE}{}{BLUE:#}",
            c.phase, c.name, c.element
        );
        match &c.when {
            Some(when) => {
                let _ = writeln!(s, "  {DIM}when {when}{DIM:#}");
            }
            None => {
                let _ = writeln!(s);
            }
        }
        let key = (c.phase.clone(), c.name.clone());
        if seen.contains(&key) {
            continue;
        }
        let nested = plan
            .phases
            .iter()
            .find(|p| p.phase.dir() == c.phase)
            .and_then(|p| p.scripts.iter().find(|x| x.name == c.name))
            .map(|x| x.calls.clone())
            .unwrap_or_default();
        seen.push(key);
        calls_tree(s, plan, &nested, depth + 1, seen);
        seen.pop();
    }
}

/// The plan as pretty JSON; with `only`, just that phase in `phases`.
#[must_use]
pub fn json(plan: &Plan, only: Option<Phase>) -> String {
    let filtered;
    let plan = match only {
        None => plan,
        Some(p) => {
            let mut copy = plan.clone();
            copy.phases.retain(|x| x.phase == p);
            copy.skipped.retain(|x| x.phase == p.dir());
            filtered = copy;
            &filtered
        }
    };
    // Sized for a typical plan (tens of KiB) so the text is not copied as it grows.
    let mut out = Vec::with_capacity(64 * 1024);
    serde_json::to_writer_pretty(&mut out, plan).expect("plan serialises");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The element dependency graph of the set, in Graphviz dot. Requested elements are bold;
/// virtual names are dashed ellipses linked to their provider.
#[must_use]
pub fn dot(plan: &Plan) -> String {
    let mut s = String::from("digraph elements {\n  rankdir=LR;\n  node [shape=box];\n");
    for e in &plan.elements {
        let style = if e.requested { " [style=bold]" } else { "" };
        let _ = writeln!(s, "  {}{style};", quote(&e.name));
    }
    for (virt, provider) in &plan.provided {
        let _ = writeln!(s, "  {} [shape=ellipse, style=dashed];", quote(virt));
        let _ = writeln!(
            s,
            "  {} -> {} [style=dashed, label=\"provided by\"];",
            quote(virt),
            quote(provider)
        );
    }
    for e in &plan.elements {
        for d in &e.deps {
            let known = plan.elements.iter().any(|x| &x.name == d) || plan.provided.contains_key(d);
            if known {
                let _ = writeln!(s, "  {} -> {};", quote(&e.name), quote(d));
            }
        }
    }
    s.push_str("}\n");
    s
}

/// Everything about one element: where it is, why it is in, what it runs and when.
#[must_use]
pub fn explain(plan: &Plan, lib: &Library, name: &str) -> String {
    let mut s = String::new();
    let element = lib.get(name).expect("caller checked the element exists");
    let _ = writeln!(s, "{HEAD}{name}{HEAD:#}");
    let _ = writeln!(s, "  {BOLD}path{BOLD:#}:      {}", element.root);
    let _ = writeln!(s, "  {BOLD}origin{BOLD:#}:    {}", element.origin);
    for sh in &element.shadows {
        let _ = writeln!(s, "  {BOLD}hides{BOLD:#}:     {} ({})", sh.root, sh.origin);
    }
    let deps: Vec<&str> = element.deps.iter().map(|d| d.name.as_str()).collect();
    let provides: Vec<&str> = element.provides.iter().map(|d| d.name.as_str()).collect();
    let _ = writeln!(
        s,
        "  {BOLD}deps{BOLD:#}:      {}",
        or_none(&deps.join(", "))
    );
    let _ = writeln!(
        s,
        "  {BOLD}provides{BOLD:#}:  {}",
        or_none(&provides.join(", "))
    );
    let Some(pe) = plan.elements.iter().find(|e| e.name == name) else {
        let reason = match plan.provided.get(name) {
            Some(p) => format!(
                "not in the set: '{p}' provides the name '{name}', so dib drops this element"
            ),
            None => "not in the set: nothing in the request depends on it".to_owned(),
        };
        let _ = writeln!(s, "  {YELLOW}{reason}{YELLOW:#}");
        return s;
    };
    let _ = writeln!(s, "  {BOLD}in set{BOLD:#}:    {}", why(pe));
    if !pe.required_by.is_empty() {
        let _ = writeln!(
            s,
            "  {BOLD}needed by{BOLD:#}: {}",
            pe.required_by.join(", ")
        );
    }
    let _ = writeln!(s, "  {BOLD}runs{BOLD:#}:");
    let mut any = false;
    for phase in &plan.phases {
        let total = phase.scripts.len();
        for (i, script) in phase.scripts.iter().enumerate() {
            if script.element != name {
                continue;
            }
            any = true;
            let _ = writeln!(
                s,
                "    {} {}  {DIM}{} of {total}, {}{DIM:#}",
                pad(phase.phase.dir(), 15),
                script.name,
                i + 1,
                where_runs(phase.chroot)
            );
            for (caller, when) in callers(plan, phase.phase.dir(), &script.name) {
                let _ = write!(s, "    {}   {DIM}also run by{DIM:#} {caller}", pad("", 15));
                match when {
                    Some(w) => {
                        let _ = writeln!(s, "  {DIM}when {w}{DIM:#}");
                    }
                    None => {
                        let _ = writeln!(s);
                    }
                }
            }
        }
    }
    if !any {
        let _ = writeln!(s, "    {DIM}(no scripts){DIM:#}");
    }
    let env: Vec<String> = plan
        .environment
        .iter()
        .enumerate()
        .filter(|(_, e)| e.element == name)
        .map(|(i, e)| format!("{} ({} of {})", e.name, i + 1, plan.environment.len()))
        .collect();
    if !env.is_empty() {
        let _ = writeln!(s, "  {BOLD}environment.d{BOLD:#}: {}", env.join(", "));
    }
    for k in plan.skipped.iter().filter(|k| k.element == name) {
        let _ = writeln!(
            s,
            "  {YELLOW}skipped{YELLOW:#}: {}/{}: {}",
            k.phase, k.name, k.message
        );
    }
    for p in plan
        .problems
        .iter()
        .filter(|p| p.elements.iter().any(|e| e == name))
    {
        let _ = writeln!(s, "  {YELLOW}{}{YELLOW:#}: {}", p.kind, p.message);
    }
    s
}

/// The scripts that run `phase/name` themselves (`PHASE/SCRIPT`), with their condition.
fn callers(plan: &Plan, phase: &str, name: &str) -> Vec<(String, Option<String>)> {
    plan.phases
        .iter()
        .flat_map(|p| p.scripts.iter().map(move |s| (p.phase, s)))
        .flat_map(|(p, s)| {
            s.calls
                .iter()
                .filter(|c| c.phase == phase && c.name == name)
                .map(move |c| (format!("{p}/{}", s.name), c.when.clone()))
        })
        .collect()
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// `--explain` as JSON: the element entry (null when not in the set), and what it runs.
#[must_use]
pub fn explain_json(plan: &Plan, lib: &Library, name: &str) -> String {
    let element = lib.get(name).expect("caller checked the element exists");
    let scripts: Vec<serde_json::Value> = plan
        .phases
        .iter()
        .flat_map(|p| {
            p.scripts
                .iter()
                .enumerate()
                .filter(|(_, x)| x.element == name)
                .map(move |(i, x)| {
                    let run_by: Vec<serde_json::Value> = callers(plan, p.phase.dir(), &x.name)
                        .into_iter()
                        .map(|(caller, when)| serde_json::json!({"caller": caller, "when": when}))
                        .collect();
                    let mut v = serde_json::json!({
                        "phase": p.phase, "chroot": p.chroot, "name": x.name,
                        "path": x.path, "position": i + 1, "of": p.scripts.len()
                    });
                    if !run_by.is_empty() {
                        v["run_by"] = serde_json::Value::Array(run_by);
                    }
                    v
                })
        })
        .collect();
    let value = serde_json::json!({
        "name": name,
        "path": element.root.display_path(""),
        "origin": element.origin.to_string(),
        "in_set": plan.elements.iter().any(|e| e.name == name),
        "provided_by": plan.provided.get(name),
        "element": plan.elements.iter().find(|e| e.name == name),
        "scripts": scripts,
        "environment": plan.environment.iter().filter(|e| e.element == name).collect::<Vec<_>>(),
        "skipped": plan.skipped.iter().filter(|e| e.element == name).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&value).expect("serialises");
    s.push('\n');
    s
}
