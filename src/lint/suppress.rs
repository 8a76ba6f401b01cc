//! In-file suppressions: `# dibkit: disable=DIB104,setu` (a trailing comment covers its
//! line; a comment on a line of its own covers the file) and dib-lint's own
//! `# dib-lint: disable=sete setu` (at column 0, the whole file, as dib-lint reads it).

use super::diagnostic::FileId;
use super::model::SourceFile;
use super::registry::{self, Rule};

/// One rule named in one `# dibkit: disable=` comment.
#[derive(Debug, Clone)]
pub struct Directive {
    pub file: FileId,
    /// The line the comment is on.
    pub line: usize,
    pub span: std::ops::Range<usize>,
    /// `None`: the whole file.
    pub applies_to_line: Option<usize>,
    pub rule: &'static Rule,
    /// Came from dibkit's own syntax (only those are reported when unused).
    pub dibkit: bool,
    pub used: bool,
}

/// A name in a suppression comment that matches no rule.
#[derive(Debug, Clone)]
pub struct BadName {
    pub file: FileId,
    pub span: std::ops::Range<usize>,
    pub name: String,
}

/// Reads the suppression comments of a file.
pub fn parse(id: FileId, f: &SourceFile, out: &mut Vec<Directive>, bad: &mut Vec<BadName>) {
    if f.text.is_none() {
        return;
    }
    for (n, line, span) in f.lines() {
        if let Some(pos) = line.find("# dibkit: disable=") {
            let list = &line[pos + "# dibkit: disable=".len()..];
            let standalone = line[..pos].trim().is_empty();
            let mut offset = span.start + pos + "# dibkit: disable=".len();
            for raw in list.split([',', ' ']) {
                let name = raw.trim();
                let here = offset..offset + raw.len();
                offset += raw.len() + 1;
                if name.is_empty() {
                    continue;
                }
                match registry::find(name) {
                    Some(rule) => out.push(Directive {
                        file: id,
                        line: n,
                        span: here,
                        applies_to_line: (!standalone).then_some(n),
                        rule,
                        dibkit: true,
                        used: false,
                    }),
                    None => bad.push(BadName {
                        file: id,
                        span: here,
                        name: name.to_owned(),
                    }),
                }
            }
        }
        if let Some(list) = line.strip_prefix("# dib-lint: disable=") {
            for name in list.split_whitespace() {
                // dib-lint ignores names it does not know; so does dibkit here.
                if let Some(rule) = registry::find(name) {
                    out.push(Directive {
                        file: id,
                        line: n,
                        span: span.clone(),
                        applies_to_line: None,
                        rule,
                        dibkit: false,
                        used: false,
                    });
                }
            }
        }
    }
}
