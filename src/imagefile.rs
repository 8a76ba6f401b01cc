//! dib's YAML image files (the `diskimage-builder` command): the schema of dib 3.43 checked
//! key by key with the file and line of every problem, entries merged by `imagename` as dib
//! merges them, and each merged image turned into the `disk-image-create` argument list dib
//! would run. Pure: the caller reads the files.

use std::fmt;

use crate::yaml::{self, Node, ScalarType, Value};

/// The `arch` values dib's schema allows.
pub const ARCHES: &[&str] = &[
    "aarch64", "amd64", "arm64", "armhf", "powerpc", "ppc64", "ppc64el", "ppc64le", "s390x",
    "x86_64",
];

/// The `types` values dib's schema allows.
pub const TYPES: &[&str] = &[
    "qcow2", "tar", "tgz", "squashfs", "vhd", "docker", "aci", "raw",
];

/// What a key holds, as dib's JSON schema types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Enum(&'static [&'static str]),
    EnumList(&'static [&'static str]),
    List,
    /// A map of string to string (`environment`, `qemu-img-options`).
    Map,
    Bool,
    /// An integer of at least 1.
    Int,
    /// `debug-trace`: 0, 1 or 2.
    Trace,
}

/// How a key becomes arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    /// `OPTION VALUE` (a list joined with commas; a map as `k=v,k2=v2`).
    Value(&'static str),
    /// `OPTION` when true.
    Flag(&'static str),
    /// `OPTION` repeated N times.
    Repeat(&'static str),
    /// The values themselves, last (`elements`).
    Positional,
    /// Not an argument (`environment`, `ramdisk`).
    None,
}

/// One key of dib's schema, in dib's `PROPERTIES` order (the order arguments come out in).
struct Key {
    name: &'static str,
    kind: Kind,
    emit: Emit,
}

const fn key(name: &'static str, kind: Kind, emit: Emit) -> Key {
    Key { name, kind, emit }
}

/// dib 3.43's `PROPERTIES`, in order.
const KEYS: &[Key] = &[
    key("imagename", Kind::Str, Emit::Value("-o")),
    key("arch", Kind::Enum(ARCHES), Emit::Value("-a")),
    key("types", Kind::EnumList(TYPES), Emit::Value("-t")),
    key("environment", Kind::Map, Emit::None),
    key("ramdisk", Kind::Bool, Emit::None),
    key("debug-trace", Kind::Trace, Emit::Repeat("-x")),
    key("uncompressed", Kind::Bool, Emit::Flag("-u")),
    key("clear", Kind::Bool, Emit::Flag("-c")),
    key("logfile", Kind::Str, Emit::Value("--logfile")),
    key("checksum", Kind::Bool, Emit::Flag("--checksum")),
    key("image-size", Kind::Int, Emit::Value("--image-size")),
    key(
        "image-extra-size",
        Kind::Int,
        Emit::Value("--image-extra-size"),
    ),
    key("image-cache", Kind::Str, Emit::Value("--image-cache")),
    key(
        "max-online-resize",
        Kind::Int,
        Emit::Value("--max-online-resize"),
    ),
    key("min-tmpfs", Kind::Int, Emit::Value("--min-tmpfs")),
    key(
        "mkfs-journal-size",
        Kind::Int,
        Emit::Value("--mkfs-journal-size"),
    ),
    key("mkfs-options", Kind::Str, Emit::Value("--mkfs-options")),
    key("no-tmpfs", Kind::Bool, Emit::Flag("--no-tmpfs")),
    key("offline", Kind::Bool, Emit::Flag("--offline")),
    key(
        "qemu-img-options",
        Kind::Map,
        Emit::Value("--qemu-img-options"),
    ),
    key("root-label", Kind::Str, Emit::Value("--root-label")),
    key(
        "ramdisk-element",
        Kind::Str,
        Emit::Value("--ramdisk-element"),
    ),
    key(
        "install-type",
        Kind::Enum(&["source", "package"]),
        Emit::Value("--install-type"),
    ),
    key("docker-target", Kind::Str, Emit::Value("--docker-target")),
    key("packages", Kind::List, Emit::Value("-p")),
    key("skip-base", Kind::Bool, Emit::Flag("-n")),
    key("elements", Kind::List, Emit::Positional),
];

/// Keys in dib's schema whose option dib 3.43's disk-image-create itself refuses (its getopt
/// line lacks them), so dib's own run of such a file fails. dibkit builds them: these are
/// dibkit's additions, refused by `--strict`.
pub const DIBKIT_ADDITIONS: &[&str] = &["image-extra-size", "mkfs-journal-size"];

/// A key's value, typed as dib's schema types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

/// One image definition as written: its keys in file order, each with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub file: String,
    pub line: usize,
    pub keys: Vec<(String, Val, usize)>,
}

impl Entry {
    fn get(&self, name: &str) -> Option<&Val> {
        self.keys
            .iter()
            .find(|(k, ..)| k == name)
            .map(|(_, v, _)| v)
    }
}

/// An image file that does not fit dib's schema: where, which key, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub line: usize,
    /// The key (`environment.DIB_RELEASE` for a map entry), when the problem has one.
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(k) = &self.key {
            write!(f, "`{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// How a value reads in messages, as Python would show the loaded value.
fn shown(node: &Node) -> (String, &'static str) {
    match &node.value {
        Value::Scalar { text, plain } => match node.scalar_type() {
            Some(ScalarType::Str) | None => (format!("'{text}'"), "a string"),
            Some(ScalarType::Null) => ("None".to_owned(), "null"),
            Some(ScalarType::Bool(_)) => (
                yaml::python_str_if_changed(text).unwrap_or_else(|| text.clone()),
                "a boolean",
            ),
            Some(ScalarType::Int) => (
                yaml::python_str_if_changed(text).unwrap_or_else(|| text.clone()),
                if *plain { "an integer" } else { "a string" },
            ),
            Some(ScalarType::Float) => (
                yaml::python_str_if_changed(text).unwrap_or_else(|| text.clone()),
                "a number",
            ),
        },
        Value::Seq(_) => ("[...]".to_owned(), "a list"),
        Value::Map(_) => ("{...}".to_owned(), "a map"),
        Value::Alias => ("*alias".to_owned(), "an alias"),
    }
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, node: &Node, key: Option<&str>, message: String, hint: Option<String>) -> Error {
        Error {
            file: self.file.to_owned(),
            line: line_of(self.text, node.offset),
            key: key.map(str::to_owned),
            message,
            hint,
        }
    }

    /// A string: a quoted scalar, or a plain one PyYAML loads as a string.
    fn string(&self, node: &Node, key: &str, yaml_key: &str) -> Result<String, Error> {
        if node.scalar_type() == Some(ScalarType::Str) {
            return Ok(node.as_str().unwrap_or_default().to_owned());
        }
        let (value, what) = shown(node);
        let hint = match &node.value {
            Value::Scalar { text, .. } if !text.is_empty() => Some(format!(
                "quote it to make it a string: {yaml_key}: \"{text}\""
            )),
            _ => Some("write a string here".to_owned()),
        };
        Err(self.err(
            node,
            Some(key),
            format!("{value} is {what}, not a string"),
            hint,
        ))
    }

    fn value(&self, node: &Node, k: &Key) -> Result<Val, Error> {
        let name = k.name;
        match k.kind {
            Kind::Str => self.string(node, name, name).map(Val::Str),
            Kind::Enum(allowed) => {
                let s = self.string(node, name, name)?;
                if allowed.contains(&s.as_str()) {
                    Ok(Val::Str(s))
                } else {
                    Err(self.err(
                        node,
                        Some(name),
                        format!("'{s}' is not one of the allowed values"),
                        Some(format!("use one of: {}", allowed.join(", "))),
                    ))
                }
            }
            Kind::List | Kind::EnumList(_) => {
                let Value::Seq(items) = &node.value else {
                    let (value, what) = shown(node);
                    return Err(self.err(
                        node,
                        Some(name),
                        format!("{value} is {what}, not a list"),
                        Some(format!("write it as a YAML list: {name}: [a, b]")),
                    ));
                };
                let mut out = Vec::new();
                for item in items {
                    let s = self.string(item, name, "-")?;
                    if let Kind::EnumList(allowed) = k.kind {
                        if !allowed.contains(&s.as_str()) {
                            return Err(self.err(
                                item,
                                Some(name),
                                format!("'{s}' is not one of the allowed values"),
                                Some(format!("use one of: {}", allowed.join(", "))),
                            ));
                        }
                    }
                    out.push(s);
                }
                Ok(Val::List(out))
            }
            Kind::Map => {
                let Value::Map(entries) = &node.value else {
                    let (value, what) = shown(node);
                    return Err(self.err(
                        node,
                        Some(name),
                        format!("{value} is {what}, not a map of strings"),
                        Some(format!("write it as a map: {name}: {{VAR: \"value\"}}")),
                    ));
                };
                let mut out: Vec<(String, String)> = Vec::new();
                for (k2, v) in entries {
                    let var = k2.as_str().unwrap_or_default().to_owned();
                    let full = format!("{name}.{var}");
                    let value = self.string(v, &full, &var)?;
                    // A repeated key: the last one wins, as in a Python dict.
                    match out.iter_mut().find(|(n, _)| *n == var) {
                        Some(slot) => slot.1 = value,
                        None => out.push((var, value)),
                    }
                }
                Ok(Val::Map(out))
            }
            Kind::Bool => match node.scalar_type() {
                Some(ScalarType::Bool(b))
                    if matches!(node.value, Value::Scalar { plain: true, .. }) =>
                {
                    Ok(Val::Bool(b))
                }
                _ => {
                    let (value, what) = shown(node);
                    Err(self.err(
                        node,
                        Some(name),
                        format!("{value} is {what}, not a boolean"),
                        Some(format!("write {name}: true or {name}: false, unquoted")),
                    ))
                }
            },
            Kind::Int | Kind::Trace => {
                let n = match (&node.value, node.scalar_type()) {
                    (Value::Scalar { text, plain: true }, Some(ScalarType::Int)) => {
                        yaml::python_str_if_changed(text)
                            .unwrap_or_else(|| text.clone())
                            .parse::<i64>()
                            .ok()
                    }
                    _ => None,
                };
                let Some(n) = n else {
                    let (value, what) = shown(node);
                    let hint = if k.kind == Kind::Trace {
                        format!("write {name}: 0, 1 or 2, unquoted")
                    } else {
                        format!("write a whole number, unquoted: {name}: 2")
                    };
                    return Err(self.err(
                        node,
                        Some(name),
                        format!("{value} is {what}, not an integer"),
                        Some(hint),
                    ));
                };
                if k.kind == Kind::Trace && !(0..=2).contains(&n) {
                    return Err(self.err(
                        node,
                        Some(name),
                        format!("{n} is not one of the allowed values"),
                        Some("use 0, 1 or 2".to_owned()),
                    ));
                }
                if k.kind == Kind::Int && n < 1 {
                    return Err(self.err(
                        node,
                        Some(name),
                        format!("{n} is less than the minimum of 1"),
                        Some(format!("{name} is a whole number of at least 1")),
                    ));
                }
                Ok(Val::Int(n))
            }
        }
    }
}

/// The hint for a key dib's schema does not have.
fn unknown_key_hint(name: &str) -> String {
    if matches!(name, "release" | "dib-release" | "distro" | "DIB_RELEASE") {
        return "the release is an environment variable: environment: {DIB_RELEASE: \"9\"}"
            .to_owned();
    }
    let best = KEYS
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k.name), k.name))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, k)) if score > 0.8 => format!("did you mean `{k}`?"),
        _ => format!(
            "the keys are: {}",
            KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Parses and validates one image file (`file` names it in errors).
///
/// # Errors
/// The file is not YAML, not a list of maps, or a key or value does not fit dib's schema.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>, Error> {
    let cx = Ctx { file, text };
    let root = yaml::parse(text).map_err(|e| Error {
        file: file.to_owned(),
        line: e.offset.map_or(1, |o| line_of(text, o)),
        key: None,
        message: format!("not valid YAML: {}", e.message),
        hint: None,
    })?;
    let Some(root) = root else {
        return Err(Error {
            file: file.to_owned(),
            line: 1,
            key: None,
            message: "the file is empty".to_owned(),
            hint: Some(
                "an image file is a YAML list of image definitions: - imagename: ...".to_owned(),
            ),
        });
    };
    let Value::Seq(items) = &root.value else {
        let (_, what) = shown(&root);
        return Err(cx.err(
            &root,
            None,
            format!("the file holds {what}, not a list of image definitions"),
            Some("start each image with `- `: - imagename: vm".to_owned()),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(map) = &item.value else {
            let (value, what) = shown(item);
            return Err(cx.err(
                item,
                None,
                format!("{value} is {what}, not an image definition (a map)"),
                Some("each list item is a map of keys: - imagename: vm".to_owned()),
            ));
        };
        let mut keys = Vec::new();
        for (k, v) in map {
            if matches!(v.value, Value::Alias) || matches!(k.value, Value::Alias) {
                return Err(cx.err(
                    v,
                    k.as_str(),
                    "YAML aliases are not supported in image files".to_owned(),
                    Some("write the value out".to_owned()),
                ));
            }
            let name = k.as_str().unwrap_or_default();
            let Some(spec) = KEYS.iter().find(|s| s.name == name) else {
                return Err(cx.err(
                    k,
                    Some(name),
                    "not a key of dib's image files (additional properties are not allowed)"
                        .to_owned(),
                    Some(unknown_key_hint(name)),
                ));
            };
            let val = cx.value(v, spec)?;
            let line = line_of(text, k.offset);
            match keys
                .iter_mut()
                .find(|(n, ..): &&mut (String, Val, usize)| n == name)
            {
                Some(slot) => *slot = (name.to_owned(), val, line),
                None => keys.push((name.to_owned(), val, line)),
            }
        }
        out.push(Entry {
            file: file.to_owned(),
            line: line_of(text, item.offset),
            keys,
        });
    }
    Ok(out)
}

/// One image to build: the merged definition of an `imagename`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The image's name (`image` when no entry of the group names it).
    pub name: String,
    /// Where its first entry is (`file:line`).
    pub origin: String,
    /// The merged keys, each with where it was last set (`file:line`).
    pub keys: Vec<(String, Val, String)>,
}

impl Image {
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.keys
            .iter()
            .find(|(k, ..)| k == name)
            .map(|(_, v, _)| v)
    }

    /// Where `name` was set (`file:line`).
    #[must_use]
    pub fn where_set(&self, name: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, ..)| k == name)
            .map(|(.., w)| w.as_str())
    }

    /// The `environment` map.
    #[must_use]
    pub fn environment(&self) -> Vec<(String, String)> {
        match self.get("environment") {
            Some(Val::Map(m)) => m.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether dib would run ramdisk-image-create for it.
    #[must_use]
    pub fn ramdisk(&self) -> bool {
        matches!(self.get("ramdisk"), Some(Val::Bool(true)))
    }

    /// The disk-image-create arguments dib builds, in its `PROPERTIES` order, elements last.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for k in KEYS {
            let Some(v) = self.get(k.name) else { continue };
            match (k.emit, v) {
                (Emit::Value(opt), Val::Str(s)) if !s.is_empty() => {
                    out.extend([opt.to_owned(), s.clone()]);
                }
                (Emit::Value(opt), Val::Int(n)) => out.extend([opt.to_owned(), n.to_string()]),
                (Emit::Value(opt), Val::List(l)) if !l.is_empty() => {
                    out.extend([opt.to_owned(), l.join(",")]);
                }
                (Emit::Value(opt), Val::Map(m)) => {
                    let joined: Vec<String> = m.iter().map(|(a, b)| format!("{a}={b}")).collect();
                    // dib passes an empty map as an empty value, which it then drops.
                    if !joined.is_empty() {
                        out.extend([opt.to_owned(), joined.join(",")]);
                    }
                }
                (Emit::Flag(opt), Val::Bool(true)) => out.push(opt.to_owned()),
                (Emit::Repeat(opt), Val::Int(n)) => {
                    out.extend(std::iter::repeat_n(
                        opt.to_owned(),
                        usize::try_from(*n).unwrap_or(0),
                    ));
                }
                (Emit::Positional, Val::List(l)) => out.extend(l.iter().cloned()),
                _ => {}
            }
        }
        out
    }

    /// The keys set that are dibkit's additions (see [`DIBKIT_ADDITIONS`]).
    #[must_use]
    pub fn additions(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|(k, ..)| k.as_str())
            .filter(|k| DIBKIT_ADDITIONS.contains(k))
            .collect()
    }
}

