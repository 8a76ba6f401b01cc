//! Simulates dib's hooks tree and dib-run-parts for an expanded element set.
//!
//! Every top-level directory of every element is merged, as dib's `generate_hooks` does; a
//! file name present in the same directory of two elements is fatal. Each phase then keeps
//! what dib-run-parts would run: executable regular files (or symlinks to them) named
//! `^[0-9A-Za-z_-]+$`, in `LANG=C sort -n` order. environment.d keeps regular files named
//! `[0-9A-Za-z_.-]+`, in byte order.

use std::collections::BTreeMap;
use std::path::Path;

use crate::deps::expand::{Expansion, Outcome};
use crate::element::discover::{self, Library, Resolved};
use crate::element::model::{Element, Node, NodeKind, Phase};

use super::plan::{
    INSTALL_TYPE_ENV, Plan, PlanElement, PlanPhase, PlanScript, Problem, ProblemKind, SkipReason,
    Skipped,
};
use super::tree::NameFilter;
use super::{calls, sort};

/// One element's copy of a hooks-tree entry.
#[derive(Debug, Clone)]
struct Contribution<'a> {
    element: &'a Element,
    node: Node,
}

/// The merged hooks tree: top-level directory → entry name → contributions.
type Merged<'a> = BTreeMap<String, BTreeMap<String, Vec<Contribution<'a>>>>;

pub use crate::element::parse::{environment_name_ok, run_parts_name_ok};

/// Builds the plan for an expansion.
///
/// # Errors
/// An element directory of the set cannot be read.
pub fn plan(lib: &Library, outcome: &Outcome) -> Result<Plan, discover::Error> {
    plan_with(lib, outcome, &NameFilter::default())
}

/// [`plan`] with dib-run-parts' `RUN_PARTS_REGEX` in force.
///
/// # Errors
/// An element directory of the set cannot be read.
pub fn plan_with(
    lib: &Library,
    outcome: &Outcome,
    filter: &NameFilter,
) -> Result<Plan, discover::Error> {
    let expansion = outcome
        .result
        .as_ref()
        .expect("plan() is only called for a successful expansion");
    let members: Vec<&Element> = expansion
        .members
        .iter()
        .filter_map(|m| lib.get(&m.name))
        .collect();
    let mut problems = Vec::new();
    if let Some(text) = &outcome.unstable {
        problems.push(Problem::new(
            ProblemKind::SetOrder,
            text.clone(),
            expansion.request.clone(),
            Vec::new(),
        ));
    }

    let merged = merge(&members)?;
    duplicate_problems(&merged, &mut problems);

    let mut skipped = Vec::new();
    let mut phases = Vec::new();
    for phase in Phase::ALL {
        let entries = merged.get(phase.dir());
        let mut scripts = Vec::new();
        for (name, contributions) in entries.into_iter().flatten() {
            let c = &contributions[0];
            let path = c
                .element
                .root
                .display_path(&format!("{}/{name}", phase.dir()));
            if let NodeKind::Symlink { target } = &c.node.kind {
                if phase.chroot() && target.starts_with('/') {
                    problems.push(Problem::new(
                        ProblemKind::AbsoluteSymlink,
                        format!(
                            "{}/{name} of '{}' is a symlink to '{target}', which dib resolves \
                             inside the image: it runs only if the image has that file, and \
                             is skipped without a word otherwise",
                            phase.dir(),
                            c.element.name
                        ),
                        vec![c.element.name.clone()],
                        vec![path.clone()],
                    ));
                }
            }
            match classify_hook(&merged, phase.dir(), phase.chroot(), c, filter) {
                Ok(()) => scripts.push(PlanScript {
                    name: name.clone(),
                    element: c.element.name.clone(),
                    path,
                    note: None,
                    calls: Vec::new(),
                }),
                Err((reason, message)) => skipped.push(Skipped {
                    phase: phase.dir().to_owned(),
                    name: name.clone(),
                    element: c.element.name.clone(),
                    reason,
                    path,
                    message,
                }),
            }
        }
        scripts.sort_by(|a, b| sort::compare(&a.name, &b.name));
        tie_problems(phase.dir(), &scripts, &mut problems);
        phases.push(PlanPhase {
            phase,
            chroot: phase.chroot(),
            exists: entries.is_some(),
            scripts,
        });
    }

    let mut environment = Vec::new();
    for (name, contributions) in merged.get("environment.d").into_iter().flatten() {
        let c = &contributions[0];
        let path = c
            .element
            .root
            .display_path(&format!("environment.d/{name}"));
        match classify_env(&merged, c) {
            Ok(()) => environment.push(PlanScript {
                name: name.clone(),
                element: c.element.name.clone(),
                path,
                note: None,
                calls: Vec::new(),
            }),
            Err((reason, message)) => skipped.push(Skipped {
                phase: "environment.d".to_owned(),
                name: name.clone(),
                element: c.element.name.clone(),
                reason,
                path,
                message,
            }),
        }
    }
    environment_problems(&merged, &environment, &mut problems);
    // After root.d, disk-image-create writes its own file into environment.d, replacing any
    // element file of that name.
    environment.retain(|e| e.name != INSTALL_TYPE_ENV);
    environment.push(PlanScript {
        name: INSTALL_TYPE_ENV.to_owned(),
        element: "(dib)".to_owned(),
        path: String::new(),
        note: Some("written by dib after root.d: exports DIB_DEFAULT_INSTALLTYPE"),
        calls: Vec::new(),
    });
    environment.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));

    declared_calls(&members, &mut phases, &mut problems)?;

    Ok(Plan {
        request: expansion.request.clone(),
        elements: plan_elements(lib, expansion),
        provided: expansion.provided.clone(),
        phases,
        environment,
        skipped,
        problems,
    })
}

