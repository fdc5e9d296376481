//! Value parsers for the command line: durations and sizes.
//!
//! `watch`, `check`, `inject` and `plan` all take these, so they live in a leaf module that
//! imports nothing of the crate: every command can use them without depending on another.

use std::time::Duration;

/// Parses `250ms`, `5s`, `3m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 5s, 3m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{s}` is not a duration (e.g. 500ms, 5s, 3m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{s}` is out of range"))
}

/// The largest size accepted: no buffer can hold more, so a larger limit could not be honoured.
pub const MAX_SIZE: usize = isize::MAX as usize;

/// Parses sizes like `1048576`, `512KiB`, `64MiB`, `1GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` is not a size (e.g. 64MiB)")),
    };
    if digits.is_empty() {
        return Err(format!("`{s}` is not a size (e.g. 64MiB)"));
    }
    // Digits only, so a failed parse or product means a number too large for any input.
    digits
        .parse::<u128>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier as u128))
        .and_then(|size| usize::try_from(size).ok())
        .filter(|&size| size <= MAX_SIZE)
        .ok_or_else(|| format!("`{s}` is larger than any input can be"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn sizes_no_buffer_can_hold_are_refused() {
        assert_eq!(parse_size(&MAX_SIZE.to_string()), Ok(MAX_SIZE));
        assert!(parse_size(&(MAX_SIZE as u128 + 1).to_string()).is_err());
        assert!(parse_size(&usize::MAX.to_string()).is_err());
        for overflow in [
            "17179869184GiB",
            "99999999999999999999999999999999999999999999",
        ] {
            let e = parse_size(overflow).expect_err(overflow);
            assert!(e.contains("larger than any input"), "{e}");
        }
    }
}
