//! Pure parsers for element metadata files. They take text and return values with line numbers;
//! they never touch the filesystem.

use super::model::NameLine;

/// Whitespace as Python's `str.strip()` sees it: Unicode whitespace plus the ASCII separators
/// `\x1c`..`\x1f`, which Rust's `char::is_whitespace` does not include.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Every name line of `element-deps` / `element-provides` as dib reads it: lines end at
/// `\r\n`, `\r` or `\n` (Python's universal newlines), each is stripped of Python
/// whitespace, blank ones are dropped. Comments do not exist: a line `# foo` is the name
/// `# foo`. Duplicates are kept (lint reports them); `span` is the name's byte range in
/// `text` and `line` its line number counting every kind of line end.
#[must_use]
pub fn name_lines(text: &str) -> Vec<NameLine> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut line, mut i) = (0, 1, 0);
    while start <= bytes.len() {
        while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
            i += 1;
        }
        let raw = &text[start..i];
        let name = raw.trim_matches(is_py_space);
        if !name.is_empty() {
            let offset = start + (raw.len() - raw.trim_start_matches(is_py_space).len());
            out.push(NameLine {
                name: name.to_owned(),
                line,
                span: offset..offset + name.len(),
            });
        }
        if i >= bytes.len() {
            break;
        }
        i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        start = i;
        line += 1;
    }
    out
}

/// Parses `element-deps` / `element-provides` as dib does: [`name_lines`] with duplicates
/// collapsed (dib reads a set); the first occurrence of a name keeps its place.
#[must_use]
pub fn name_list(text: &str) -> Vec<NameLine> {
    let mut out: Vec<NameLine> = Vec::new();
    for n in name_lines(text) {
        if !out.iter().any(|o| o.name == n.name) {
            out.push(n);
        }
    }
    out
}

/// One `when` statement of a package-installs rule: `NAME = value` or `NAME != value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When<'a> {
    /// The variable: ASCII letters, digits and `_`.
    pub name: &'a str,
    /// `!=` rather than `=`.
    pub negate: bool,
    /// Everything after the operator and the blanks that follow it, as dib compares it
    /// (`NAME == x` compares with `= x`).
    pub value: &'a str,
}

/// Why a `when` statement does not parse; package-installs stops with `Malformed when line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenError {
    /// It does not start with a variable name (a leading blank counts).
    NoName,
    /// No `=` or `!=` follows the name.
    NoOperator,
}

/// Parses a `when` statement as package-installs does: a name made of `[A-Za-z0-9_]` at the
/// very start, optional whitespace, `!=` or `=`, optional whitespace, the value.
///
/// # Errors
/// See [`WhenError`].
pub fn when(stmt: &str) -> Result<When<'_>, WhenError> {
    let name_len = stmt
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if name_len == 0 {
        return Err(WhenError::NoName);
    }
    let rest = stmt[name_len..].trim_start_matches(char::is_whitespace);
    let (negate, value) = if let Some(v) = rest.strip_prefix("!=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (false, v)
    } else {
        return Err(WhenError::NoOperator);
    };
    Ok(When {
        name: &stmt[..name_len],
        negate,
        value: value.trim_start_matches(char::is_whitespace),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, usize)> {
        name_list(text)
            .into_iter()
            .map(|n| (n.name, n.line))
            .collect()
    }

    #[test]
    fn strips_and_drops_blank_lines() {
        assert_eq!(names("\n\n  os  \n\n"), [("os".to_owned(), 3)]);
    }

    #[test]
    fn comments_are_names() {
        assert_eq!(
            names("# a comment\nos"),
            [("# a comment".to_owned(), 1), ("os".to_owned(), 2)]
        );
    }

    #[test]
    fn duplicates_collapse_to_first_line() {
        assert_eq!(
            names("a\nb\na\n"),
            [("a".to_owned(), 1), ("b".to_owned(), 2)]
        );
    }

    #[test]
    fn universal_newlines_and_python_whitespace() {
        assert_eq!(
            names("a\r\nb\rc\x1c\n\t d\x0b"),
            [
                ("a".to_owned(), 1),
                ("b".to_owned(), 2),
                ("c".to_owned(), 3),
                ("d".to_owned(), 4)
            ]
        );
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "  a \r\n# c\rb\x1c\nb\n";
        let lines = name_lines(text);
        let got: Vec<(&str, usize, &str)> = lines
            .iter()
            .map(|n| (n.name.as_str(), n.line, &text[n.span.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 1, "a"),
                ("# c", 2, "# c"),
                ("b", 3, "b"),
                ("b", 4, "b")
            ]
        );
        assert_eq!(name_list(text).len(), 3);
    }

    /// See: issue 17 (`a\rb` is two names for dib, so for order and lint alike).
    #[test]
    fn a_lone_carriage_return_ends_a_line() {
        assert_eq!(names("a\rb"), [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    }

    #[test]
    fn when_statements() {
        assert_eq!(
            when("DIB_X != a b"),
            Ok(When {
                name: "DIB_X",
                negate: true,
                value: "a b"
            })
        );
        assert_eq!(when("X=").map(|w| (w.negate, w.value)), Ok((false, "")));
        assert_eq!(when("X == 1").map(|w| w.value), Ok("= 1"));
        assert_eq!(when(" X = 1"), Err(WhenError::NoName));
        assert_eq!(when("X"), Err(WhenError::NoOperator));
        assert_eq!(when("X ~ 1"), Err(WhenError::NoOperator));
    }

    #[test]
    fn no_trailing_newline_needed() {
        assert_eq!(names("x"), [("x".to_owned(), 1)]);
    }
}
