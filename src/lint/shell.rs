//! lint's view of shell scripts: shebangs and the per-file cache of the shared shell reader
//! ([`crate::shell`], re-exported here). Rules call these with a [`SourceFile`].

pub use crate::shell::*;

use super::model::SourceFile;

/// The shebang line, when the file starts with `#!`.
#[must_use]
pub fn shebang(file: &SourceFile) -> Option<&str> {
    file.first_line().filter(|l| l.starts_with("#!"))
}

/// Whether the file is a bash script by its shebang (any spelling).
#[must_use]
pub fn is_bash(file: &SourceFile) -> bool {
    shebang(file).is_some_and(|s| s.contains("bash"))
}

/// Per-file shell structure, computed once and cached in the [`SourceFile`].
#[derive(Debug, Clone, Default)]
pub struct ShellInfo {
    /// `(number, span, heredoc, tab_heredoc, continuation)` per line.
    lines: Vec<(usize, std::ops::Range<usize>, bool, bool, bool)>,
    options: SetOptions,
}

fn info(file: &SourceFile) -> &ShellInfo {
    file.shell.get_or_init(|| {
        let lines = scan_lines(file.text.as_deref().unwrap_or(""));
        let options = scan_set_options(&lines);
        ShellInfo {
            lines: lines
                .iter()
                .map(|l| {
                    (
                        l.number,
                        l.span.clone(),
                        l.heredoc,
                        l.tab_heredoc,
                        l.continuation,
                    )
                })
                .collect(),
            options,
        }
    })
}

/// Every line, marking heredoc bodies and continuation lines (cached per file).
#[must_use]
pub fn code_lines(file: &SourceFile) -> Vec<CodeLine<'_>> {
    let text = file.text.as_deref().unwrap_or("");
    info(file)
        .lines
        .iter()
        .map(
            |(number, span, heredoc, tab_heredoc, continuation)| CodeLine {
                number: *number,
                text: &text[span.clone()],
                span: span.clone(),
                heredoc: *heredoc,
                tab_heredoc: *tab_heredoc,
                continuation: *continuation,
            },
        )
        .collect()
}

/// The `set` options a script turns on (cached per file).
#[must_use]
pub fn options(file: &SourceFile) -> SetOptions {
    info(file).options
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_mask_marks_literal_text_only() {
        let line = r#"echo "x, which is $(which y)" 'which' which"#;
        let mask = super::quoted_mask(line);
        let at = |needle: &str, nth: usize| line.match_indices(needle).nth(nth).unwrap().0;
        assert!(mask[at("which", 0)], "inside double quotes");
        assert!(
            !mask[at("which", 1)],
            "command substitution inside double quotes"
        );
        assert!(mask[at("which", 2)], "inside single quotes");
        assert!(!mask[at("which", 3)], "unquoted");
    }

    use super::*;
    use std::path::PathBuf;

    fn file(text: &str) -> SourceFile {
        let mut f = SourceFile::new(
            PathBuf::from("x"),
            None,
            "install.d/10-x".into(),
            super::super::model::FileKind::File,
        );
        f.set_content(text.as_bytes().to_vec());
        f
    }

    #[test]
    fn set_forms() {
        let f = file("#!/bin/bash\nset -euo pipefail\n");
        let o = set_options(&code_lines(&f));
        assert!(o.errexit && o.nounset && o.pipefail && !o.xtrace);
        let f = file("#!/bin/bash\nset -o errexit\nset -o nounset -o pipefail\n");
        let o = set_options(&code_lines(&f));
        assert!(o.errexit && o.nounset && o.pipefail);
        let f = file("#!/bin/bash\n# set -e\necho 'set -e'\n");
        assert_eq!(set_options(&code_lines(&f)), SetOptions::default());
        let f = file("#!/bin/bash\ncat <<EOF\nset -e\nEOF\n");
        assert!(!set_options(&code_lines(&f)).errexit);
    }

    #[test]
    fn heredocs_and_continuations() {
        let f = file("cat <<-'EOF' > x\n  body\n\tEOF\nfoo \\\n   bar\n");
        let l = code_lines(&f);
        assert!(!l[0].heredoc && l[1].heredoc && l[2].heredoc && !l[3].heredoc);
        assert!(l[4].continuation);
        let f = file("x <<< \"$y\"\nnext\n");
        assert!(!code_lines(&f)[1].heredoc);
    }

    #[test]
    fn variable_references() {
        let r = var_refs(r#"echo $A "${B:-x}" '$C' ${D} \$E ${#F} $1"#);
        let names: Vec<(&str, bool)> = r.iter().map(|v| (v.name.as_str(), v.guarded)).collect();
        assert_eq!(names, [("A", false), ("B", true), ("D", false)]);
    }

    #[test]
    fn assignments() {
        assert_eq!(assigned_names("export A=1 B=2"), ["A", "B"]);
        assert_eq!(assigned_names("C=3 cmd"), ["C"]);
        assert_eq!(assigned_names("for x in a b; do"), ["x"]);
        assert_eq!(assigned_names("echo D=4"), Vec::<String>::new());
    }
}