/// Attaches each element's declared hook calls (`hook-calls`) to the calling script. A call
/// whose caller is not in the plan is left out (the element that makes it is not in the set);
/// one whose callee is not is a problem.
fn declared_calls(
    members: &[&Element],
    phases: &mut [PlanPhase],
    problems: &mut Vec<Problem>,
) -> Result<(), discover::Error> {
    let dirs: Vec<&str> = Phase::ALL.iter().map(|p| p.dir()).collect();
    for element in members {
        let Some(bytes) = discover::read_top(element, calls::FILE)? else {
            continue;
        };
        let path = element.root.display_path(calls::FILE);
        let declared = match calls::parse(&String::from_utf8_lossy(&bytes), &dirs) {
            Ok(d) => d,
            Err(e) => {
                problems.push(Problem::new(
                    ProblemKind::HookCallsInvalid,
                    format!("{path}:{}: {}", e.line, e.message),
                    vec![element.name.clone()],
                    vec![path.clone()],
                ));
                continue;
            }
        };
        for d in declared {
            let find = |phases: &[PlanPhase], (phase, name): &(String, String)| {
                phases
                    .iter()
                    .find(|p| p.phase.dir() == phase)
                    .and_then(|p| p.scripts.iter().find(|s| &s.name == name))
                    .map(|s| s.element.clone())
            };
            if find(phases, &d.caller).is_none() {
                continue;
            }
            let Some(callee_element) = find(phases, &d.callee) else {
                problems.push(Problem::new(
                    ProblemKind::HookCallMissing,
                    format!(
                        "{path}:{}: {}/{} calls {}/{}, which no element of the set has",
                        d.line, d.caller.0, d.caller.1, d.callee.0, d.callee.1
                    ),
                    vec![element.name.clone()],
                    vec![path.clone()],
                ));
                continue;
            };
            let script = phases
                .iter_mut()
                .find(|p| p.phase.dir() == d.caller.0)
                .and_then(|p| p.scripts.iter_mut().find(|s| s.name == d.caller.1))
                .expect("caller found above");
            if script
                .calls
                .iter()
                .any(|c| c.phase == d.callee.0 && c.name == d.callee.1)
            {
                continue;
            }
            script.calls.push(calls::PlanCall {
                phase: d.callee.0,
                name: d.callee.1,
                element: callee_element,
                when: d.when,
                declared: format!("{path}:{}", d.line),
            });
        }
    }
    Ok(())
}

