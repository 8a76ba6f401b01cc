//! Why a request does not resolve, in words: the message, notes and a hint for each
//! [`ResolveError`], with the file and line that named a missing element. `order`,
//! `packages`, `build` and `lint --elements` all explain failures through this; only the
//! command line decides how to show it.

use crate::element::discover::Library;

use super::expand::{self, ResolveError};

/// A resolution failure explained for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One line: what failed and where.
    pub message: String,
    pub notes: Vec<String>,
    pub hint: Option<String>,
}

impl Explanation {
    /// The explanation on one line (`message; note (help: hint)`).
    #[must_use]
    pub fn one_line(&self) -> String {
        let mut text = self.message.clone();
        for n in &self.notes {
            text.push_str(&format!("; {n}"));
        }
        if let Some(h) = &self.hint {
            text.push_str(&format!(" (help: {h})"));
        }
        text
    }
}

/// Explains `err`. Hints look across the whole path, so every element's metadata is read;
/// an unreadable file elsewhere only weakens them.
pub fn explain(err: &ResolveError, lib: &mut Library) -> Explanation {
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
    Explanation {
        message,
        notes,
        hint,
    }
}

/// The element name closest to `name`, if one is close enough to be a typo.
#[must_use]
pub fn did_you_mean(name: &str, lib: &Library) -> Option<String> {
    lib.elements
        .keys()
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}
