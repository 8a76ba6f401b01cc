//! Pure functions over a Debian mirror's index files, as the debootstrap element uses them to
//! give debootstrap a local, cut-down copy of the index: cutting `Release` and its signature
//! out of `InRelease`, reading the `Release` file, the dependency closure over `Packages`
//! stanzas, the cut-down index itself and which `.deb` files debootstrap will read from its
//! cache. No I/O here; `local.rs` does that.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The lines of `bytes` as awk reads them: split at `\n`, a final newline ending the last line
/// rather than starting an empty one.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if bytes.ends_with(b"\n") || bytes.is_empty() {
        out.pop();
    }
    out
}

/// `Release` and `Release.gpg` cut out of an `InRelease` file as debootstrap cuts them: the
/// signed text after the armour header's blank line, its lines joined by newlines with none
/// after the last; the signature block from its `BEGIN` line to its `END` line, each line
/// ending in a newline. `None` when either part is missing.
#[must_use]
pub fn split_inrelease(inrelease: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    enum State {
        Before,
        Header,
        Text,
        Signature,
    }
    let mut state = State::Before;
    let mut release: Option<Vec<u8>> = None;
    let mut signature: Option<Vec<u8>> = None;
    for line in lines(inrelease) {
        match state {
            State::Before => {
                if line == b"-----BEGIN PGP SIGNED MESSAGE-----" {
                    state = State::Header;
                }
            }
            State::Header => {
                if line.is_empty() {
                    state = State::Text;
                }
            }
            State::Text if line == b"-----BEGIN PGP SIGNATURE-----" => {
                let sig = signature.get_or_insert_with(Vec::new);
                sig.extend_from_slice(line);
                sig.push(b'\n');
                state = State::Signature;
            }
            State::Text => match &mut release {
                None => release = Some(line.to_vec()),
                Some(rel) => {
                    rel.push(b'\n');
                    rel.extend_from_slice(line);
                }
            },
            State::Signature => {
                let sig = signature.get_or_insert_with(Vec::new);
                sig.extend_from_slice(line);
                sig.push(b'\n');
                if line == b"-----END PGP SIGNATURE-----" {
                    break;
                }
            }
        }
    }
    Some((release?, signature?))
}

/// The `SHA256 SIZE` entry of `path` in a `Release` file's `SHA256:` list.
#[must_use]
pub fn release_entry(release: &str, path: &str) -> Option<(String, u64)> {
    let mut on = false;
    for line in release.lines() {
        if line.starts_with("SHA256:") {
            on = true;
            continue;
        }
        if !line.starts_with(' ') {
            on = false;
        }
        if !on {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 3 && fields[2] == path {
            return Some((fields[0].to_owned(), fields[1].parse().ok()?));
        }
    }
    None
}

/// Whether the `Release` file is for `release` (its suite or its codename).
#[must_use]
pub fn is_for_release(release_file: &str, release: &str) -> bool {
    release_file
        .lines()
        .any(|l| l == format!("Suite: {release}") || l == format!("Codename: {release}"))
}

/// The components debootstrap takes: those of the `Components` line that were asked for
/// (`wanted`, comma-separated), in the `Release` file's order, each once.
#[must_use]
pub fn components(release_file: &str, wanted: &str) -> Vec<String> {
    let asked: Vec<&str> = wanted.split(',').collect();
    let mut out: Vec<String> = Vec::new();
    let line = release_file
        .lines()
        .find_map(|l| l.strip_prefix("Components:"))
        .unwrap_or_default();
    for comp in line.split_whitespace() {
        if asked.contains(&comp) && !out.iter().any(|c| c == comp) {
            out.push(comp.to_owned());
        }
    }
    out
}

/// The stanzas of a `Packages` file (paragraphs between empty lines), each without its
/// final newline.
pub fn stanzas(packages: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = packages.split('\n').peekable();
    std::iter::from_fn(move || {
        while lines.peek().is_some_and(|l| l.is_empty()) {
            lines.next();
        }
        let mut stanza: Vec<&str> = Vec::new();
        while let Some(l) = lines.next_if(|l| !l.is_empty()) {
            stanza.push(l);
        }
        (!stanza.is_empty()).then(|| stanza.join("\n"))
    })
}

/// The value of the first line of `stanza` that starts with `field` and `": "`.
fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

/// The value of the last such line (a later line of a stanza overrides an earlier one).
fn last_field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

/// The packages reachable from `seeds` and from every package of priority `required` or
/// `important`, through any alternative of any `Depends` or `Pre-Depends`: all that
/// debootstrap's resolver can reach. Names not in the index are left out. In the order they
/// were reached.
#[must_use]
pub fn closure(indexes: &[&str], seeds: &[&str]) -> Vec<String> {
    let mut deps: HashMap<String, String> = HashMap::new();
    let mut want: Vec<String> = Vec::new();
    for index in indexes {
        for stanza in stanzas(index) {
            let mut pkg = None;
            let mut prio = None;
            let mut d = String::new();
            for line in stanza.lines() {
                if let Some(v) = line.strip_prefix("Package: ") {
                    pkg = Some(v);
                } else if let Some(v) = line.strip_prefix("Priority: ") {
                    prio = Some(v);
                } else if let Some(v) = line
                    .strip_prefix("Depends: ")
                    .or_else(|| line.strip_prefix("Pre-Depends: "))
                {
                    d.push(',');
                    d.push_str(v);
                }
            }
            let Some(pkg) = pkg.filter(|p| !p.is_empty()) else {
                continue;
            };
            deps.entry(pkg.to_owned()).or_default().push_str(&d);
            if matches!(prio, Some("required" | "important")) {
                want.push(pkg.to_owned());
            }
        }
    }
    want.extend(
        seeds
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned()),
    );
    let mut keep: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < want.len() {
        let p = want[i].clone();
        i += 1;
        if keep.contains(&p) {
            continue;
        }
        let Some(d) = deps.get(&p) else {
            continue;
        };
        keep.insert(p.clone());
        for alt in d.split([',', '|']) {
            let q = alt.trim_start_matches(' ');
            let q = q.split([' ', '(', ':']).next().unwrap_or_default();
            if deps.contains_key(q) && !keep.contains(q) {
                want.push(q.to_owned());
            }
        }
        out.push(p);
    }
    out
}

