//! The block-device YAML configuration: parsed from tree or graph notation into a graph of
//! named nodes, validated with dib's rules and messages (each naming the node), and ordered.
//! LVM is recognised and refused with a clear message.

use std::collections::{BTreeMap, HashMap};

use crate::yaml::{self, Node as Y, Value};

use super::size;

/// Plugins dib knows.
pub const PLUGINS: &[&str] = &[
    "local_loop",
    "partitioning",
    "lvm",
    "mkfs",
    "mount",
    "fstab",
];

/// A configuration error, with the line of the node it is about when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub line: Option<usize>,
}

/// MBR or GPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Mbr,
    Gpt,
}

/// A partition's size: absolute bytes or a percentage of the space still free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartSize {
    Bytes(u64),
    Percent(f64),
}

/// What a node does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    LocalLoop {
        size: Option<u64>,
        directory: Option<String>,
        block_size: u64,
    },
    Partition {
        /// Index into [`Config::partitionings`].
        table: usize,
        size: PartSize,
        boot: bool,
        primary: bool,
        /// MBR: a hex type (`0x83`); GPT: an sgdisk code (`8300`).
        ptype: String,
    },
    Mkfs {
        fstype: String,
        label: String,
        opts: Vec<String>,
        uuid: Option<String>,
    },
    Mount {
        mount_point: String,
    },
    Fstab {
        options: String,
        dump: u64,
        passno: u64,
    },
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// The node this one builds on (empty for `local_loop`).
    pub base: String,
    pub kind: Kind,
    pub line: usize,
}

/// A partition table: on which device, which kind, its alignment and partitions in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitioning {
    pub base: String,
    pub kind: TableKind,
    pub align: u64,
    pub partitions: Vec<String>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub nodes: Vec<Node>,
    pub partitionings: Vec<Partitioning>,
}

/// dib's configuration when no element has one and `DIB_BLOCK_DEVICE_CONFIG` is unset: a
/// filesystem straight on the loop device.
pub const FALLBACK: &str = "- local_loop:\n    name: image0\n    mkfs:\n      name: mkfs_root\n      mount:\n        mount_point: /\n        fstab:\n          options: \"defaults\"\n          fsck-passno: 1\n";

/// disk-image-create's legacy parameters, which apply only to a mkfs node named exactly
/// `mkfs_root`: `FS_TYPE`, `--root-label` and `--mkfs-options`.
#[derive(Debug, Clone)]
pub struct Legacy {
    pub fs_type: String,
    pub root_label: Option<String>,
    pub mkfs_options: Option<String>,
}