fn environment_problems(merged: &Merged<'_>, env: &[PlanScript], problems: &mut Vec<Problem>) {
    let Some(entries) = merged.get("environment.d") else {
        return;
    };
    if env.is_empty() && merged.contains_key(Phase::RootD.dir()) {
        let elements: Vec<String> = entries
            .values()
            .flatten()
            .map(|c| c.element.name.clone())
            .collect();
        let mut elements = elements;
        elements.sort();
        elements.dedup();
        problems.push(Problem::new(
            ProblemKind::EnvironmentEmpty,
            "environment.d exists but holds no file dib sources (dotfiles are not \
             copied; names must match [0-9A-Za-z_.-]+): dib-run-parts' grep finds \
             nothing and root.d fails silently before any script runs"
                .to_owned(),
            elements,
            Vec::new(),
        ));
    }
    if let Some(cs) = entries.get(INSTALL_TYPE_ENV) {
        let c = &cs[0];
        problems.push(Problem::new(
            ProblemKind::EnvironmentOverwritten,
            format!(
                "environment.d/{INSTALL_TYPE_ENV} of '{}' is replaced by dib's own file of that \
                 name after root.d",
                c.element.name
            ),
            vec![c.element.name.clone()],
            vec![
                c.element
                    .root
                    .display_path(&format!("environment.d/{INSTALL_TYPE_ENV}")),
            ],
        ));
    }
}

fn plan_elements(lib: &Library, expansion: &Expansion) -> Vec<PlanElement> {
    let names: Vec<&str> = expansion.names();
    expansion
        .members
        .iter()
        .filter_map(|m| lib.get(&m.name).map(|e| (m, e)))
        .map(|(m, e)| {
            // Who needs this element: anything in the set naming it, or naming a virtual
            // name it provides.
            let required_by = names
                .iter()
                .filter_map(|n| lib.get(n))
                .filter(|other| {
                    other.name != e.name
                        && (other.depends_on(&e.name)
                            || e.provides.iter().any(|p| {
                                other.depends_on(&p.name)
                                    && expansion.provided.get(&p.name) == Some(&e.name)
                            }))
                })
                .map(|o| o.name.clone())
                .collect();
            PlanElement {
                name: e.name.clone(),
                path: e.root.display_path(""),
                origin: e.origin.to_string(),
                requested: m.requested,
                added_by: m.added_by,
                required_by,
                chain: m.chain.clone(),
                deps: e.deps.iter().map(|d| d.name.clone()).collect(),
                provides: e.provides.iter().map(|d| d.name.clone()).collect(),
                shadows: e.shadows.iter().map(|s| s.root.display_path("")).collect(),
            }
        })
        .collect()
}

fn merge<'a>(members: &[&'a Element]) -> Result<Merged<'a>, discover::Error> {
    // Element by element, in order, on this thread: a helper thread listing half the
    // directories cost more than it saved (its start, its malloc arena and the wake-ups; on
    // this project's 2-core VM a 10-element request ran 3.5% faster without it).
    let mut merged: Merged<'a> = BTreeMap::new();
    for element in members {
        for dir in discover::element_hook_dirs(element)? {
            let nodes = discover::element_list(element, &dir)?;
            let slot = merged.entry(dir).or_default();
            for node in nodes {
                slot.entry(node.name.clone())
                    .or_default()
                    .push(Contribution { element, node });
            }
        }
    }
    Ok(merged)
}

