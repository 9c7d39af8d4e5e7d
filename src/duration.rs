//! Durations written as text, in `jobq.toml` and on the command line: a whole
//! number followed by a unit, `ms`, `s`, `m`, `h` or `d` ("250ms", "30s", "5m",
//! "1h", "7d").

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The text is not a duration of the form `<whole number><unit>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {text:?}: expected a whole number and a unit (ms, s, m, h, d), e.g. \"30s\""
)]
pub struct DurationError {
    text: String,
}

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` (no spaces, no fractions; a
/// day is 86,400 s).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(jobq::duration::parse_duration("5m").unwrap(), Duration::from_secs(300));
/// assert_eq!(jobq::duration::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(jobq::duration::parse_duration("5").is_err());
/// ```
///
/// # Errors
/// [`DurationError`] naming the text (cut to 64 characters).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError {
        text: text.chars().take(64).collect(),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

/// Shows a duration in the largest unit that divides it exactly ("90s", "5m", "250ms").
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (size, unit) in units {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Seconds as a person reads them: whole ("30") or with up to 3 decimals ("0.25").
pub fn format_secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        text.trim_end_matches('0').to_string()
    }
}

/// serde `deserialize_with` for a duration written as text.
///
/// # Errors
/// The deserializer's custom error carrying [`DurationError`]'s message.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// serde `deserialize_with` for an optional duration written as text.
///
/// # Errors
/// As [`deserialize`].
pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

/// serde `deserialize_with` for a list of durations written as text.
///
/// # Errors
/// As [`deserialize`], for the first bad entry.
pub fn deserialize_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Duration>>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|t| parse_duration(t).map_err(serde::de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        let table = [
            ("0s", 0),
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
        ];
        for (text, ms) in table {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_durations_are_refused() {
        for text in [
            "",
            "5",
            "s",
            "1.5s",
            " 5s",
            "5 s",
            "-1s",
            "5x",
            "5sec",
            "99999999999999999d",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.to_string().contains("invalid duration"), "{text}");
        }
    }

    #[test]
    fn formatting_picks_the_largest_exact_unit() {
        let table = [(250, "250ms"), (90_000, "90s"), (300_000, "5m"), (0, "0ms")];
        for (ms, want) in table {
            assert_eq!(format_duration(Duration::from_millis(ms)), want);
        }
        assert_eq!(format_secs(Duration::from_millis(2000)), "2");
        assert_eq!(format_secs(Duration::from_millis(250)), "0.25");
    }
}
