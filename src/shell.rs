//! Just enough shell reading for dibkit: comments, quoting, heredoc bodies, continuation
//! lines, `set` options, variable references and assignments. Line-based, like dib-lint,
//! but without its blind spots (long `set` forms, heredoc bodies, comments). Pure functions
//! on text, shared by lint, `dibkit new` and the block-device code; lint's per-file cache
//! lives in `lint::shell`.

use std::ops::Range;

/// A line of shell code, with where it sits.
#[derive(Debug, Clone)]
pub struct CodeLine<'a> {
    pub number: usize,
    pub text: &'a str,
    pub span: Range<usize>,
    /// Inside a heredoc body: data, not code.
    pub heredoc: bool,
    /// Inside a `<<-` heredoc body, where leading tabs are stripped (syntax, not indentation).
    pub tab_heredoc: bool,
    /// Continues the previous line (after a trailing backslash).
    pub continuation: bool,
}

impl CodeLine<'_> {
    /// The line without leading blanks.
    #[must_use]
    pub fn trimmed(&self) -> &str {
        self.text.trim_start()
    }

    /// A whole-line comment (or the shebang).
    #[must_use]
    pub fn is_comment(&self) -> bool {
        self.trimmed().starts_with('#')
    }

    /// The code part, with a trailing ` # comment` removed (quotes respected roughly).
    #[must_use]
    pub fn code(&self) -> &str {
        strip_comment(self.text)
    }
}

/// Removes a trailing comment: a `#` at the start or after a blank, outside quotes.
#[must_use]
pub fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !single => i += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return &line[..i];
            }
            _ => {}
        }
        i += 1;
    }
    line
}

