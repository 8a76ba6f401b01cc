//! Pure parsers for element metadata files. They take text and return values with line numbers;
//! they never touch the filesystem.

use super::model::NameLine;

/// Whitespace as Python's `str.strip()` sees it: Unicode whitespace plus the ASCII separators
/// `\x1c`..`\x1f`, which Rust's `char::is_whitespace` does not include.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Parses `element-deps` / `element-provides` as dib does: one name per line, each line
/// stripped, blank lines dropped, duplicates collapsed. Comments do not exist: a line `# foo` is
/// the name `# foo`. The first occurrence of a name keeps its line number.
#[must_use]
pub fn name_list(text: &str) -> Vec<NameLine> {
    let mut out: Vec<NameLine> = Vec::new();
    // Python's text mode uses universal newlines: `\r\n`, `\r` and `\n` all end a line.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for (i, raw) in normalized.split('\n').enumerate() {
        let name = raw.trim_matches(is_py_space);
        if name.is_empty() || out.iter().any(|n| n.name == name) {
            continue;
        }
        out.push(NameLine {
            name: name.to_owned(),
            line: i + 1,
        });
    }
    out
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
    fn no_trailing_newline_needed() {
        assert_eq!(names("x"), [("x".to_owned(), 1)]);
    }
}
