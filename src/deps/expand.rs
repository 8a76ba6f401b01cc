//! Dependency expansion: dib's breadth-first closure over `element-deps` and
//! `element-provides`, made deterministic.
//!
//! dib iterates Python sets, whose order changes from run to run. Where that order can change
//! the outcome, dibkit always takes one documented order (providers before other dependencies,
//! then by name) and reports that dib itself is not deterministic for the request. To find out,
//! the expansion is repeated under other valid set orders and the outcomes are compared.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::element::discover::{self, Library};

/// The virtual name every build needs exactly one provider of.
pub const OPERATING_SYSTEM: &str = "operating-system";

/// Builds the element list as disk-image-create does from its positional arguments: the
/// literal `vm` without any `block-device-*` argument adds `block-device-mbr` (or
/// `block-device-efi` when ARCH is arm64/aarch64), and `base` goes first unless `skip_base`.
#[must_use]
pub fn form_request(args: &[String], skip_base: bool, arch: &str) -> Request {
    let mut elements: Vec<String> = args.to_vec();
    let mut added = Vec::new();
    let has_vm = args.iter().any(|a| a == "vm");
    let has_block_device = args.iter().any(|a| a.starts_with("block-device-"));
    if has_vm && !has_block_device {
        // dib tests `[[ "arm64 aarch64" =~ $ARCH ]]`: ARCH is a pattern searched in that string.
        let efi = !arch.is_empty() && "arm64 aarch64".contains(arch);
        let name = if efi {
            "block-device-efi"
        } else {
            "block-device-mbr"
        };
        elements.push(name.to_owned());
        added.push((
            name.to_owned(),
            "added for `vm`: no block-device-* element named",
        ));
    }
    if !skip_base {
        elements.insert(0, "base".to_owned());
        if !args.iter().any(|a| a == "base") {
            added.push(("base".to_owned(), "added by default (-n leaves it out)"));
        }
    }
    Request { elements, added }
}

/// Why a request cannot be expanded. Each variant is a failure dib also reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// An element name that is on no path entry. `chain` runs from a requested element to the
    /// missing name (just the name when it was requested directly).
    Missing { name: String, chain: Vec<String> },
    /// Two elements provide the same name; `by` already did when `element` tried to.
    AlreadyProvided {
        name: String,
        by: Vec<String>,
        element: String,
    },
    /// Requested names that elements of the set provide: `(name, providers)`.
    Conflict { items: Vec<(String, Vec<String>)> },
    /// No element of the set provides `operating-system`.
    MissingOs,
}

impl ResolveError {
    /// A short stable identifier, used to compare outcomes and in JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ResolveError::Missing { .. } => "missing-element",
            ResolveError::AlreadyProvided { .. } => "already-provided",
            ResolveError::Conflict { .. } => "provided-conflict",
            ResolveError::MissingOs => "no-operating-system",
        }
    }

    /// The message, in dib's words where dib has any.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            ResolveError::Missing { name, .. } => format!("element '{name}' not found"),
            ResolveError::AlreadyProvided { name, by, element } => format!(
                "'{name}' is provided by both {} and '{element}'",
                quote_list(by)
            ),
            ResolveError::Conflict { items } => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|(n, by)| format!("'{n}' (provided by {})", quote_list(by)))
                    .collect();
                format!(
                    "requested element{} already provided by another element: {}",
                    if items.len() == 1 { " is" } else { "s are" },
                    parts.join(", ")
                )
            }
            ResolveError::MissingOs => {
                "no element provides 'operating-system': include an operating system element"
                    .to_owned()
            }
        }
    }
}

fn quote_list(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    q.join(", ")
}

/// One element of the expanded set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Named on the command line (after `base` and the `vm` rule are applied).
    pub requested: bool,
    /// Requested, but added by a disk-image-create rule rather than named by the user.
    pub added_by: Option<&'static str>,
    /// How the expansion reached it: a requested element first, this element last.
    pub chain: Vec<String>,
}

/// The element list disk-image-create passes on, and which entries its rules added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub elements: Vec<String>,
    /// `(element, rule)` for entries the user did not name.
    pub added: Vec<(String, &'static str)>,
}