/// The seeds of the closure: `apt`, the `--include`d packages and every word of the release's
/// debootstrap scripts (any of which may name a package it adds).
#[must_use]
pub fn seeds(include: &str, scripts: &[&str]) -> Vec<String> {
    let mut out = vec!["apt".to_owned()];
    out.extend(
        include
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    let mut words = BTreeSet::new();
    for text in scripts {
        words.extend(package_words(text));
    }
    out.extend(words);
    out
}

/// Words that could be package names: `[a-z0-9][a-z0-9.+-]*`.
fn package_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        let lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if lower || (!cur.is_empty() && matches!(c, '.' | '+' | '-')) {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The stanzas of `index` whose package is in `keep`, each followed by an empty line.
#[must_use]
pub fn cut<S: std::hash::BuildHasher>(index: &str, keep: &HashSet<&str, S>) -> String {
    let mut out = String::new();
    for stanza in stanzas(index) {
        if field(&stanza, "Package").is_some_and(|p| keep.contains(p)) {
            out.push_str(&stanza);
            out.push_str("\n\n");
        }
    }
    out
}

/// The `Release` file of the local mirror: the original's identifying fields, then the
/// `SHA256` entries (`(sha256, size, path)`) of the cut-down indexes.
#[must_use]
pub fn local_release(release_file: &str, entries: &[(String, u64, String)]) -> String {
    const KEEP: &[&str] = &[
        "Origin",
        "Label",
        "Suite",
        "Version",
        "Codename",
        "Date",
        "Architectures",
        "Components",
    ];
    let mut out = String::new();
    for line in release_file.lines() {
        if KEEP
            .iter()
            .any(|k| line.strip_prefix(k).is_some_and(|r| r.starts_with(':')))
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("SHA256:\n");
    for (sha, size, path) in entries {
        out.push_str(&format!(" {sha} {size} {path}\n"));
    }
    out
}

/// One `.deb` debootstrap will read from its cache: the name it gives the file there and the
/// path of the file on the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    pub cache_name: String,
    pub filename: String,
}

/// The `.deb` files of `packages` as debootstrap picks them from the indexes (given in
/// component order): the first component that has the package, the last stanza in it. Sorted
/// by package name; packages without a stanza are left out.
#[must_use]
pub fn debs(indexes: &[&str], packages: &[&str]) -> Vec<Deb> {
    let wanted: HashSet<&str> = packages.iter().copied().collect();
    let mut from: HashMap<String, usize> = HashMap::new();
    let mut picked: BTreeMap<String, Deb> = BTreeMap::new();
    for (i, index) in indexes.iter().enumerate() {
        for stanza in stanzas(index) {
            let pkg = last_field(&stanza, "Package").unwrap_or_default();
            if !wanted.contains(pkg) || from.get(pkg).is_some_and(|&f| f != i) {
                continue;
            }
            from.insert(pkg.to_owned(), i);
            let ver = last_field(&stanza, "Version").unwrap_or_default();
            let arch = last_field(&stanza, "Architecture").unwrap_or_default();
            let file = last_field(&stanza, "Filename").unwrap_or_default();
            picked.insert(
                pkg.to_owned(),
                Deb {
                    // debootstrap escapes the epoch's colon (the first one only).
                    cache_name: format!("{pkg}_{ver}_{arch}.deb").replacen(':', "%3a", 1),
                    filename: file.to_owned(),
                },
            );
        }
    }
    picked.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGES: &str = include_str!("../../tests/fixtures/debootstrap-mirror/Packages");

    #[test]
    fn inrelease_splits_as_debootstrap_cuts_it() {
        let text = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nSuite: stable\n\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\ntrailing\n";
        let (rel, sig) = split_inrelease(text).unwrap();
        // An empty line inside the signed text is kept; none follows the last line.
        assert_eq!(rel, b"Origin: Debian\nSuite: stable\n");
        assert_eq!(
            sig,
            b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
        );
        let (rel, _) = split_inrelease(
            b"junk\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\nB: 2\n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----",
        )
        .unwrap();
        assert_eq!(rel, b"A: 1\nB: 2");
        assert_eq!(split_inrelease(b"Origin: Debian\n"), None);
        assert_eq!(
            split_inrelease(b"-----BEGIN PGP SIGNED MESSAGE-----\n\nA: 1\n"),
            None,
            "no signature"
        );
    }

    /// The awk program the element's shell cut InRelease with before this module.
    const SPLIT_AWK: &str = r#"
        state == 0 { if ($0 == "-----BEGIN PGP SIGNED MESSAGE-----") state = 1; next }
        state == 1 { if ($0 == "") state = 2; next }
        state == 2 && $0 == "-----BEGIN PGP SIGNATURE-----" { print > sig; state = 3; next }
        state == 2 { printf "%s%s", nl, $0 > rel; nl = "\n"; next }
        state == 3 { print > sig; if ($0 == "-----END PGP SIGNATURE-----") exit }
    "#;

    /// Byte for byte what the shell's awk program made, over a real-looking InRelease and
    /// edge cases (empty lines in the text, no final newline, text after the signature).
    #[test]
    fn inrelease_split_equals_the_former_awk_program() {
        let tmp = tempfile::tempdir().unwrap();
        let inputs: [&[u8]; 4] = [
            b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nSHA256:\n 0a 12 main/binary-amd64/Packages\n-----BEGIN PGP SIGNATURE-----\n\niQIz\n=abcd\n-----END PGP SIGNATURE-----\n",
            b"x\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\nA: 1\n\nB: 2 \n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\nafter\n",
            b"-----BEGIN PGP SIGNED MESSAGE-----\n\nA: 1\n-----BEGIN PGP SIGNATURE-----\nsig\n-----END PGP SIGNATURE-----",
            b"-----BEGIN PGP SIGNED MESSAGE-----\n\n- escaped\r\nA: \xc3\xa9\n-----BEGIN PGP SIGNATURE-----\nsig\n-----END PGP SIGNATURE-----\n",
        ];
        for (i, input) in inputs.iter().enumerate() {
            let file = tmp.path().join(format!("in{i}"));
            let (rel, sig) = (
                tmp.path().join(format!("rel{i}")),
                tmp.path().join(format!("sig{i}")),
            );
            std::fs::write(&file, input).unwrap();
            let status = std::process::Command::new("awk")
                .env("LC_ALL", "C")
                .arg("-v")
                .arg(format!("rel={}", rel.display()))
                .arg("-v")
                .arg(format!("sig={}", sig.display()))
                .arg(SPLIT_AWK)
                .arg(&file)
                .status()
                .unwrap();
            assert!(status.success());
            let (r, s) = split_inrelease(input).unwrap();
            assert_eq!(r, std::fs::read(&rel).unwrap(), "Release of input {i}");
            assert_eq!(s, std::fs::read(&sig).unwrap(), "Release.gpg of input {i}");
        }
    }

    #[test]
    fn release_entries_come_from_the_sha256_list_only() {
        let rel = "Suite: stable\nCodename: bookworm\nComponents: main contrib\nMD5Sum:\n 00 1 main/binary-amd64/Packages\nSHA256:\n ab 12 main/binary-amd64/Packages\n cd 34 main/binary-amd64/Packages.gz\nOther: x\n";
        assert_eq!(
            release_entry(rel, "main/binary-amd64/Packages.gz"),
            Some(("cd".to_owned(), 34))
        );
        assert_eq!(
            release_entry(rel, "main/binary-amd64/Packages"),
            Some(("ab".to_owned(), 12))
        );
        assert_eq!(release_entry(rel, "contrib/binary-amd64/Packages"), None);
        assert!(is_for_release(rel, "bookworm") && is_for_release(rel, "stable"));
        assert!(!is_for_release(rel, "trixie"));
        assert_eq!(
            components(rel, "contrib,main,non-free,main"),
            ["main", "contrib"]
        );
        assert!(components(rel, "non-free").is_empty());
    }

    #[test]
    fn closure_follows_every_alternative_from_priorities_and_seeds() {
        let seeds = seeds(
            "curl",
            &["mirror_style release\nrequired=\"$required usr-is-merged\""],
        );
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let mut kept = closure(&[PACKAGES], &seeds);
        kept.sort();
        assert_eq!(
            kept,
            [
                "apt",
                "base-files",
                "curl",
                "gcc-12-base",
                "libapt-pkg6.0",
                "libc6",
                "libgcc-s1",
                "libgcc1",
                "usr-is-merged"
            ]
        );
        // Only what is reachable: nothing from the seeds but base-files' dependencies.
        let kept = closure(&[PACKAGES], &[]);
        assert_eq!(kept[0], "base-files");
        assert!(!kept.iter().any(|k| k == "curl" || k == "apt"), "{kept:?}");
    }

    #[test]
    fn cut_keeps_whole_stanzas_of_kept_packages() {
        let keep: HashSet<&str> = ["libc6", "curl"].into_iter().collect();
        let out = cut(PACKAGES, &keep);
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("Package: "))
            .collect();
        assert_eq!(names, ["libc6", "curl"]);
        assert!(out.ends_with("\n\n") && !out.ends_with("\n\n\n"));
        let libc = stanzas(PACKAGES)
            .find(|s| s.starts_with("Package: libc6\n"))
            .unwrap();
        assert!(out.starts_with(&format!("{libc}\n\n")));
    }

    #[test]
    fn debs_come_from_the_first_component_and_its_last_stanza() {
        let main = "Package: a\nVersion: 1:2\nArchitecture: amd64\nFilename: pool/a1.deb\n\nPackage: a\nVersion: 3\nArchitecture: amd64\nFilename: pool/a3.deb\n";
        let contrib = "Package: a\nVersion: 9\nArchitecture: amd64\nFilename: pool/a9.deb\n\nPackage: b\nVersion: 1:1:1\nArchitecture: all\nFilename: pool/b.deb\n";
        assert_eq!(
            debs(&[main, contrib], &["b", "a", "c"]),
            [
                Deb {
                    cache_name: "a_3_amd64.deb".to_owned(),
                    filename: "pool/a3.deb".to_owned()
                },
                Deb {
                    cache_name: "b_1%3a1:1_all.deb".to_owned(),
                    filename: "pool/b.deb".to_owned()
                },
            ]
        );
    }

    #[test]
    fn local_release_keeps_identity_and_lists_the_cut_indexes() {
        let rel = "Origin: Debian\nLabel: Debian\nSuite: stable\nAcquire-By-Hash: yes\nComponents: main\nSHA256:\n ab 12 main/binary-amd64/Packages\n";
        assert_eq!(
            local_release(
                rel,
                &[("ff".to_owned(), 7, "main/binary-amd64/Packages".to_owned())]
            ),
            "Origin: Debian\nLabel: Debian\nSuite: stable\nComponents: main\nSHA256:\n ff 7 main/binary-amd64/Packages\n"
        );
    }
}