/// Merges entries as dib does: grouped by `imagename`, an entry without one continuing the
/// previous entry's image (the first default is `image`); a repeated name appends lists,
/// updates maps and overwrites scalars of the first entry with that name.
#[must_use]
pub fn merge(entries: &[Entry]) -> Vec<Image> {
    let mut images: Vec<Image> = Vec::new();
    let mut previous = "image".to_owned();
    for e in entries {
        let name = match e.get("imagename") {
            Some(Val::Str(s)) => s.clone(),
            _ => previous.clone(),
        };
        previous.clone_from(&name);
        let keys = e
            .keys
            .iter()
            .map(|(k, v, line)| (k.clone(), v.clone(), format!("{}:{line}", e.file)));
        match images.iter_mut().find(|i| i.name == name) {
            None => images.push(Image {
                name,
                origin: format!("{}:{}", e.file, e.line),
                keys: keys.collect(),
            }),
            Some(img) => {
                for (k, v, at) in keys {
                    match img.keys.iter_mut().find(|(n, ..)| *n == k) {
                        None => img.keys.push((k, v, at)),
                        Some(slot) => {
                            match (&mut slot.1, v) {
                                (Val::List(old), Val::List(new)) => old.extend(new),
                                (Val::Map(old), Val::Map(new)) => {
                                    for (var, value) in new {
                                        match old.iter_mut().find(|(n, _)| *n == var) {
                                            Some(s) => s.1 = value,
                                            None => old.push((var, value)),
                                        }
                                    }
                                }
                                (old, new) => *old = new,
                            }
                            slot.2 = at;
                        }
                    }
                }
            }
        }
    }
    images
}