/// The outcome of a successful expansion.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The request as formed (with `base` and the `vm` rule applied).
    pub request: Vec<String>,
    /// The element set, sorted by name.
    pub members: Vec<Member>,
    /// Virtual name → the element that provides it.
    pub provided: BTreeMap<String, String>,
}

impl Expansion {
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }
}

/// The deterministic outcome plus what dib might do instead.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: Result<Expansion, ResolveError>,
    /// Set when dib's own outcome depends on Python set order: describes the alternative.
    pub unstable: Option<String>,
}

/// The order in which one run iterates the sets dib iterates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOrder {
    /// dibkit's choice: elements that provide something first, then by name.
    ProvidersFirst,
    ProvidersLast,
    ByName,
    ByNameReversed,
}

/// Expands `request` over `lib` exactly as dib's element-info does, deterministically.
///
/// # Errors
/// Metadata of a reached element cannot be read.
pub fn expand(request: &Request, lib: &mut Library) -> Result<Outcome, discover::Error> {
    let result = run(request, lib, SetOrder::ProvidersFirst)?;
    let mut unstable = None;
    for order in [
        SetOrder::ProvidersLast,
        SetOrder::ByName,
        SetOrder::ByNameReversed,
    ] {
        let other = run(request, lib, order)?;
        if let Some(diff) = difference(&result, &other) {
            unstable = Some(diff);
            break;
        }
    }
    Ok(Outcome { result, unstable })
}

fn summary(r: &Result<Expansion, ResolveError>) -> String {
    match r {
        Ok(e) => format!("resolves to {{{}}}", e.names().join(", ")),
        Err(e) => format!("fails: {}", e.message()),
    }
}

fn difference(
    a: &Result<Expansion, ResolveError>,
    b: &Result<Expansion, ResolveError>,
) -> Option<String> {
    let same = match (a, b) {
        (Ok(x), Ok(y)) => x.names() == y.names(),
        (Err(x), Err(y)) => x.kind() == y.kind() && same_subject(x, y),
        _ => false,
    };
    (!same).then(|| {
        format!(
            "dib's result for this request depends on Python set order (PYTHONHASHSEED): \
             in some runs it {}; dibkit expands providers first and {}",
            summary(b),
            summary(a)
                .replacen("resolves", "always resolves", 1)
                .replacen("fails", "always fails", 1)
        )
    })
}

fn same_subject(x: &ResolveError, y: &ResolveError) -> bool {
    match (x, y) {
        (ResolveError::Missing { name: a, .. }, ResolveError::Missing { name: b, .. })
        | (
            ResolveError::AlreadyProvided { name: a, .. },
            ResolveError::AlreadyProvided { name: b, .. },
        ) => a == b,
        (ResolveError::Conflict { items: a }, ResolveError::Conflict { items: b }) => {
            a.iter().map(|i| &i.0).eq(b.iter().map(|i| &i.0))
        }
        _ => true,
    }
}

fn ordered(
    names: Vec<String>,
    lib: &mut Library,
    order: SetOrder,
) -> Result<Vec<String>, discover::Error> {
    if matches!(order, SetOrder::ProvidersFirst | SetOrder::ProvidersLast) {
        for n in &names {
            lib.load(n)?;
        }
    }
    let provides = |n: &str| lib.get(n).is_some_and(|e| !e.provides.is_empty());
    let mut names = names;
    match order {
        SetOrder::ProvidersFirst => names.sort_by_cached_key(|n| (!provides(n), n.clone())),
        SetOrder::ProvidersLast => {
            names.sort_by_cached_key(|n| (provides(n), std::cmp::Reverse(n.clone())));
        }
        SetOrder::ByName => names.sort_unstable(),
        SetOrder::ByNameReversed => names.sort_unstable_by(|a, b| b.cmp(a)),
    }
    Ok(names)
}

