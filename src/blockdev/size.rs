//! Size specs as dib's `block_device/utils.py` reads them: `^([\d\.]*) ?([a-zA-Z0-9_]*)$`,
//! units `TiB GiB MiB KiB` (1024) and `TB GB MB KB T G M K` (1000), `B` or none for bytes, an
//! empty number meaning 1, the float truncated to an integer.

/// A size spec that dib would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("size [{0}] is not a number with an optional unit")]
    Syntax(String),
    #[error("unit_str [{0}] not known")]
    Unit(String),
}

/// Bytes for a size spec.
///
/// # Errors
/// Syntax dib's regex refuses, or an unknown unit.
pub fn parse(spec: &str) -> Result<u64, SizeError> {
    let digits_end = spec
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(spec.len());
    let (number, rest) = spec.split_at(digits_end);
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    if !unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(SizeError::Syntax(spec.to_owned()));
    }
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "TB" | "T" => 1_000_000_000_000,
        other => return Err(SizeError::Unit(other.to_owned())),
    };
    let value: f64 = if number.is_empty() {
        1.0
    } else {
        number
            .parse()
            .map_err(|_| SizeError::Syntax(spec.to_owned()))?
    };
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    Ok((value * factor as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("1MiB"), Ok(1 << 20));
        assert_eq!(parse("1 MiB"), Ok(1 << 20));
        assert_eq!(parse("2G"), Ok(2_000_000_000));
        assert_eq!(parse("1.5KiB"), Ok(1536));
        assert_eq!(parse("MiB"), Ok(1 << 20));
        assert_eq!(parse("512"), Ok(512));
        assert_eq!(parse("10B"), Ok(10));
        assert_eq!(parse("0.1K"), Ok(100));
        assert_eq!(parse("1mib"), Err(SizeError::Unit("mib".into())));
        assert!(parse("1.2.3MiB").is_err());
        assert!(parse("-1MiB").is_err());
    }
}