fn duplicate_problems(merged: &Merged<'_>, problems: &mut Vec<Problem>) {
    for (dir, entries) in merged {
        for (name, contributions) in entries {
            if name.starts_with('.') {
                continue; // `ls` never lists it, so dib never copies it.
            }
            if name.chars().any(char::is_whitespace) {
                let c = &contributions[0];
                problems.push(Problem::new(
                    ProblemKind::UnsafeName,
                    format!(
                        "'{dir}/{name}' in element '{}' has whitespace in its name: dib's copy \
                         splits it into words and the build fails",
                        c.element.name
                    ),
                    vec![c.element.name.clone()],
                    vec![c.element.root.display_path(&format!("{dir}/{name}"))],
                ));
            }
            if contributions.len() < 2 {
                continue;
            }
            if contributions.iter().all(|c| is_dir_like(c)) {
                continue; // Directories merge silently.
            }
            let elements: Vec<String> = contributions
                .iter()
                .map(|c| c.element.name.clone())
                .collect();
            let paths: Vec<String> = contributions
                .iter()
                .map(|c| c.element.root.display_path(&format!("{dir}/{name}")))
                .collect();
            problems.push(Problem::new(
                ProblemKind::DuplicateHook,
                format!(
                    "'{dir}/{name}' is shipped by {}: dib stops with \"There is a duplicated \
                     hook in your elements\"",
                    elements
                        .iter()
                        .map(|e| format!("'{e}'"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                elements,
                paths,
            ));
        }
    }
}

/// Only real directories merge; `cp -a` cannot put a symlink or file over a directory.
fn is_dir_like(c: &Contribution<'_>) -> bool {
    matches!(c.node.kind, NodeKind::Dir)
}

fn tie_problems(phase: &str, scripts: &[PlanScript], problems: &mut Vec<Problem>) {
    let mut i = 0;
    while i < scripts.len() {
        let mut j = i + 1;
        while j < scripts.len() && sort::same_key(&scripts[i].name, &scripts[j].name) {
            j += 1;
        }
        let group = &scripts[i..j];
        let mut elements: Vec<String> = group.iter().map(|s| s.element.clone()).collect();
        elements.sort();
        elements.dedup();
        if elements.len() > 1 {
            let order: Vec<String> = group
                .iter()
                .map(|s| format!("{} ({})", s.name, s.element))
                .collect();
            problems.push(Problem::new(
                ProblemKind::OrderTie,
                format!(
                    "{phase}: scripts of {} elements share the numeric prefix {}; only their \
                     names' bytes order them: {}",
                    elements.len(),
                    sort::key_text(&group[0].name),
                    order.join(", ")
                ),
                elements,
                group.iter().map(|s| s.path.clone()).collect(),
            ));
        }
        i = j;
    }
}

/// Why an entry is not run or sourced: a reason code and the reason in words.
pub(crate) type Reason = (SkipReason, String);

pub(crate) type Verdict = Result<(), Reason>;

/// What a hooks-tree entry resolves to, following symlinks as they resolve once copied.
fn resolve_entry(
    merged: &Merged<'_>,
    dir: &str,
    c: &Contribution<'_>,
    chroot: bool,
) -> Result<Resolved, (SkipReason, String)> {
    match &c.node.kind {
        NodeKind::File { executable } => Ok(Resolved::File {
            executable: *executable,
        }),
        NodeKind::Dir => Ok(Resolved::Dir),
        NodeKind::Other => Ok(Resolved::Other),
        NodeKind::Symlink { target } => resolve_link(merged, dir, target, chroot, 0),
    }
}

/// dib copies symlinks as symlinks (`cp -a`): a relative target is resolved from the hooks
/// tree, an absolute one from the host (outside the chroot) or the image (inside).
fn resolve_link(
    merged: &Merged<'_>,
    dir: &str,
    target: &str,
    chroot: bool,
    depth: usize,
) -> Result<Resolved, (SkipReason, String)> {
    let dangling = |why: String| (SkipReason::DanglingSymlink, why);
    if depth > 16 {
        return Err(dangling(format!("symlink chain to '{target}' is too deep")));
    }
    if target.starts_with('/') {
        if chroot {
            // Resolved against the image at run time: dibkit cannot know. `plan` warns.
            return Ok(Resolved::File { executable: true });
        }
        return discover::resolve_host(Path::new(target))
            .ok_or_else(|| dangling(format!("symlink target '{target}' does not exist")));
    }
    let mut parts: Vec<&str> = vec![dir];
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(dangling(format!(
                        "symlink to '{target}' points outside the hooks tree once copied"
                    )));
                }
            }
            p => parts.push(p),
        }
    }
    let Some((top, rest)) = parts.split_first() else {
        return Ok(Resolved::Dir);
    };
    let Some(entries) = merged.get(*top) else {
        return Err(dangling(format!(
            "symlink to '{target}' dangles once copied into the hooks tree (no element has \
             '{top}/')"
        )));
    };
    let Some((first, tail)) = rest.split_first() else {
        return Ok(Resolved::Dir);
    };
    let Some(contributions) = entries.get(*first) else {
        return Err(dangling(format!(
            "symlink to '{target}' dangles once copied into the hooks tree"
        )));
    };
    let c = &contributions[0];
    if tail.is_empty() {
        return match &c.node.kind {
            NodeKind::Symlink { target: t } => resolve_link(merged, top, t, chroot, depth + 1),
            _ => resolve_entry(merged, top, c, chroot),
        };
    }
    // Deeper paths: look inside whichever element ships it (directories merge).
    let rel = parts.join("/");
    for c in contributions {
        let within = format!("{top}/{first}/{}", tail.join("/"));
        if let Some(r) = discover::resolve(&c.element.root, &within) {
            return Ok(r);
        }
    }
    Err(dangling(format!(
        "symlink to '{target}' dangles once copied into the hooks tree ('{rel}' is missing)"
    )))
}

