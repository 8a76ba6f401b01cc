//! A YAML tree with source positions, built on yaml-rust2's event parser, and the scalar rules
//! of YAML 1.1 that PyYAML (and so dib) applies.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parsed node with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub offset: usize,
    /// An explicit tag, as written after resolution (`!!int` is `tag:yaml.org,2002:int`).
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, with whether it was written plain (unquoted).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Alias,
}

impl Node {
    /// The scalar as PyYAML's safe_load types it.
    #[must_use]
    pub fn scalar_type(&self) -> Option<ScalarType> {
        match &self.value {
            Value::Scalar { text, plain: true } => Some(yaml11_type(text)),
            Value::Scalar { .. } => Some(ScalarType::Str),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Falsy as Python sees the loaded value (`null`, `""`, `false`, `0`, `{}`, `[]`).
    #[must_use]
    pub fn is_falsy(&self) -> bool {
        match &self.value {
            Value::Scalar { text, plain } => {
                text.is_empty()
                    || (*plain
                        && match yaml11_type(text) {
                            ScalarType::Null => true,
                            ScalarType::Bool(b) => !b,
                            ScalarType::Int | ScalarType::Float => text
                                .trim_start_matches(['+', '-'])
                                .chars()
                                .all(|c| c == '0' || c == '.' || c == '_'),
                            ScalarType::Str => false,
                        })
            }
            Value::Seq(v) => v.is_empty(),
            Value::Map(m) => m.is_empty(),
            Value::Alias => false,
        }
    }
}

/// What PyYAML makes of a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

/// YAML 1.1 resolution, as PyYAML's SafeLoader does it.
#[must_use]
pub fn yaml11_type(text: &str) -> ScalarType {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "y" | "Y" => {
            // PyYAML does not resolve bare y/Y; keep them strings.
            return if text.eq_ignore_ascii_case("y") {
                ScalarType::Str
            } else {
                ScalarType::Bool(true)
            };
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return ScalarType::Bool(false);
        }
        _ => {}
    }
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let digits_ = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '_');
    if digits_(body)
        || body
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '_'))
        || body
            .strip_prefix("0b")
            .is_some_and(|b| !b.is_empty() && b.chars().all(|c| matches!(c, '0' | '1' | '_')))
    {
        return ScalarType::Int;
    }
    // Sexagesimal ints (`1:30`) are also ints in YAML 1.1.
    if body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return ScalarType::Int;
    }
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return ScalarType::Float;
    }
    // [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let exp_ok = exp.is_none_or(|e| {
        e.len() > 1 && e.starts_with(['+', '-']) && e[1..].chars().all(|c| c.is_ascii_digit())
    });
    if exp_ok {
        if let Some((int, frac)) = mantissa.split_once('.') {
            let int_ok = int.is_empty()
                || (int.starts_with(|c: char| c.is_ascii_digit())
                    && int.chars().all(|c| c.is_ascii_digit() || c == '_'));
            if int_ok && frac.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return ScalarType::Float;
            }
        }
    }
    ScalarType::Str
}