fn chain_of(name: &str, parent: &HashMap<String, String>) -> Vec<String> {
    let mut chain = vec![name.to_owned()];
    let mut cur = name;
    while let Some(p) = parent.get(cur) {
        if chain.iter().any(|c| c == p) {
            break;
        }
        chain.push(p.clone());
        cur = p;
    }
    chain.reverse();
    chain
}

type RunResult = Result<Result<Expansion, ResolveError>, discover::Error>;

fn run(request: &Request, lib: &mut Library, order: SetOrder) -> RunResult {
    let added = &request.added;
    let request = &request.elements;
    let requested: BTreeSet<&str> = request.iter().map(String::as_str).collect();
    let mut all: BTreeSet<String> = request.iter().cloned().collect();
    let mut queue: VecDeque<String> = request.iter().cloned().collect();
    let mut provided: HashSet<String> = HashSet::new();
    let mut provided_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parent: HashMap<String, String> = HashMap::new();

    while let Some(name) = queue.pop_front() {
        if provided.contains(&name) {
            continue;
        }
        if !lib.load(&name)? {
            return Ok(Err(ResolveError::Missing {
                chain: chain_of(&name, &parent),
                name,
            }));
        }
        let element = lib.get(&name).expect("loaded above");
        let offered: Vec<String> = element.provides.iter().map(|p| p.name.clone()).collect();
        let deps: Vec<String> = element.deps.iter().map(|d| d.name.clone()).collect();
        for p in ordered(offered.clone(), lib, order)? {
            if provided.contains(&p) {
                return Ok(Err(ResolveError::AlreadyProvided {
                    by: provided_by.get(&p).cloned().unwrap_or_default(),
                    name: p,
                    element: name,
                }));
            }
            provided_by.entry(p).or_default().push(name.clone());
        }
        provided.extend(offered);
        let new: Vec<String> = deps
            .iter()
            .filter(|d| !all.contains(*d) && !provided.contains(*d))
            .cloned()
            .collect();
        for d in ordered(new, lib, order)? {
            parent.entry(d.clone()).or_insert_with(|| name.clone());
            queue.push_back(d);
        }
        all.extend(deps);
    }

    let conflicts: Vec<(String, Vec<String>)> = requested
        .iter()
        .filter(|r| provided.contains(**r))
        .map(|r| ((*r).to_owned(), provided_by[*r].clone()))
        .collect();
    if !conflicts.is_empty() {
        return Ok(Err(ResolveError::Conflict { items: conflicts }));
    }
    if !provided.contains(OPERATING_SYSTEM) {
        return Ok(Err(ResolveError::MissingOs));
    }
    let members = all
        .iter()
        .filter(|n| !provided.contains(*n))
        .map(|n| Member {
            name: n.clone(),
            requested: requested.contains(n.as_str()),
            added_by: added.iter().find(|(a, _)| a == n).map(|(_, rule)| *rule),
            chain: chain_of(n, &parent),
        })
        .collect();
    let provided = provided_by
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().next().unwrap_or_default()))
        .collect();
    Ok(Ok(Expansion {
        request: request.clone(),
        members,
        provided,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::model::{Element, NameLine, Origin, Root};

    fn names(list: &str) -> Vec<NameLine> {
        list.split_whitespace()
            .enumerate()
            .map(|(i, n)| NameLine {
                name: n.to_owned(),
                line: i + 1,
                span: 0..n.len(),
            })
            .collect()
    }

    /// A library from `(name, deps, provides)` triples.
    fn lib(spec: &[(&str, &str, &str)]) -> Library {
        let mut lib = Library::default();
        for (name, deps, provides) in spec {
            lib.elements.insert(
                (*name).to_owned(),
                Element {
                    name: (*name).to_owned(),
                    root: Root::Disk(format!("/e/{name}").into()),
                    origin: Origin::Path {
                        index: 0,
                        entry: "/e".to_owned(),
                    },
                    deps: names(deps),
                    provides: names(provides),
                    shadows: Vec::new(),
                    loaded: true,
                    top: None,
                },
            );
        }
        lib
    }

    fn expand(request: &Request, lib: &Library) -> Outcome {
        let mut lib = Library {
            elements: lib.elements.clone(),
            ..Library::default()
        };
        super::expand(request, &mut lib).expect("no I/O in memory")
    }

    fn req(list: &str) -> Request {
        Request {
            elements: list.split_whitespace().map(str::to_owned).collect(),
            added: Vec::new(),
        }
    }

    fn set(outcome: &Outcome) -> Vec<&str> {
        outcome.result.as_ref().expect("resolves").names()
    }

    #[test]
    fn vm_rule_and_base() {
        let args: Vec<String> = ["os", "vm"].iter().map(|s| (*s).to_owned()).collect();
        let r = form_request(&args, false, "amd64");
        assert_eq!(r.elements, ["base", "os", "vm", "block-device-mbr"]);
        assert_eq!(r.added.len(), 2);
        assert_eq!(
            form_request(&args, true, "arm64").elements,
            ["os", "vm", "block-device-efi"]
        );
        assert_eq!(
            form_request(&args, true, "aarch64").elements,
            ["os", "vm", "block-device-efi"]
        );
        // Any block-device-* argument turns the rule off, even one that does not exist.
        let args: Vec<String> = ["vm", "block-device-nope"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(form_request(&args, true, "amd64").elements, args);
        // Only the literal word counts.
        let args: Vec<String> = vec!["vmx".to_owned()];
        assert_eq!(form_request(&args, true, "amd64").elements, args);
    }

    #[test]
    fn provided_real_element_keeps_its_deps_when_expanded_first() {
        // `x` is expanded (pulling in `xdep`) before `p` declares that it provides `x`.
        let l = lib(&[
            ("os", "", "operating-system"),
            ("top", "x q", ""),
            ("x", "xdep", ""),
            ("xdep", "", ""),
            ("q", "p", ""),
            ("p", "", "x"),
        ]);
        let o = expand(&req("top os"), &l);
        assert_eq!(set(&o), ["os", "p", "q", "top", "xdep"]);
        assert!(o.unstable.is_none());
    }

    #[test]
    fn sibling_provider_and_virtual_name_is_unstable() {
        let l = lib(&[
            ("os", "", "operating-system"),
            ("a", "b c", ""),
            ("c", "", "b"),
        ]);
        let o = expand(&req("a os"), &l);
        assert_eq!(set(&o), ["a", "c", "os"]);
        let note = o.unstable.expect("flagged");
        assert!(note.contains("element 'b' not found"), "{note}");
    }

    #[test]
    fn conflict_is_checked_before_operating_system() {
        let l = lib(&[("v", "", ""), ("p", "", "v")]);
        let o = expand(&req("p v"), &l);
        assert_eq!(o.result.unwrap_err().kind(), "provided-conflict");
        let o = expand(&req("p"), &l);
        assert_eq!(o.result.unwrap_err(), ResolveError::MissingOs);
    }

    #[test]
    fn missing_chain_runs_from_the_request() {
        let l = lib(&[
            ("os", "a", "operating-system"),
            ("a", "b", ""),
            ("b", "gone", ""),
        ]);
        let o = expand(&req("os"), &l);
        assert_eq!(
            o.result.unwrap_err(),
            ResolveError::Missing {
                name: "gone".to_owned(),
                chain: vec!["os".into(), "a".into(), "b".into(), "gone".into()],
            }
        );
    }

    #[test]
    fn two_operating_systems_conflict() {
        let l = lib(&[
            ("os1", "", "operating-system"),
            ("os2", "", "operating-system"),
        ]);
        let o = expand(&req("os1 os2"), &l);
        assert_eq!(o.result.unwrap_err().kind(), "already-provided");
    }

    #[test]
    fn chains_and_requested_flags() {
        let l = lib(&[
            ("os", "", "operating-system"),
            ("a", "b", ""),
            ("b", "c", ""),
            ("c", "", ""),
        ]);
        let o = expand(&req("a os"), &l);
        let e = o.result.unwrap();
        let c = e.members.iter().find(|m| m.name == "c").unwrap();
        assert_eq!(c.chain, ["a", "b", "c"]);
        assert!(!c.requested);
        assert!(e.members.iter().find(|m| m.name == "a").unwrap().requested);
    }
}