fn classify_hook(
    merged: &Merged<'_>,
    dir: &str,
    chroot: bool,
    c: &Contribution<'_>,
    filter: &NameFilter,
) -> Verdict {
    let name = &c.node.name;
    if name.starts_with('.') {
        return Err((
            SkipReason::Hidden,
            "dib copies hooks with `ls`, which never lists dotfiles".to_owned(),
        ));
    }
    judge_hook(name, resolve_entry(merged, dir, c, chroot), filter)
}

/// Whether dib-run-parts runs a hook called `name` that resolves to `resolved`: an
/// executable file (or a symlink to one) whose name passes `filter` (`RUN_PARTS_REGEX`).
/// The plan judges each element's entry with it, and the build the hooks tree as it is when
/// a phase starts (`tree.rs`).
pub(crate) fn judge_hook(
    name: &str,
    resolved: Result<Resolved, Reason>,
    filter: &NameFilter,
) -> Verdict {
    match resolved? {
        Resolved::Dir => {
            return Err((
                SkipReason::Directory,
                "a directory: dib-run-parts never descends into subdirectories".to_owned(),
            ));
        }
        Resolved::Other => {
            return Err((SkipReason::NotAFile, "not a regular file".to_owned()));
        }
        Resolved::File { executable: false } => {
            return Err((
                SkipReason::NotExecutable,
                "not executable: dib-run-parts skips it without a word".to_owned(),
            ));
        }
        Resolved::File { executable: true } => {}
    }
    if !filter.accepts(name) {
        if !filter.is_default() {
            return Err((
                SkipReason::BadName,
                format!(
                    "dib-run-parts only runs names matching RUN_PARTS_REGEX `{}`",
                    filter.as_str()
                ),
            ));
        }
        let why = if name.contains('.') {
            "the name has a dot"
        } else {
            "the name has characters outside [0-9A-Za-z_-]"
        };
        return Err((
            SkipReason::BadName,
            format!("{why}: dib-run-parts only runs names matching ^[0-9A-Za-z_-]+$"),
        ));
    }
    Ok(())
}

fn classify_env(merged: &Merged<'_>, c: &Contribution<'_>) -> Verdict {
    let name = &c.node.name;
    if name.starts_with('.') {
        return Err((
            SkipReason::Hidden,
            "dib copies environment.d with `ls`, which never lists dotfiles".to_owned(),
        ));
    }
    // environment.d is sourced both outside and inside the chroot; judge it from the hooks
    // tree as seen outside.
    judge_env(name, resolve_entry(merged, "environment.d", c, false))
}

/// Whether dib-run-parts sources an environment.d entry called `name` that resolves to
/// `resolved`: a file (or a symlink to one) named `[0-9A-Za-z_.-]+`.
pub(crate) fn judge_env(name: &str, resolved: Result<Resolved, Reason>) -> Verdict {
    match resolved? {
        Resolved::File { .. } => {}
        Resolved::Dir => {
            return Err((
                SkipReason::Directory,
                "a directory: only files are sourced".to_owned(),
            ));
        }
        Resolved::Other => return Err((SkipReason::NotAFile, "not a regular file".to_owned())),
    }
    if !environment_name_ok(name) {
        return Err((
            SkipReason::BadName,
            "only names made of [0-9A-Za-z_.-] are sourced".to_owned(),
        ));
    }
    Ok(())
}