/// Quotes a word for a shell as Python's `shlex.quote` does.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(text: &str) -> Vec<Image> {
        merge(&parse("images.yaml", text).unwrap())
    }

    #[test]
    fn merges_by_name_as_dib_does() {
        let text = "\
- imagename: jenkins-centos
  types: [qcow2, raw]
  debug-trace: 1
  checksum: true
  elements: [centos-minimal, vm]
  environment:
    DIB_RELEASE: '9-stream'
- imagename: jenkins-fedora
  elements: [fedora-minimal]
- elements: [vm]
- imagename: jenkins-centos
  elements: [devuser]
  environment:
    DIB_DEV_USER_USERNAME: jenkins
    DIB_RELEASE: '9'
";
        let all = images(text);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].args(),
            [
                "-o",
                "jenkins-centos",
                "-t",
                "qcow2,raw",
                "-x",
                "--checksum",
                "centos-minimal",
                "vm",
                "devuser"
            ]
        );
        assert_eq!(
            all[0].environment(),
            [
                ("DIB_RELEASE".to_owned(), "9".to_owned()),
                ("DIB_DEV_USER_USERNAME".to_owned(), "jenkins".to_owned())
            ]
        );
        assert_eq!(all[0].origin, "images.yaml:1");
        assert_eq!(
            all[1].args(),
            ["-o", "jenkins-fedora", "fedora-minimal", "vm"]
        );
    }

    #[test]
    fn unnamed_images_get_no_output_option() {
        let all = images("- elements: [vm]\n  qemu-img-options: {compat: '0.10'}\n");
        assert_eq!(all[0].name, "image");
        assert_eq!(all[0].args(), ["--qemu-img-options", "compat=0.10", "vm"]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("f.yaml", "- imagename: a\n  release: 9\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:2: `release`: not a key of dib's image files (additional properties are not allowed)"
        );
        assert!(e.hint.unwrap().contains("DIB_RELEASE"));
        let e = parse(
            "f.yaml",
            "- imagename: a\n  environment:\n    DIB_RELEASE: 9\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:3: `environment.DIB_RELEASE`: 9 is an integer, not a string"
        );
        assert_eq!(
            e.hint.unwrap(),
            "quote it to make it a string: DIB_RELEASE: \"9\""
        );
        let e = parse("f.yaml", "- environment: {V: 3.10}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1: `environment.V`: 3.1 is a number, not a string"
        );
        let e = parse("f.yaml", "- types: [qcow2, iso]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1: `types`: 'iso' is not one of the allowed values"
        );
        let e = parse("f.yaml", "- image-size: 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1: `image-size`: 0 is less than the minimum of 1"
        );
        let e = parse("f.yaml", "- checksum: 'yes'\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1: `checksum`: 'yes' is a string, not a boolean"
        );
        let e = parse("f.yaml", "imagename: a\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml:1: the file holds a map, not a list of image definitions"
        );
        let e = parse("f.yaml", "- imagname: a\n").unwrap_err();
        assert_eq!(e.hint.unwrap(), "did you mean `imagename`?");
    }

    #[test]
    fn repeated_lists_append_and_scalars_overwrite() {
        let all = images(
            "- imagename: a\n  debug-trace: 2\n  packages: [x]\n- imagename: a\n  debug-trace: 0\n  packages: [y]\n",
        );
        assert_eq!(all[0].args(), ["-o", "a", "-p", "x,y"]);
        assert_eq!(all[0].where_set("debug-trace"), Some("images.yaml:5"));
    }

    #[test]
    fn quoting_matches_shlex() {
        assert_eq!(shell_quote("vm"), "vm");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote(""), "''");
    }
}