impl Default for Legacy {
    fn default() -> Self {
        Self {
            fs_type: "ext4".to_owned(),
            root_label: None,
            mkfs_options: None,
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    legacy: &'a Legacy,
    nodes: Vec<Node>,
    partitionings: Vec<Partitioning>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn str_of(n: &Y) -> Option<String> {
    match &n.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn get<'a>(m: &'a [(Y, Y)], key: &str) -> Option<&'a Y> {
    m.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

impl Parser<'_> {
    fn err(&self, node: &Y, message: String) -> ConfigError {
        ConfigError {
            message,
            line: Some(line_of(self.text, node.offset)),
        }
    }

    fn required(&self, at: &Y, m: &[(Y, Y)], what: &str, key: &str) -> Result<String, ConfigError> {
        get(m, key)
            .and_then(str_of)
            .ok_or_else(|| self.err(at, format!("{what}: missing required key `{key}`")))
    }

    fn size(&self, at: &Y, what: &str, spec: &str) -> Result<u64, ConfigError> {
        size::parse(spec).map_err(|e| self.err(at, format!("{what}: {e}")))
    }

    /// Adds the plugin node `plugin` with parameters `params`; `parent` is the enclosing
    /// node's name in tree notation.
    fn node(&mut self, plugin: &str, at: &Y, parent: Option<&str>) -> Result<(), ConfigError> {
        let Value::Map(m) = &at.value else {
            return Err(self.err(
                at,
                format!("{plugin}: its value must be a mapping of parameters"),
            ));
        };
        let line = line_of(self.text, at.offset);
        let base = get(m, "base")
            .and_then(str_of)
            .or_else(|| parent.map(str::to_owned));
        let named = |base: &Option<String>| {
            get(m, "name")
                .and_then(str_of)
                .or_else(|| base.as_ref().map(|b| format!("{plugin}_{b}")))
        };
        match plugin {
            "lvm" => {
                return Err(self.err(
                    at,
                    format!(
                        "lvm (node `{}`): LVM layouts are not supported yet; use partitions",
                        named(&base).unwrap_or_else(|| "lvm".to_owned())
                    ),
                ));
            }
            "partitioning" => return self.partitioning(at, m, base),
            _ => {}
        }
        let name = named(&base)
            .ok_or_else(|| self.err(at, format!("{plugin}: missing required key `name`")))?;
        let what = format!("{plugin} `{name}`");
        let kind = match plugin {
            "local_loop" => {
                let size = match get(m, "size").and_then(str_of) {
                    Some(s) => Some(self.size(at, &what, &s)?),
                    None => None,
                };
                let block_size = match get(m, "block_size").and_then(str_of) {
                    Some(s) => self.size(at, &what, &s)?,
                    None => 512,
                };
                Kind::LocalLoop {
                    size,
                    directory: get(m, "directory").and_then(str_of),
                    block_size,
                }
            }
            "mkfs" => {
                let root = name == "mkfs_root";
                let fstype = match get(m, "type").and_then(str_of) {
                    Some(t) => t,
                    None if root => self.legacy.fs_type.clone(),
                    None => {
                        return Err(self.err(at, format!("{what}: missing required key `type`")));
                    }
                };
                let default_label = if root {
                    self.legacy.root_label.clone().unwrap_or_else(|| {
                        if fstype == "xfs" {
                            "img-rootfs"
                        } else {
                            "cloudimg-rootfs"
                        }
                        .to_owned()
                    })
                } else {
                    name.clone()
                };
                let mut label = get(m, "label").and_then(str_of).unwrap_or(default_label);
                if fstype == "vfat" || fstype == "fat" {
                    label = label.to_uppercase();
                }
                let opts = get(m, "opts")
                    .and_then(str_of)
                    .or_else(|| {
                        if root {
                            self.legacy.mkfs_options.clone()
                        } else {
                            None
                        }
                    })
                    .map(|o| o.trim().split(' ').map(str::to_owned).collect())
                    .unwrap_or_default();
                Kind::Mkfs {
                    fstype,
                    label,
                    opts,
                    uuid: get(m, "uuid").and_then(str_of),
                }
            }
            "mount" => Kind::Mount {
                mount_point: self.required(at, m, &what, "mount_point")?,
            },
            "fstab" => {
                let num = |k: &str, d: u64| -> Result<u64, ConfigError> {
                    match get(m, k).and_then(str_of) {
                        None => Ok(d),
                        Some(v) => v.parse().map_err(|_| {
                            self.err(at, format!("{what}: `{k}` must be a number, not `{v}`"))
                        }),
                    }
                };
                Kind::Fstab {
                    options: get(m, "options")
                        .and_then(str_of)
                        .unwrap_or_else(|| "defaults".to_owned()),
                    dump: num("dump-freq", 0)?,
                    passno: num("fsck-passno", 2)?,
                }
            }
            _ => unreachable!("plugin names are checked by the caller"),
        };
        if plugin != "local_loop" && base.is_none() {
            return Err(self.err(at, format!("{what}: missing required key `base`")));
        }
        self.nodes.push(Node {
            name: name.clone(),
            base: if plugin == "local_loop" {
                String::new()
            } else {
                base.unwrap_or_default()
            },
            kind,
            line,
        });
        self.children(m, &name)
    }

    /// Plugin keys nested in a node's parameters (tree notation).
    fn children(&mut self, m: &[(Y, Y)], parent: &str) -> Result<(), ConfigError> {
        for (k, v) in m {
            if let Some(key) = k.as_str() {
                if PLUGINS.contains(&key) {
                    self.node(key, v, Some(parent))?;
                }
            }
        }
        Ok(())
    }

    fn partitioning(
        &mut self,
        at: &Y,
        m: &[(Y, Y)],
        base: Option<String>,
    ) -> Result<(), ConfigError> {
        let base = base
            .ok_or_else(|| self.err(at, "partitioning: missing required key `base`".to_owned()))?;
        let label = self.required(at, m, "partitioning", "label")?;
        let kind = match label.as_str() {
            "mbr" => TableKind::Mbr,
            "gpt" => TableKind::Gpt,
            _ => return Err(self.err(at, "Label must be 'mbr' or 'gpt'".to_owned())),
        };
        let align = match get(m, "align").and_then(str_of) {
            Some(s) => self.size(at, "partitioning", &s)?,
            None => 1 << 20,
        };
        let Some(Value::Seq(parts)) = get(m, "partitions").map(|p| &p.value) else {
            return Err(self.err(
                at,
                "partitioning: missing required key `partitions` (a list)".to_owned(),
            ));
        };
        let table = self.partitionings.len();
        self.partitionings.push(Partitioning {
            base: base.clone(),
            kind,
            align,
            partitions: Vec::new(),
        });
        for p in parts {
            let Value::Map(pm) = &p.value else {
                return Err(self.err(
                    p,
                    "partitioning: each partition must be a mapping".to_owned(),
                ));
            };
            let name = self.required(p, pm, "partition", "name")?;
            let what = format!("partition `{name}`");
            let size_spec = self.required(p, pm, &what, "size")?;
            let size = if let Some(pct) = size_spec.strip_suffix('%') {
                let v: f64 = pct.trim().parse().map_err(|_| {
                    self.err(p, format!("{what}: size `{size_spec}` is not a percentage"))
                })?;
                if !(0.0..=100.0).contains(&v) || v == 0.0 {
                    return Err(self.err(
                        p,
                        format!("{what}: size `{size_spec}` must be between 0% and 100%"),
                    ));
                }
                PartSize::Percent(v)
            } else {
                PartSize::Bytes(self.size(p, &what, &size_spec)?)
            };
            let (mut boot, mut primary) = (false, false);
            if let Some(Value::Seq(flags)) = get(pm, "flags").map(|f| &f.value) {
                for f in flags {
                    match f.as_str() {
                        Some("boot") => boot = true,
                        Some("primary") => primary = true,
                        other => {
                            return Err(
                                self.err(f, format!("Unknown flag: {}", other.unwrap_or("?")))
                            );
                        }
                    }
                }
            }
            if primary && kind == TableKind::Gpt {
                return Err(self.err(
                    p,
                    "Primary flag not supported for GPT partitions".to_owned(),
                ));
            }
            let ptype = get(pm, "type").and_then(str_of).unwrap_or_else(|| {
                if kind == TableKind::Mbr {
                    "0x83".to_owned()
                } else {
                    "8300".to_owned()
                }
            });
            if kind == TableKind::Mbr
                && u8::from_str_radix(ptype.trim_start_matches("0x"), 16).is_err()
            {
                return Err(self.err(p, format!("{what}: MBR type `{ptype}` is not a hex byte")));
            }
            self.nodes.push(Node {
                name: name.clone(),
                base: base.clone(),
                kind: Kind::Partition {
                    table,
                    size,
                    boot,
                    primary,
                    ptype,
                },
                line: line_of(self.text, p.offset),
            });
            self.partitionings[table].partitions.push(name.clone());
            self.children(pm, &name)?;
        }
        Ok(())
    }
}

/// Maximum label length per filesystem type.
fn label_limit(fstype: &str) -> Option<usize> {
    match fstype {
        "ext2" | "ext3" | "ext4" | "swap" => Some(16),
        "xfs" => Some(12),
        "vfat" | "fat" => Some(11),
        _ => None,
    }
}

/// Parses and validates a configuration with the default legacy parameters.
///
/// # Errors
/// Every error dib reports, in its words, with the node's line.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_with(text, &Legacy::default())
}

/// Parses and validates a configuration.
///
/// # Errors
/// Every error dib reports, in its words, with the node's line.
pub fn parse_with(text: &str, legacy: &Legacy) -> Result<Config, ConfigError> {
    let doc = yaml::parse(text)
        .map_err(|e| ConfigError {
            message: format!("not valid YAML: {}", e.message),
            line: e.offset.map(|o| line_of(text, o)),
        })?
        .ok_or_else(|| ConfigError {
            message: "the configuration is empty".to_owned(),
            line: None,
        })?;
    let Value::Seq(entries) = &doc.value else {
        return Err(ConfigError {
            message: "the configuration must be a list of plugin entries".to_owned(),
            line: Some(1),
        });
    };
    let mut p = Parser {
        text,
        legacy,
        nodes: Vec::new(),
        partitionings: Vec::new(),
    };
    for entry in entries {
        let Value::Map(m) = &entry.value else {
            return Err(p.err(
                entry,
                format!(
                    "Config entry not a dict: {}",
                    str_of(entry).unwrap_or_default()
                ),
            ));
        };
        if m.len() != 1 {
            return Err(p.err(
                entry,
                "Config entry top-level should be a single dict".to_owned(),
            ));
        }
        let (k, v) = &m[0];
        let key = k.as_str().unwrap_or("");
        if !PLUGINS.contains(&key) {
            return Err(p.err(k, format!("Config entry is not a plugin value: {key}")));
        }
        p.node(key, v, None)?;
    }
    let config = Config {
        nodes: p.nodes,
        partitionings: p.partitionings,
    };
    validate(&config)?;
    Ok(config)
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    let err = |n: &Node, message: String| ConfigError {
        message,
        line: Some(n.line),
    };
    let mut by_name: HashMap<&str, &Node> = HashMap::new();
    for n in &c.nodes {
        if by_name.insert(&n.name, n).is_some() {
            return Err(err(n, format!("Duplicate node name: {}", n.name)));
        }
    }
    let mut labels: HashMap<&str, &str> = HashMap::new();
    let mut mount_points: HashMap<&str, &str> = HashMap::new();
    for n in &c.nodes {
        if n.base.is_empty() {
            continue;
        }
        let Some(base) = by_name.get(n.base.as_str()) else {
            return Err(err(n, format!("Edge not defined: {}->{}", n.base, n.name)));
        };
        match &n.kind {
            Kind::Mkfs { fstype, label, .. } => {
                if !matches!(base.kind, Kind::LocalLoop { .. } | Kind::Partition { .. }) {
                    return Err(err(
                        n,
                        format!(
                            "mkfs `{}`: its base `{}` is not a block device",
                            n.name, n.base
                        ),
                    ));
                }
                if let Some(limit) = label_limit(fstype) {
                    if label.chars().count() > limit {
                        return Err(err(
                            n,
                            format!(
                                "mkfs `{}`: label [{label}] is longer than {limit} characters, the limit for {fstype}",
                                n.name
                            ),
                        ));
                    }
                }
                if labels.insert(label, &n.name).is_some() {
                    return Err(err(
                        n,
                        format!("File system label [{label}] used more than once"),
                    ));
                }
            }
            Kind::Mount { mount_point } => {
                if !matches!(base.kind, Kind::Mkfs { .. }) {
                    return Err(err(
                        n,
                        format!(
                            "mount `{}`: its base `{}` is not a mkfs node",
                            n.name, n.base
                        ),
                    ));
                }
                if mount_points.insert(mount_point, &n.name).is_some() {
                    return Err(err(
                        n,
                        format!("Mount point [{mount_point}] specified more than once"),
                    ));
                }
            }
            Kind::Fstab { .. } if !matches!(base.kind, Kind::Mount { .. }) => {
                return Err(err(
                    n,
                    format!(
                        "fstab `{}`: its base `{}` is not a mount node",
                        n.name, n.base
                    ),
                ));
            }
            _ => {}
        }
    }
    for t in &c.partitionings {
        match by_name.get(t.base.as_str()) {
            Some(b) if matches!(b.kind, Kind::LocalLoop { .. }) => {}
            Some(b) => {
                return Err(err(
                    b,
                    format!("partitioning on `{}`: not a local_loop device", t.base),
                ));
            }
            None => {
                let first = t.partitions.first().and_then(|p| by_name.get(p.as_str()));
                return Err(ConfigError {
                    message: format!(
                        "Edge not defined: {}->{}",
                        t.base,
                        t.partitions.first().cloned().unwrap_or_default()
                    ),
                    line: first.map(|n| n.line),
                });
            }
        }
    }
    Ok(())
}

impl Config {
    #[must_use]
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Mount nodes in mount order (Python string order of the mount points).
    #[must_use]
    pub fn mounts(&self) -> Vec<&Node> {
        let mut m: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, Kind::Mount { .. }))
            .collect();
        m.sort_by(|a, b| mount_point(a).cmp(mount_point(b)));
        m
    }

    /// The order dib creates nodes in: every node after its base, mounts in mount order,
    /// otherwise the configuration's order.
    #[must_use]
    pub fn order(&self) -> Vec<&Node> {
        let mut deps: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let index: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(b) = index.get(n.base.as_str()) {
                deps.entry(i).or_default().push(*b);
            }
        }
        let mounts = self.mounts();
        for w in mounts.windows(2) {
            deps.entry(index[w[1].name.as_str()])
                .or_default()
                .push(index[w[0].name.as_str()]);
        }
        let mut done = vec![false; self.nodes.len()];
        let mut out = Vec::new();
        while out.len() < self.nodes.len() {
            let next = (0..self.nodes.len())
                .find(|&i| !done[i] && deps.get(&i).is_none_or(|d| d.iter().all(|x| done[*x])));
            let Some(i) = next else { break };
            done[i] = true;
            out.push(&self.nodes[i]);
        }
        out
    }

    /// The mkfs node under the mount at `point`.
    fn mkfs_at(&self, point: &str) -> Option<&Node> {
        self.mounts()
            .into_iter()
            .find(|m| mount_point(m) == point)
            .and_then(|m| self.node(&m.base))
    }

    /// `dib-block-device getval root-label`.
    #[must_use]
    pub fn root_label(&self) -> Option<String> {
        match &self.mkfs_at("/")?.kind {
            Kind::Mkfs { label, .. } => Some(label.clone()),
            _ => None,
        }
    }

    /// `getval boot-label`: the label of the filesystem mounted at `/boot`, else its node
    /// name, else empty.
    #[must_use]
    pub fn boot_label(&self) -> String {
        match self.mkfs_at("/boot") {
            Some(Node {
                kind: Kind::Mkfs { label, .. },
                ..
            }) if !label.is_empty() => label.clone(),
            Some(n) => n.name.clone(),
            None => String::new(),
        }
    }

    /// `getval root-fstype`.
    #[must_use]
    pub fn root_fstype(&self) -> Option<String> {
        match &self.mkfs_at("/")?.kind {
            Kind::Mkfs { fstype, .. } => Some(fstype.clone()),
            _ => None,
        }
    }

    /// `getval mount-points`: joined with `|`.
    #[must_use]
    pub fn mount_points(&self) -> String {
        self.mounts()
            .iter()
            .map(|m| mount_point(m))
            .collect::<Vec<_>>()
            .join("|")
    }

    /// The fstab lines dib writes: `LABEL=<label> <mount point> <type> <options> <dump> <passno>`
    /// in mount order; swap gets `sw 0 0`.
    #[must_use]
    pub fn fstab(&self) -> String {
        let mut s = String::new();
        for m in self.mounts() {
            let Some(fstab) = self
                .nodes
                .iter()
                .find(|n| n.base == m.name && matches!(n.kind, Kind::Fstab { .. }))
            else {
                continue;
            };
            let (
                Some(Node {
                    kind: Kind::Mkfs { fstype, label, .. },
                    ..
                }),
                Kind::Fstab {
                    options,
                    dump,
                    passno,
                },
            ) = (self.node(&m.base), &fstab.kind)
            else {
                continue;
            };
            if fstype.contains("swap") {
                s.push_str(&format!("LABEL={label} none swap sw 0 0\n"));
            } else {
                s.push_str(&format!(
                    "LABEL={label} {} {fstype} {options} {dump} {passno}\n",
                    mount_point(m)
                ));
            }
        }
        s
    }
}

