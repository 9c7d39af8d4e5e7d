//! Durations written as text, in `jobq.toml` and on the command line, read by
//! the `humantime` crate: one or more numbers, each with a unit ("250ms",
//! "30s", "5m", "1h", "7d", "1h 30m", "1.5h", "90 seconds", "2 weeks").
//!
//! Units: `ms`, `s`, `m`, `h`, `d`, `w` and their long forms (`msec`,
//! `sec`/`secs`/`second`/`seconds`, `min`/`mins`/`minute`/`minutes`,
//! `hr`/`hrs`/`hour`/`hours`, `day`/`days`, `wk`/`wks`/`week`/`weeks`); a day
//! is 86,400 s. Refused: months and years (their length varies, and `5M` is one
//! key away from `5m`), units below a millisecond, values that are not a whole
//! number of milliseconds, negative values, and numbers without a unit (but `0`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The units accepted: humantime's, less those shorter than a millisecond and
/// those of varying length (months, years).
const UNITS: [&str; 26] = [
    "ms", "msec", "millis", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute",
    "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w", "wk", "wks", "week",
    "weeks",
];

/// The text is not a duration jobq accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {text:?}: {reason}; expected numbers with units (ms, s, m, h, d, w), e.g. \"30s\" or \"1h 30m\""
)]
pub struct DurationError {
    text: String,
    reason: String,
}

/// Parses a duration: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`, and sums
/// and fractions such as `"1h 30m"` or `"1.5h"` (see the module docs for the
/// units).
///
/// ```
/// use std::time::Duration;
/// use jobq::duration::parse_duration;
/// assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
/// assert!(parse_duration("5").is_err());
/// assert!(parse_duration("5M").is_err());
/// ```
///
/// # Errors
/// [`DurationError`] naming the text (cut to 64 characters) and what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason: String| DurationError {
        text: text.chars().take(64).collect(),
        reason,
    };
    check_shape(text).map_err(fail)?;
    let d = humantime::parse_duration(text).map_err(|e| fail(reason(&e)))?;
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(fail("finer than a millisecond".into()));
    }
    if u64::try_from(d.as_millis()).is_err() {
        return Err(fail("too large".into()));
    }
    Ok(d)
}

/// What humantime leaves to us: only the units jobq accepts, and no number
/// split by spaces (humantime reads `"5 5s"` as 55 s).
fn check_shape(text: &str) -> Result<(), String> {
    let words = text.split(|c: char| !c.is_alphabetic());
    if let Some(unit) = words.filter(|w| !w.is_empty()).find(|w| !UNITS.contains(w)) {
        return Err(format!("unknown unit {unit:?}"));
    }
    let numeric = |c: char| c.is_ascii_digit() || c == '.';
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts
        .windows(2)
        .any(|w| w[0].ends_with(numeric) && w[1].starts_with(numeric))
    {
        return Err("a number without a unit".into());
    }
    Ok(())
}

/// humantime's error in jobq's words (its own names units jobq refuses).
fn reason(e: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match e {
        E::UnknownUnit { unit, .. } if unit.is_empty() => "a number without a unit",
        E::UnknownUnit { .. } => "unknown unit",
        E::NumberOverflow => "too large, or finer than a millisecond",
        E::Empty => "empty",
        E::InvalidCharacter(_) | E::NumberExpected(_) => "not a number and unit",
    }
    .into()
}

/// Shows a duration in the largest unit that divides it exactly ("90s", "5m",
/// "250ms", "31d"): one number and one unit, which [`parse_duration`] reads back.
/// (Kept rather than humantime's format, which splits days into months and
/// years of varying length: 31 days reads "1month 13h 26m 24s".)
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
            ("0", 0),
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("7d", 604_800_000),
            ("1h 30m", 5_400_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("1.5s", 1_500),
            ("90 seconds", 90_000),
            ("2days", 172_800_000),
            ("1w", 604_800_000),
            ("2 weeks 1 day", 15 * 86_400_000),
            (" 5s ", 5_000),
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
        let table = [
            ("", "empty"),
            ("5", "a number without a unit"),
            ("5 5s", "a number without a unit"),
            ("1. 5s", "a number without a unit"),
            ("s", "not a number and unit"),
            ("-1s", "not a number and unit"),
            ("5x", "unknown unit \"x\""),
            ("5sec5", "a number without a unit"),
            ("5M", "unknown unit \"M\""),
            ("1y", "unknown unit \"y\""),
            ("2 months", "unknown unit \"months\""),
            ("500us", "unknown unit \"us\""),
            ("1.5ms", "finer than a millisecond"),
            ("0.0001s", "finer than a millisecond"),
            ("99999999999999999d", "too large"),
            ("300000000000d", "too large"),
        ];
        for (text, why) in table {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid duration"), "{text}: {err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn formatting_picks_the_largest_exact_unit() {
        let table = [
            (250, "250ms"),
            (90_000, "90s"),
            (300_000, "5m"),
            (0, "0ms"),
            (31 * 86_400_000, "31d"),
        ];
        for (ms, want) in table {
            let text = format_duration(Duration::from_millis(ms));
            assert_eq!(text, want);
            assert_eq!(parse_duration(&text), Ok(Duration::from_millis(ms)));
        }
        assert_eq!(format_secs(Duration::from_millis(2000)), "2");
        assert_eq!(format_secs(Duration::from_millis(250)), "0.25");
    }
}
