//! Hook calls: a script that runs another phase script itself, besides that script's own
//! turn (debootstrap's `root.d/10-debootstrap` runs the OS element's sources and base-install
//! scripts on a fresh tree before caching it). An element declares them in its top-level
//! `hook-calls` file, one per line:
//!
//! ```text
//! # CALLER                      CALLEE                              [when CONDITION]
//! root.d/10-debootstrap         root.d/55-debian-apt-sources        when the tree is built fresh
//! root.d/60-base-install        pre-install.d/85-dpkg-apt-update
//! ```
//!
//! `#` starts a comment line. Each of CALLER and CALLEE is `PHASE/SCRIPT`, a script of the
//! image's hooks tree (from any element). Without `when` the caller makes the call on every
//! build; with it, only under the condition (free text, shown by `dibkit order`). The plan
//! attaches each call to its caller's entry; `dibkit build` records every call a script makes
//! through `dibkit run-hook` and reports, as drift, a call the plan does not declare and an
//! unconditional call that never happened. Pure parsing here; `simulate.rs` reads the files.

use serde::Serialize;

/// The file an element declares its hook calls in.
pub const FILE: &str = "hook-calls";

/// One declared call, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// 1-based line of the declaration.
    pub line: usize,
    pub caller: (String, String),
    pub callee: (String, String),
    pub when: Option<String>,
}

/// A call in the plan, under its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanCall {
    pub phase: String,
    pub name: String,
    pub element: String,
    /// The condition; `None`: on every run of the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// `PATH:LINE` of the declaration.
    pub declared: String,
}

/// A line that is not a declaration: its 1-based number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn hook(word: &str, line: usize, phases: &[&str]) -> Result<(String, String), ParseError> {
    let err = |message: String| ParseError { line, message };
    let (phase, name) = word
        .split_once('/')
        .ok_or_else(|| err(format!("`{word}` is not PHASE/SCRIPT")))?;
    if !phases.contains(&phase) {
        return Err(err(format!("`{phase}` is not a phase directory")));
    }
    if name.is_empty() || name.contains('/') {
        return Err(err(format!("`{word}` is not PHASE/SCRIPT")));
    }
    Ok((phase.to_owned(), name.to_owned()))
}

/// Parses a `hook-calls` file. `phases` are the phase directory names.
///
/// # Errors
/// The first line that is neither a comment, blank, nor `CALLER CALLEE [when CONDITION]`.
pub fn parse(text: &str, phases: &[&str]) -> Result<Vec<Declared>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        let (Some(from), Some(to)) = (words.next(), words.next()) else {
            return Err(ParseError {
                line,
                message: "expected `CALLER CALLEE [when CONDITION]`".to_owned(),
            });
        };
        let rest: Vec<&str> = words.collect();
        let when = match rest.split_first() {
            None => None,
            Some((&"when", cond)) if !cond.is_empty() => Some(cond.join(" ")),
            Some(_) => {
                return Err(ParseError {
                    line,
                    message: format!(
                        "`{}` after the callee: expected `when CONDITION`",
                        rest.join(" ")
                    ),
                });
            }
        };
        let by = hook(from, line, phases)?;
        let runs = hook(to, line, phases)?;
        if crate::element::model::Phase::from_dir(&by.0)
            .is_some_and(crate::element::model::Phase::chroot)
        {
            return Err(ParseError {
                line,
                message: format!(
                    "{}/{} runs inside the chroot, where `dibkit run-hook` is not available: \
                     only scripts of host phases can declare calls",
                    by.0, by.1
                ),
            });
        }
        if by == runs {
            return Err(ParseError {
                line,
                message: format!("{}/{} calls itself", by.0, by.1),
            });
        }
        out.push(Declared {
            line,
            caller: by,
            callee: runs,
            when,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: &[&str] = &["root.d", "pre-install.d"];

    #[test]
    fn declarations_with_and_without_condition() {
        let got = parse(
            "# caller callee\n\nroot.d/10-a  root.d/55-b  when  the tree is fresh\n root.d/55-b pre-install.d/85-c\n",
            PHASES,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Declared {
                    line: 3,
                    caller: ("root.d".into(), "10-a".into()),
                    callee: ("root.d".into(), "55-b".into()),
                    when: Some("the tree is fresh".into()),
                },
                Declared {
                    line: 4,
                    caller: ("root.d".into(), "55-b".into()),
                    callee: ("pre-install.d".into(), "85-c".into()),
                    when: None,
                },
            ]
        );
    }

    #[test]
    fn chroot_phase_scripts_cannot_call() {
        let err = parse("pre-install.d/85-c root.d/10-a\n", PHASES).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("inside the chroot"), "{}", err.message);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let cases = [
            (
                "root.d/10-a\n",
                1,
                "expected `CALLER CALLEE [when CONDITION]`",
            ),
            (
                "\nroot.d/10-a install.d/20-b\n",
                2,
                "`install.d` is not a phase directory",
            ),
            ("root.d/10-a 55-b\n", 1, "`55-b` is not PHASE/SCRIPT"),
            (
                "root.d/10-a root.d/55-b if fresh\n",
                1,
                "`if fresh` after the callee: expected `when CONDITION`",
            ),
            (
                "root.d/10-a root.d/55-b when\n",
                1,
                "`when` after the callee: expected `when CONDITION`",
            ),
            ("root.d/10-a root.d/10-a\n", 1, "root.d/10-a calls itself"),
        ];
        for (text, line, message) in cases {
            assert_eq!(
                parse(text, PHASES),
                Err(ParseError {
                    line,
                    message: message.to_owned()
                }),
                "{text:?}"
            );
        }
    }
}