/// What Python's `str()` gives for a plain scalar once PyYAML has typed it, when that differs
/// from the text written (`3.10` → `3.1`, `yes` → `True`, `010` → `8`).
#[must_use]
pub fn python_str_if_changed(text: &str) -> Option<String> {
    let shown = match yaml11_type(text) {
        ScalarType::Str => return None,
        ScalarType::Null => "None".to_owned(),
        ScalarType::Bool(b) => if b { "True" } else { "False" }.to_owned(),
        ScalarType::Int => {
            let body = text.replace('_', "");
            let (neg, digits) = match body.strip_prefix('-') {
                Some(d) => (true, d.to_owned()),
                None => (false, body.trim_start_matches('+').to_owned()),
            };
            let value = if let Some(h) = digits.strip_prefix("0x") {
                i128::from_str_radix(h, 16).ok()
            } else if let Some(b) = digits.strip_prefix("0b") {
                i128::from_str_radix(b, 2).ok()
            } else if digits.contains(':') {
                digits
                    .split(':')
                    .try_fold(0i128, |acc, p| p.parse::<i128>().ok().map(|v| acc * 60 + v))
            } else if digits.len() > 1 && digits.starts_with('0') {
                i128::from_str_radix(&digits, 8).ok()
            } else {
                digits.parse::<i128>().ok()
            };
            match value {
                Some(v) => format!("{}{v}", if neg { "-" } else { "" }),
                None => return None,
            }
        }
        ScalarType::Float => {
            let lower = text.to_ascii_lowercase();
            if lower.ends_with("inf") {
                if lower.starts_with('-') {
                    "-inf"
                } else {
                    "inf"
                }
                .to_owned()
            } else if lower.ends_with("nan") {
                "nan".to_owned()
            } else {
                let v: f64 = text.replace('_', "").parse().ok()?;
                let mut r = format!("{v}");
                if !r.contains(['.', 'e', 'E']) {
                    r.push_str(".0");
                }
                r
            }
        }
    };
    (shown != text).then_some(shown)
}

/// A parse failure with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub offset: Option<usize>,
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>)>,
    docs: Vec<Node>,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                _ => {}
            },
        }
    }
}

