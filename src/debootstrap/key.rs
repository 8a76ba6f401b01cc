//! The debootstrap element's cache key: a hash over everything that decides the cached tree's
//! contents. Its text is the one the element's shell computed before this module, so trees
//! cached by earlier builds keep their names.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// What shapes a cached tree. Strings as the element has them (empty when unset).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub distro: String,
    pub release: String,
    pub arch: String,
    /// The mirror, or `None` for debootstrap's default.
    pub mirror: Option<String>,
    pub components: String,
    pub variant: String,
    pub include: String,
    pub extra: String,
    pub keyring: String,
    pub script: String,
    /// The caller's `INITRD`, `None` when unset.
    pub initrd: Option<String>,
    /// The prepare scripts' names, as listed.
    pub prepare: Vec<String>,
    /// `DIB_DEBOOTSTRAP_PREPARE_KEY`: the variables the prepare scripts read.
    pub prepare_key: String,
    /// The contents of every script that runs on the tree before it is cached.
    pub scripts: Vec<Vec<u8>>,
}

/// Lowercase hex of a SHA-256 digest.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The text that is hashed: one `name=value` line per input (`format=2`: a tarball may hold two
/// archives), the prepare key, then each script's `sha256sum` line; trailing newlines removed,
/// as the shell's `$(...)` removed them.
#[must_use]
pub fn text(i: &Inputs) -> String {
    let mut s = format!(
        "format=2\ndistro={}\nrelease={}\narch={}\nmirror={}\ncomponents={}\nvariant={}\n\
         include={}\nextra={}\nkeyring={}\nscript={}\ninitrd={}\nprepare={}\n{}\n",
        i.distro,
        i.release,
        i.arch,
        i.mirror.as_deref().unwrap_or("(debootstrap default)"),
        i.components,
        i.variant,
        i.include,
        i.extra,
        i.keyring,
        i.script,
        i.initrd.as_deref().unwrap_or("(unset)"),
        i.prepare.join(" "),
        i.prepare_key,
    );
    for script in &i.scripts {
        s.push_str(&sha256_hex(script));
        s.push_str("  -\n");
    }
    s.truncate(s.trim_end_matches('\n').len());
    s
}

/// The key: the first 16 hex digits of the text's SHA-256.
#[must_use]
pub fn key(i: &Inputs) -> String {
    sha256_hex(text(i).as_bytes())[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            distro: "debian".into(),
            release: "bookworm".into(),
            arch: "amd64".into(),
            mirror: None,
            components: "main".into(),
            variant: "minbase".into(),
            prepare: vec!["55-a".into(), "60-b".into()],
            prepare_key: "debian-minimal: packages=x".into(),
            scripts: vec![b"echo a\n".to_vec(), b"echo b\n".to_vec()],
            ..Inputs::default()
        }
    }

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// The key the element's shell computed for these inputs (printf ... | sha256sum), so
    /// existing caches keep their names.
    #[test]
    fn key_equals_the_shell_computed_one() {
        let i = inputs();
        let t = text(&i);
        assert!(t.starts_with("format=2\ndistro=debian\n"), "{t}");
        assert!(t.contains("\nmirror=(debootstrap default)\n"), "{t}");
        assert!(t.contains("\ninitrd=(unset)\nprepare=55-a 60-b\ndebian-minimal: packages=x\n"));
        assert!(
            t.ends_with(&format!("{}  -", sha256_hex(b"echo b\n"))),
            "{t}"
        );
        let shell = std::process::Command::new("bash")
            .args([
                "-c",
                r#"key=$(printf 'format=2\ndistro=%s\nrelease=%s\narch=%s\nmirror=%s\ncomponents=%s\nvariant=%s\ninclude=%s\nextra=%s\nkeyring=%s\nscript=%s\ninitrd=%s\nprepare=%s\n%s\n' \
                    debian bookworm amd64 "(debootstrap default)" main minbase "" "" "" "" "(unset)" "55-a 60-b" "debian-minimal: packages=x"
                    printf 'echo a\n' | sha256sum; printf 'echo b\n' | sha256sum)
                printf '%s' "$key" | sha256sum | cut -c1-16"#,
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&shell.stdout).trim(), key(&i));
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = key(&inputs());
        let changes: [fn(&mut Inputs); 7] = [
            |i| i.mirror = Some("http://m/debian".into()),
            |i| i.initrd = Some("No".into()),
            |i| i.include = "curl".into(),
            |i| i.prepare_key.push('y'),
            |i| i.scripts[1].push(b'#'),
            |i| i.scripts.push(b"echo c\n".to_vec()),
            |i| i.arch = "arm64".into(),
        ];
        for change in changes {
            let mut i = inputs();
            change(&mut i);
            assert_ne!(key(&i), base);
        }
    }
}
