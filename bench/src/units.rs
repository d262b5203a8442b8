//! Command-line quantities: byte sizes (`1024`, `64KiB`, `1m`) and
//! durations (`10s`, `500ms`, `2m`), and how the reports print them.
//!
//! Why binary multiples for sizes and decimal megabytes for rates: sizes
//! describe buffers and records, which people think of in KiB/MiB (a
//! "1 KiB record" is 1024 bytes, as in the OpenMessaging Benchmark
//! workloads); throughput is reported in MB/s = 10^6 bytes per second,
//! the unit disk vendors, `fio` and `kafka-producer-perf-test`'s peers
//! use, and the one `bench disk` reports too, so ratios compare like with
//! like.

use std::time::Duration;

/// Bytes in one MB of the throughput figures.
pub const MB: f64 = 1e6;

/// Parses a byte count: a plain integer, or one followed by `k`/`K`/`KiB`,
/// `m`/`M`/`MiB`, `g`/`G`/`GiB` (powers of 1024).
///
/// # Errors
///
/// Anything else, or a result that overflows `u64`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a byte count (e.g. 1024, 64KiB, 1MiB)"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "m" | "M" | "MiB" => 1 << 20,
        "g" | "G" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB or GiB)"
            ))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h`; a bare
/// number is seconds. Fractions are allowed (`1.5s`).
///
/// # Errors
///
/// Anything else, a negative or non-finite value.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=DURATION_MAX_S).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Longest duration accepted (a week): longer runs are a typo.
pub const DURATION_MAX_S: f64 = 7.0 * 24.0 * 3600.0;

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Serializes a [`Duration`] as fractional seconds in the JSON report.
pub fn serialize_seconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// [`serialize_seconds`] for an optional duration (`null` when absent).
pub fn serialize_optional_seconds<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => serializer.serialize_f64(d.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("100B"), Ok(100));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("KiB").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999999999").is_err());
        assert!(parse_bytes("17179869184G").is_err(), "overflow");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("1000h").is_err(), "more than a week");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100000), "100,000");
    }
}