fn mount_point(n: &Node) -> &str {
    match &n.kind {
        Kind::Mount { mount_point } => mount_point,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBR: &str = "- local_loop:\n    name: image0\n\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: root\n        flags: [ boot, primary ]\n        size: 100%\n        mkfs:\n          type: ext4\n          mount:\n            mount_point: /\n            fstab:\n              options: \"defaults\"\n              fsck-passno: 1\n";

    const EFI: &str = "- local_loop:\n    name: image0\n\n- partitioning:\n    base: image0\n    label: gpt\n    partitions:\n      - name: ESP\n        type: 'EF00'\n        size: 550MiB\n        mkfs:\n          type: vfat\n          mount:\n            mount_point: /boot/efi\n            fstab:\n              options: \"defaults\"\n              fsck-passno: 2\n      - name: BSP\n        type: 'EF02'\n        size: 8MiB\n      - name: root\n        type: '8300'\n        size: 100%\n        mkfs:\n          type: ext4\n          mount:\n            mount_point: /\n            fstab:\n              options: \"defaults\"\n              fsck-passno: 1\n";

    const GRAPH: &str = "- local_loop:\n    name: image0\n- partitioning:\n    base: image0\n    label: mbr\n    partitions:\n      - name: root\n        flags: [ boot, primary ]\n        size: 100%\n- mkfs:\n    name: mkfs_root\n    base: root\n    type: ext4\n- mount:\n    name: mount_mkfs_root\n    base: mkfs_root\n    mount_point: /\n- fstab:\n    name: fstab_mount_mkfs_root\n    base: mount_mkfs_root\n    options: \"defaults\"\n    fsck-passno: 1\n";

    fn names(c: &Config) -> Vec<&str> {
        c.order().iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn tree_notation_names_nodes_like_dib() {
        let c = parse(MBR).unwrap();
        assert_eq!(
            names(&c),
            [
                "image0",
                "root",
                "mkfs_root",
                "mount_mkfs_root",
                "fstab_mount_mkfs_root"
            ]
        );
        // mkfs_root takes the legacy root label: cloudimg-rootfs by default.
        assert_eq!(c.root_label().as_deref(), Some("cloudimg-rootfs"));
        assert_eq!(c.fstab(), "LABEL=cloudimg-rootfs / ext4 defaults 0 1\n");
    }

    #[test]
    fn graph_notation_is_equivalent_to_tree() {
        assert_eq!(parse(GRAPH).unwrap(), {
            let mut t = parse(MBR).unwrap();
            // Lines differ between the two spellings; the graph does not.
            let g = parse(GRAPH).unwrap();
            for (a, b) in t.nodes.iter_mut().zip(&g.nodes) {
                a.line = b.line;
            }
            t
        });
    }

    #[test]
    fn efi_layout_labels_and_mount_order() {
        let c = parse(EFI).unwrap();
        assert_eq!(c.mount_points(), "/|/boot/efi");
        let order = names(&c);
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("mount_mkfs_root") < pos("mount_mkfs_ESP"), "{order:?}");
        let Kind::Mkfs { label, .. } = &c.node("mkfs_ESP").unwrap().kind else {
            panic!()
        };
        assert_eq!(label, "MKFS_ESP");
        assert_eq!(
            c.fstab(),
            "LABEL=cloudimg-rootfs / ext4 defaults 0 1\nLABEL=MKFS_ESP /boot/efi vfat defaults 0 2\n"
        );
    }

    #[test]
    fn fallback_is_a_filesystem_on_the_loop_device() {
        let c = parse(FALLBACK).unwrap();
        assert_eq!(
            names(&c),
            [
                "image0",
                "mkfs_root",
                "mount_mkfs_root",
                "fstab_mount_mkfs_root"
            ]
        );
        assert!(c.partitionings.is_empty());
        let xfs = parse_with(
            FALLBACK,
            &Legacy {
                fs_type: "xfs".into(),
                ..Legacy::default()
            },
        )
        .unwrap();
        assert_eq!(xfs.root_fstype().as_deref(), Some("xfs"));
        assert_eq!(xfs.root_label().as_deref(), Some("img-rootfs"));
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().message
    }

    #[test]
    fn dib_errors() {
        assert_eq!(
            error("- local_loop:\n    name: a\n  mkfs:\n    base: a\n"),
            "Config entry top-level should be a single dict"
        );
        assert_eq!(
            error("- not_a_plugin:\n    name: a\n"),
            "Config entry is not a plugin value: not_a_plugin"
        );
        assert_eq!(error("- plain\n"), "Config entry not a dict: plain");
        assert_eq!(
            error(
                "- local_loop:\n    name: this_is_a_duplicate\n- local_loop:\n    name: this_is_a_duplicate\n"
            ),
            "Duplicate node name: this_is_a_duplicate"
        );
        assert_eq!(
            error(
                "- local_loop:\n    name: image0\n- mkfs:\n    base: this_is_not_a_node\n    type: ext4\n"
            ),
            "Edge not defined: this_is_not_a_node->mkfs_this_is_not_a_node"
        );
        assert_eq!(
            error(&MBR.replace("label: mbr", "label: msdos")),
            "Label must be 'mbr' or 'gpt'"
        );
        assert_eq!(
            error(&MBR.replace("[ boot, primary ]", "[ boot, bogus ]")),
            "Unknown flag: bogus"
        );
        assert_eq!(
            error(&MBR.replace("label: mbr", "label: gpt")),
            "Primary flag not supported for GPT partitions"
        );
        assert!(
            error(&MBR.replace(
                "type: ext4",
                "type: ext4\n          label: this-label-is-too-long"
            ))
            .contains("longer than 16")
        );
        assert!(
            error(&EFI.replace("mount_point: /boot/efi", "mount_point: /"))
                .contains("Mount point [/] specified more than once")
        );
        assert!(
            error(
                &EFI.replace("type: vfat", "type: vfat\n          label: same")
                    .replace("type: ext4", "type: ext4\n          label: SAME")
            )
            .contains("File system label [SAME] used more than once")
        );
        assert!(
            error("- lvm:\n    name: lvm\n    base: [root]\n")
                .contains("LVM layouts are not supported yet")
        );
        assert!(
            error("- local_loop:\n    name: image0\n    size: 5 parsecs\n")
                .contains("unit_str [parsecs] not known")
        );
    }

    #[test]
    fn errors_carry_the_line() {
        let e = parse(
            &EFI.replace("[ boot, primary ]", "")
                .replace("size: 8MiB", "size: 8MiB\n        flags: [ wrong ]"),
        )
        .unwrap_err();
        assert_eq!(e.message, "Unknown flag: wrong");
        assert_eq!(e.line, Some(21));
    }
}
