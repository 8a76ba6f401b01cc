//! Random identifiers: the kernel's random bytes (`/dev/urandom`), for what must differ
//! between images and builds (UUIDs, disk identifiers) or stay secret (a cache's key).

use std::fmt::Write as _;
use std::io::Read as _;

/// `N` random bytes from the kernel; None when `/dev/urandom` cannot be read.
#[must_use]
pub fn bytes<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .ok()?;
    Some(b)
}

/// A random (version 4) UUID, in its usual text form.
#[must_use]
pub fn uuid() -> String {
    let mut b = bytes::<16>().unwrap_or_else(|| {
        // No /dev/urandom: the time and pid still make it unique enough.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (t ^ u128::from(std::process::id()) << 64).to_le_bytes()
    });
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::new();
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = super::uuid();
        let re = regex::Regex::new(
            "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        assert!(re.is_match(&a), "{a}");
        assert_ne!(a, super::uuid());
        assert_ne!(super::bytes::<8>(), super::bytes::<8>());
    }
}
