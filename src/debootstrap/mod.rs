//! The debootstrap element's logic, out of its shell hook: the local, cut-down index
//! debootstrap resolves from ([`local`], over the pure functions of [`index`]) and the cache
//! key of a prepared tree ([`key`]). The element calls it through `dibkit debootstrap`; this
//! module never prints.

pub mod index;
pub mod key;
pub mod local;

/// The Debian architecture of a dib `ARCH` (`x86_64` is `amd64`, ...); others as given.
#[must_use]
pub fn debian_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        other => other,
    }
}

/// The first `root.d` script that runs between `this` and the last prepare script (bytewise
/// order, as dib-run-parts sorts these names) and is neither a prepare script nor declared
/// compatible: it could change what the prepare scripts do, so the tree is not prepared.
#[must_use]
pub fn prepare_blocker(
    root_d: &[String],
    this: &str,
    prepare: &[String],
    compatible: &[String],
) -> Option<String> {
    let last = prepare.iter().max()?;
    let mut names: Vec<&String> = root_d.iter().collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| n.as_str() > this && *n < last)
        .find(|n| !prepare.contains(n) && !compatible.contains(n))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn dib_arches_map_to_debian_ones() {
        assert_eq!(debian_arch("x86_64"), "amd64");
        assert_eq!(debian_arch("aarch64"), "arm64");
        assert_eq!(debian_arch("ppc64le"), "ppc64el");
        assert_eq!(debian_arch("armhf"), "armhf");
    }

    #[test]
    fn only_foreign_scripts_between_block_preparing() {
        let root_d = names("05-early 10-debootstrap 20-dpkg 50-proxy 55-src 60-base 70-late");
        let prepare = names("55-src 60-base");
        let compatible = names("20-dpkg");
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &prepare, &compatible).as_deref(),
            Some("50-proxy")
        );
        let root_d = names("05-early 10-debootstrap 20-dpkg 55-src 60-base 70-late");
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &prepare, &compatible),
            None
        );
        assert_eq!(
            prepare_blocker(&root_d, "10-debootstrap", &[], &compatible),
            None
        );
    }
}