fn tag_name(tag: Option<yaml_rust2::parser::Tag>) -> Option<String> {
    tag.map(|t| {
        if t.handle == "!!" {
            format!("tag:yaml.org,2002:{}", t.suffix)
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let offset = mark.index();
        match ev {
            Event::Scalar(text, style, _, tag) => self.push(Node {
                value: Value::Scalar {
                    text,
                    plain: style == TScalarStyle::Plain,
                },
                offset,
                tag: tag_name(tag),
            }),
            Event::SequenceStart(_, tag) => self.stack.push((
                Node {
                    value: Value::Seq(Vec::new()),
                    offset,
                    tag: tag_name(tag),
                },
                None,
            )),
            Event::MappingStart(_, tag) => self.stack.push((
                Node {
                    value: Value::Map(Vec::new()),
                    offset,
                    tag: tag_name(tag),
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push(node);
                }
            }
            Event::Alias(_) => self.push(Node {
                value: Value::Alias,
                offset,
                tag: None,
            }),
            _ => {}
        }
    }
}

/// What PyYAML's `safe_load` refuses in a well-formed document: tags it has no constructor
/// for, tagged values of the wrong form (`!!int abc`), and keys that cannot be hashed (a
/// sequence or mapping as a key).
fn safe_load_problem(node: &Node) -> Option<ParseError> {
    const STD: &str = "tag:yaml.org,2002:";
    if let Some(tag) = &node.tag {
        let ok = match (tag.strip_prefix(STD), &node.value) {
            (Some("str" | "binary" | "timestamp"), Value::Scalar { .. })
            | (Some("map" | "set"), Value::Map(_))
            | (Some("seq" | "omap" | "pairs"), Value::Seq(_)) => true,
            (Some("null"), Value::Scalar { text, .. }) => yaml11_type(text) == ScalarType::Null,
            (Some("bool"), Value::Scalar { text, .. }) => {
                matches!(yaml11_type(text), ScalarType::Bool(_))
            }
            (Some("int"), Value::Scalar { text, .. }) => yaml11_type(text) == ScalarType::Int,
            (Some("float"), Value::Scalar { text, .. }) => {
                matches!(yaml11_type(text), ScalarType::Int | ScalarType::Float)
            }
            _ => false,
        };
        if !ok {
            let shown = tag.replace(STD, "!!");
            return Some(ParseError {
                message: format!("safe_load cannot construct `{shown}` here"),
                offset: Some(node.offset),
            });
        }
    }
    match &node.value {
        Value::Seq(items) => items.iter().find_map(safe_load_problem),
        Value::Map(entries) => entries.iter().find_map(|(k, v)| {
            if matches!(k.value, Value::Seq(_) | Value::Map(_)) {
                return Some(ParseError {
                    message: "a sequence or mapping cannot be a mapping key (unhashable in Python)"
                        .to_owned(),
                    offset: Some(k.offset),
                });
            }
            safe_load_problem(k).or_else(|| safe_load_problem(v))
        }),
        _ => None,
    }
}

/// Parses one YAML document as PyYAML's `safe_load` would. `Ok(None)` for an empty file
/// (PyYAML gives `None`).
///
/// # Errors
/// Syntax errors, more than one document, and what safe_load refuses (unknown tags,
/// unhashable keys).
pub fn parse(text: &str) -> Result<Option<Node>, ParseError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| ParseError {
        message: e.info().to_owned(),
        offset: Some(byte_offset(text, e.marker().index())),
    })?;
    match builder.docs.len() {
        0 => Ok(None),
        1 => {
            let mut doc = builder.docs.pop().expect("one document");
            to_bytes(text, &mut doc);
            match safe_load_problem(&doc) {
                Some(e) => Err(e),
                None => Ok(Some(doc)),
            }
        }
        _ => Err(ParseError {
            message: "more than one YAML document in the file".to_owned(),
            offset: builder.docs.get(1).map(|d| byte_offset(text, d.offset)),
        }),
    }
}

/// yaml-rust2 markers count characters; spans here are bytes.
fn byte_offset(text: &str, char_index: usize) -> usize {
    text.char_indices()
        .nth(char_index)
        .map_or(text.len(), |(i, _)| i)
}

/// Converts every node offset of a tree from characters to bytes (a no-op for ASCII).
fn to_bytes(text: &str, node: &mut Node) {
    if text.is_ascii() {
        return;
    }
    node.offset = byte_offset(text, node.offset);
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| to_bytes(text, n)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            to_bytes(text, k);
            to_bytes(text, v);
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_scalars() {
        assert_eq!(yaml11_type("yes"), ScalarType::Bool(true));
        assert_eq!(yaml11_type("off"), ScalarType::Bool(false));
        assert_eq!(yaml11_type("1.10"), ScalarType::Float);
        assert_eq!(yaml11_type("3"), ScalarType::Int);
        assert_eq!(yaml11_type("1:30"), ScalarType::Int);
        assert_eq!(yaml11_type("~"), ScalarType::Null);
        assert_eq!(yaml11_type("install.d"), ScalarType::Str);
        assert_eq!(yaml11_type("amd64"), ScalarType::Str);
        assert_eq!(yaml11_type("1e3"), ScalarType::Str);
        assert_eq!(yaml11_type("1.0e+3"), ScalarType::Float);
    }

    #[test]
    fn python_round_trip() {
        assert_eq!(python_str_if_changed("3.10").as_deref(), Some("3.1"));
        assert_eq!(python_str_if_changed("3"), None);
        assert_eq!(python_str_if_changed("3.0"), None);
        assert_eq!(python_str_if_changed("yes").as_deref(), Some("True"));
        assert_eq!(python_str_if_changed("010").as_deref(), Some("8"));
        assert_eq!(python_str_if_changed("amd64"), None);
    }

    #[test]
    fn tree_with_offsets() {
        let text = "curl:\n  phase: install.d\ngit:\n";
        let node = parse(text).unwrap().unwrap();
        let Value::Map(entries) = &node.value else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0.as_str(), Some("git"));
        assert_eq!(entries[1].0.offset, text.find("git").unwrap());
        assert!(entries[1].1.is_falsy());
    }

    #[test]
    fn safe_load_refusals() {
        assert!(parse("wget: !unknown-tag install.d\n").is_err());
        assert!(parse("x: !!python/name:os.system\n").is_err());
        assert!(parse("x: !!int abc\n").is_err());
        assert!(parse("x: !!int 12\n").is_ok());
        assert!(parse("? [wget, git]\n: install.d\n").is_err());
        assert!(parse("x: !!str 12\n").is_ok());
    }

    #[test]
    fn errors_and_documents() {
        assert!(parse("a: [1, 2\n").is_err());
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }
}
