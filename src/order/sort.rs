//! GNU `sort -n` in the C locale, as dib-run-parts orders hooks (`LANG=C sort -n`).
//!
//! The key is the leading number: optional blanks, an optional `-`, digits and an optional
//! `.` fraction. A name without one sorts as 0. Equal keys fall back to comparing the whole
//! name bytewise (GNU's last-resort comparison; dib does not pass `-s`).

use std::cmp::Ordering;

/// The numeric key of a name: sign, integer digits without leading zeros, fraction digits
/// without trailing zeros. Zero is always positive.
#[derive(Debug, PartialEq, Eq)]
struct Key<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
}

fn key(s: &[u8]) -> Key<'_> {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    let negative = s.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let int_start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let mut int = &s[int_start..i];
    while let [b'0', rest @ ..] = int {
        int = rest;
    }
    let mut frac: &[u8] = &[];
    if s.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut j = start;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        frac = &s[start..j];
        while let [rest @ .., b'0'] = frac {
            frac = rest;
        }
    }
    let zero = int.is_empty() && frac.is_empty();
    Key {
        negative: negative && !zero,
        int,
        frac,
    }
}

fn cmp_magnitude(a: &Key<'_>, b: &Key<'_>) -> Ordering {
    a.int
        .len()
        .cmp(&b.int.len())
        .then_with(|| a.int.cmp(b.int))
        .then_with(|| a.frac.cmp(b.frac))
}

fn cmp_keys(a: &Key<'_>, b: &Key<'_>) -> Ordering {
    match (a.negative, b.negative) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => cmp_magnitude(a, b),
        (true, true) => cmp_magnitude(b, a),
    }
}

/// Compares two names as `LANG=C sort -n` does.
#[must_use]
pub fn compare(a: &str, b: &str) -> Ordering {
    cmp_keys(&key(a.as_bytes()), &key(b.as_bytes())).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Whether two names have the same numeric key (their order is decided by bytes alone).
#[must_use]
pub fn same_key(a: &str, b: &str) -> bool {
    cmp_keys(&key(a.as_bytes()), &key(b.as_bytes())) == Ordering::Equal
}

/// The numeric key as text, for messages (`10`, `-5`, `0`).
#[must_use]
pub fn key_text(name: &str) -> String {
    let k = key(name.as_bytes());
    let mut s = String::new();
    if k.negative {
        s.push('-');
    }
    if k.int.is_empty() {
        s.push('0');
    } else {
        s.push_str(&String::from_utf8_lossy(k.int));
    }
    if !k.frac.is_empty() {
        s.push('.');
        s.push_str(&String::from_utf8_lossy(k.frac));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &str) -> String {
        let mut v: Vec<&str> = names.split(' ').collect();
        v.sort_by(|a, b| compare(a, b));
        v.join(" ")
    }

    #[test]
    fn spec_example_mixed() {
        assert_eq!(
            sorted("10-a 9-b 100-c 05-x abc 10-B 10_a"),
            "abc 05-x 9-b 10-B 10-a 10_a 100-c"
        );
    }

    #[test]
    fn spec_example_negative_and_zero() {
        let want = "-10-a -1 -0 -a 0 00 000-a A_b _x abc 01-a 1-b 1_a 1a 05-x 9-b 10-B 10-a 10_a 10a 100-c";
        let mut shuffled: Vec<&str> = want.split(' ').collect();
        shuffled.reverse();
        assert_eq!(sorted(&shuffled.join(" ")), want);
    }

    #[test]
    fn spec_example_ties() {
        assert_eq!(
            sorted("10_a 10-a 10-B 10-A 10 010-oct"),
            "010-oct 10 10-A 10-B 10-a 10_a"
        );
    }

    #[test]
    fn upstream_real_set() {
        let want = "00-01-yum-keepcache 00-dnf-update 00-install-repo-package 01-00-centos-python3 01-module-configuration";
        let mut v: Vec<&str> = want.split(' ').collect();
        v.reverse();
        assert_eq!(sorted(&v.join(" ")), want);
    }

    #[test]
    fn fractions_and_huge_numbers() {
        assert_eq!(sorted("1.5 1.45 1 2"), "1 1.45 1.5 2");
        assert_eq!(
            sorted("99999999999999999999999-x 100000000000000000000000-y 5"),
            "5 99999999999999999999999-x 100000000000000000000000-y"
        );
        assert_eq!(key_text("1e3"), "1");
        assert_eq!(key_text("-0"), "0");
        assert_eq!(key_text("-5-x"), "-5");
    }
}