/// Which bytes of `line` are quoted text: inside single quotes, or inside double quotes but
/// not in a `$(...)` or backtick command substitution there. A word at such a byte is not a
/// command.
#[must_use]
pub fn quoted_mask(line: &str) -> Vec<bool> {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Code,
        Single,
        Double,
        /// `$(` inside double quotes, with its parenthesis depth.
        Subst(u32),
        Backtick,
    }
    let bytes = line.as_bytes();
    let mut mask = vec![false; bytes.len()];
    let mut stack = vec![Ctx::Code];
    let mut i = 0;
    while i < bytes.len() {
        let ctx = *stack.last().unwrap_or(&Ctx::Code);
        let b = bytes[i];
        match ctx {
            Ctx::Single => {
                mask[i] = true;
                if b == b'\'' {
                    stack.pop();
                }
            }
            Ctx::Double => {
                mask[i] = true;
                match b {
                    b'\\' => {
                        if i + 1 < bytes.len() {
                            mask[i + 1] = true;
                        }
                        i += 1;
                    }
                    b'"' => {
                        stack.pop();
                    }
                    b'$' if bytes.get(i + 1) == Some(&b'(') => {
                        stack.push(Ctx::Subst(1));
                        i += 1;
                    }
                    b'`' => stack.push(Ctx::Backtick),
                    _ => {}
                }
            }
            Ctx::Code | Ctx::Subst(_) | Ctx::Backtick => match b {
                b'\\' => i += 1,
                b'\'' => {
                    mask[i] = true;
                    stack.push(Ctx::Single);
                }
                b'"' => {
                    mask[i] = true;
                    stack.push(Ctx::Double);
                }
                b'`' if ctx == Ctx::Backtick => {
                    stack.pop();
                }
                b'(' => {
                    if let Some(Ctx::Subst(depth)) = stack.last_mut() {
                        *depth += 1;
                    }
                }
                b')' => {
                    if let Some(Ctx::Subst(depth)) = stack.last_mut() {
                        *depth -= 1;
                        if *depth == 0 {
                            stack.pop();
                        }
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    mask
}

/// Every line of a script with its number and byte span (without the newline), marking
/// heredoc bodies and continuation lines.
#[must_use]
pub fn scan_lines(text: &str) -> Vec<CodeLine<'_>> {
    let mut out = Vec::new();
    let mut pending: Vec<(String, bool)> = Vec::new(); // heredoc terminators, strip tabs
    let mut continued = false;
    let mut start = 0;
    let numbered = text.split_inclusive('\n').enumerate().map(|(i, l)| {
        let body = l.strip_suffix('\n').unwrap_or(l);
        let span = start..start + body.len();
        start += l.len();
        (i + 1, body, span)
    });
    for (number, text, span) in numbered {
        if let Some((term, strip_tabs)) = pending.first().cloned() {
            let candidate = if strip_tabs {
                text.trim_start_matches('\t')
            } else {
                text
            };
            out.push(CodeLine {
                number,
                text,
                span,
                heredoc: true,
                tab_heredoc: strip_tabs,
                continuation: false,
            });
            if candidate == term {
                pending.remove(0);
            }
            continue;
        }
        let continuation = continued;
        continued = !text.trim_start().starts_with('#') && text.ends_with('\\');
        if text.contains("<<") && !text.trim_start().starts_with('#') {
            pending.extend(heredoc_terminators(strip_comment(text)));
        }
        out.push(CodeLine {
            number,
            text,
            span,
            heredoc: false,
            tab_heredoc: false,
            continuation,
        });
    }
    out
}

/// Terminators of heredocs started on this line: `<<EOF`, `<<-'EOF'`, `<< "EOF"`.
fn heredoc_terminators(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find("<<") {
        let after = &rest[pos + 2..];
        if let Some(here_string) = after.strip_prefix('<') {
            // A here-string (`<<<`): not a heredoc.
            rest = here_string;
            continue;
        }
        let (strip, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let after = after.trim_start();
        let word: String = after
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '|' | '&' | '<' | '>' | ')'))
            .collect();
        let term: String = word
            .chars()
            .filter(|c| !matches!(c, '\'' | '"' | '\\'))
            .collect();
        if !term.is_empty() {
            out.push((term, strip));
        }
        rest = &after[word.len().min(after.len())..];
    }
    out
}

/// Which shell options a script turns on with `set`, anywhere at the start of a code line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetOptions {
    pub errexit: bool,
    pub nounset: bool,
    pub pipefail: bool,
    pub xtrace: bool,
}

/// Reads every `set` command: short flags (`-eu`, `-euo pipefail`, `-e -u`) and long forms
/// (`-o errexit`).
#[must_use]
pub fn set_options(lines: &[CodeLine<'_>]) -> SetOptions {
    scan_set_options(lines)
}

pub(crate) fn scan_set_options(lines: &[CodeLine<'_>]) -> SetOptions {
    let mut opts = SetOptions::default();
    for line in lines.iter().filter(|l| !l.heredoc && !l.is_comment()) {
        if !line.text.contains("set") {
            continue;
        }
        for command in line.code().split([';', '&', '|']) {
            let mut words = command.split_whitespace();
            if words.next() != Some("set") {
                continue;
            }
            let words: Vec<&str> = words.collect();
            let mut i = 0;
            while i < words.len() {
                let w = words[i];
                if let Some(flags) = w.strip_prefix('-') {
                    let mut takes_name = false;
                    for c in flags.chars() {
                        match c {
                            'e' => opts.errexit = true,
                            'u' => opts.nounset = true,
                            'x' => opts.xtrace = true,
                            'o' => takes_name = true,
                            _ => {}
                        }
                    }
                    if takes_name {
                        i += 1;
                        match words.get(i).copied() {
                            Some("errexit") => opts.errexit = true,
                            Some("nounset") => opts.nounset = true,
                            Some("pipefail") => opts.pipefail = true,
                            Some("xtrace") => opts.xtrace = true,
                            _ => {}
                        }
                    }
                }
                i += 1;
            }
        }
    }
    opts
}

/// A `$NAME` or `${NAME...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    /// Byte range within the line.
    pub range: Range<usize>,
    /// Guarded by a default or test operator (`:-`, `-`, `:=`, `=`, `:+`, `+`, `:?`, `?`).
    pub guarded: bool,
}

/// Variable references that expand (outside single quotes).
#[must_use]
pub fn var_refs(line: &str) -> Vec<VarRef> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !single => {
                i += 2;
                continue;
            }
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'$' if !single => {
                let start = i;
                if bytes.get(i + 1) == Some(&b'{') {
                    let name_start = i + 2;
                    let mut j = name_start;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                    if j > name_start && !bytes[name_start].is_ascii_digit() {
                        let op = &line[j..];
                        let guarded = [":-", ":=", ":+", ":?", "-", "=", "+", "?"]
                            .iter()
                            .any(|o| op.starts_with(o));
                        let end = line[j..].find('}').map_or(bytes.len(), |e| j + e + 1);
                        out.push(VarRef {
                            name: line[name_start..j].to_owned(),
                            range: start..end,
                            guarded,
                        });
                        i = end;
                        continue;
                    }
                } else {
                    let name_start = i + 1;
                    let mut j = name_start;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                    if j > name_start && !bytes[name_start].is_ascii_digit() {
                        out.push(VarRef {
                            name: line[name_start..j].to_owned(),
                            range: start..j,
                            guarded: false,
                        });
                        i = j;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Names a line assigns or declares: `X=`, `export X=`, `export X`, `local X`, `read X`,
/// `for X in`, `declare X`.
#[must_use]
pub fn assigned_names(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for command in strip_comment(line).split([';', '&', '|']) {
        let words: Vec<&str> = command.split_whitespace().collect();
        let mut k = 0;
        while k < words.len() {
            let w = words[k];
            if let Some((name, _)) = w.split_once('=') {
                let name = name.trim_end_matches('+');
                if is_name(name) {
                    out.push(name.to_owned());
                    k += 1;
                    continue;
                }
            }
            match w {
                "export" | "local" | "declare" | "readonly" | "typeset" | "read" => {
                    for arg in &words[k + 1..] {
                        if arg.starts_with('-') {
                            continue;
                        }
                        let name = arg.split('=').next().unwrap_or("");
                        if is_name(name) {
                            out.push(name.to_owned());
                        }
                    }
                    break;
                }
                "for" => {
                    if let Some(n) = words.get(k + 1).filter(|n| is_name(n)) {
                        out.push((*n).to_owned());
                    }
                    break;
                }
                _ => break,
            }
        }
    }
    out
}

/// Whether `s` is a shell variable name.
#[must_use]
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
