//! Short job ids: the start of a job id's text, as git abbreviates commits.
//!
//! A prefix names every job whose id's hyphenated lower-case text starts with
//! it; [`crate::Queue::resolve_id`] turns a prefix that names exactly one job
//! into its id, and [`crate::Queue::short_id`] finds the shortest prefix that
//! names only one job. Job ids are UUID v7, whose first 12 hex digits are the
//! enqueue time in milliseconds: jobs enqueued within the same minute share
//! their first 8 digits, so a unique prefix is often longer than the minimum.

use std::str::FromStr;

use uuid::Uuid;

use crate::error::Error;
use crate::job::JobId;

/// The fewest hex digits a job id prefix may have.
pub const MIN_ID_PREFIX: usize = 8;

/// The most matching ids [`Error::AmbiguousId`] lists.
pub const MAX_LISTED_MATCHES: usize = 10;

/// Hex digits in a job id.
const DIGITS: usize = 32;

/// Where the hyphenated text form has its hyphens.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// A job id as a user typed it: a whole id, or the start of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdPrefix {
    /// A whole id, in any of the UUID text forms: used as is.
    Full(JobId),
    /// The first 8-31 hex digits of an id, lower case, without hyphens.
    Digits(String),
}

impl FromStr for IdPrefix {
    type Err = Error;

    /// Parses a whole job id (any UUID text form) or a prefix of at least
    /// [`MIN_ID_PREFIX`] hex digits, either without hyphens or with them where
    /// the hyphenated form has them (`0193a4f2-8c1e`). Case does not matter.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `id`) for anything else.
    fn from_str(text: &str) -> Result<IdPrefix, Error> {
        if let Ok(id) = text.parse::<JobId>() {
            return Ok(IdPrefix::Full(id));
        }
        let invalid = |reason: String| Error::Invalid {
            field: "id",
            reason,
        };
        let shown: String = text.chars().take(40).collect();
        if !well_formed(text) {
            return Err(invalid(format!(
                "{shown:?} is not a job id or the start of one (hex digits, hyphens as in the id)"
            )));
        }
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        if digits.len() < MIN_ID_PREFIX {
            return Err(invalid(format!(
                "{shown:?} is not a job id or the start of one: too short, give at least {MIN_ID_PREFIX} hex digits"
            )));
        }
        Ok(IdPrefix::Digits(digits.to_ascii_lowercase()))
    }
}

/// Hex digits only, or hex digits with hyphens exactly where the hyphenated
/// form has them (a trailing hyphen included); at most 32 digits.
fn well_formed(text: &str) -> bool {
    let hyphenated = text.contains('-');
    let digit_count = text.chars().filter(|c| *c != '-').count();
    digit_count <= DIGITS
        && text.char_indices().all(|(i, c)| match c {
            '-' => HYPHENS.contains(&i),
            _ => c.is_ascii_hexdigit() && !(hyphenated && HYPHENS.contains(&i)),
        })
}

impl IdPrefix {
    /// The lowest and the highest id starting with this prefix (equal for a
    /// whole id). In both the UUIDs' byte order and their text order every id
    /// starting with the prefix lies between the two, and no other id does.
    pub fn bounds(&self) -> (JobId, JobId) {
        match self {
            IdPrefix::Full(id) => (*id, *id),
            IdPrefix::Digits(d) => (padded(d, '0'), padded(d, 'f')),
        }
    }

    /// The prefix as the start of the hyphenated text form, e.g. `0193a4f2-8c`.
    pub fn text(&self) -> String {
        match self {
            IdPrefix::Full(id) => id.to_string(),
            IdPrefix::Digits(d) => hyphenate(d),
        }
    }
}

/// `digits` filled up to a whole id with `fill`.
fn padded(digits: &str, fill: char) -> JobId {
    let mut all = digits.to_string();
    all.extend(std::iter::repeat_n(fill, DIGITS - digits.len()));
    let n = u128::from_str_radix(&all, 16).unwrap_or(0);
    JobId::from_uuid(Uuid::from_u128(n))
}

/// Hex digits with hyphens where the hyphenated form has them.
fn hyphenate(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + 4);
    for (i, c) in digits.chars().enumerate() {
        if [8, 12, 16, 20].contains(&i) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// The first `digits` hex digits of `id` (at least [`MIN_ID_PREFIX`], at most
/// 32), in the hyphenated text form: a prefix of `id.to_string()`.
pub(crate) fn id_prefix(id: JobId, digits: usize) -> String {
    let all = id.as_uuid().simple().to_string();
    hyphenate(&all[..digits.clamp(MIN_ID_PREFIX, DIGITS)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> JobId {
        text.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_with_or_without_hyphens() {
        let digits = |t: &str| match t.parse::<IdPrefix>() {
            Ok(IdPrefix::Digits(d)) => d,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(digits("0193A4F2"), "0193a4f2");
        assert_eq!(digits("0193a4f2-"), "0193a4f2");
        assert_eq!(digits("0193a4f2-8c1e-7"), "0193a4f28c1e7");
        assert_eq!(digits("0193a4f28c1e7"), "0193a4f28c1e7");
    }

    #[test]
    fn a_whole_id_is_used_as_is() {
        let whole = "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01";
        assert_eq!(
            whole.parse::<IdPrefix>().ok(),
            Some(IdPrefix::Full(id(whole)))
        );
        let simple = "0193a4f28c1e7d3a9b2f5e6d7c8b9a01";
        assert_eq!(
            simple.parse::<IdPrefix>().ok(),
            Some(IdPrefix::Full(id(whole)))
        );
    }

    #[test]
    fn bad_prefixes_are_refused_naming_the_field() {
        for bad in [
            "0193a4f",
            "",
            "0193a4fz",
            "0193-a4f2",
            "0193a4f28-c1e",
            "0193a4f2--",
        ] {
            match bad.parse::<IdPrefix>() {
                Err(Error::Invalid { field: "id", .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bounds_enclose_exactly_the_ids_with_the_prefix() {
        let p: IdPrefix = "0193a4f2-8c".parse().unwrap();
        let (low, high) = p.bounds();
        assert_eq!(low, id("0193a4f2-8c00-0000-0000-000000000000"));
        assert_eq!(high, id("0193a4f2-8cff-ffff-ffff-ffffffffffff"));
        assert_eq!(p.text(), "0193a4f2-8c");
    }

    #[test]
    fn id_prefix_is_the_start_of_the_text_form() {
        let whole = id("0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a01");
        assert_eq!(id_prefix(whole, 8), "0193a4f2");
        assert_eq!(id_prefix(whole, 13), "0193a4f2-8c1e-7");
        assert_eq!(id_prefix(whole, 3), "0193a4f2");
        assert_eq!(id_prefix(whole, 40), whole.to_string());
    }
}
