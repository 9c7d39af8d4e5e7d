//! A failed attempt as the store records it, and the cleaning of error text
//! (cut to 4 KiB on a character boundary, secrets redacted).

use std::time::Duration;

use crate::retry::{classify, ErrorClass};

/// The longest error message stored, in bytes.
pub const MAX_ERROR_BYTES: usize = 4096;

/// How an attempt failed, ready for [`crate::Queue::fail`].
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The error text, already cleaned by [`Failure::new`].
    pub message: String,
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// An exact delay before the next attempt, replacing the backoff schedule.
    pub retry_after: Option<Duration>,
    /// True when the handler gave up because the job was cancelled.
    pub cancelled: bool,
    /// How long the attempt ran, in ms.
    pub duration_ms: u64,
}

impl Failure {
    /// A failure of the given class; the text is cleaned.
    pub fn new(message: &str, class: ErrorClass) -> Failure {
        Failure {
            message: clean_error_text(message),
            class,
            retry_after: None,
            cancelled: false,
            duration_ms: 0,
        }
    }

    /// A failure whose class comes from [`classify`] of the text.
    pub fn classified(message: &str) -> Failure {
        Failure::new(message, classify(message))
    }

    /// Sets how long the attempt ran.
    pub fn with_duration(mut self, d: Duration) -> Failure {
        self.duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// Redacts secrets and cuts the text to [`MAX_ERROR_BYTES`] on a UTF-8 boundary;
/// a NUL character becomes U+FFFD (PostgreSQL's text cannot hold NUL, and
/// both backends store the same text).
///
/// Redacted: the word after `Bearer ` or `Basic `, and the value after
/// `password=`, `passwd=`, `secret=`, `token=`, `api_key=`, `apikey=`
/// (and the same with `:`), and the rest of an `Authorization:` line,
/// case-insensitively; each becomes `[redacted]`.
pub fn clean_error_text(text: &str) -> String {
    // Cut generously first so redaction never scans megabytes.
    let head = cut_to(text, MAX_ERROR_BYTES * 4);
    let redacted = redact(head);
    let cut = cut_to(&redacted, MAX_ERROR_BYTES);
    if cut.contains('\0') {
        cut.replace('\0', "\u{FFFD}")
    } else {
        cut.to_string()
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
pub fn cut_to(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What is left of `text` once its front was cut at an arbitrary byte (a tail
/// kept from a long stream): the partial first line is dropped, since it may be
/// the middle of a secret whose key (`Bearer `, `password=`) was cut off and
/// that redaction would then miss. When the text is one line, the partial first
/// word is dropped, and the whole line when that word may end in a secret's key.
pub fn drop_cut_front(text: &str) -> &str {
    if let Some(i) = text.find('\n') {
        if !text[i + 1..].trim().is_empty() {
            return &text[i + 1..];
        }
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let piece = text[..end].to_ascii_lowercase();
    let may_hold_key = SECRET_KEYS
        .iter()
        .map(|k| k.trim_end())
        .any(|k| piece.ends_with(k) || (!piece.is_empty() && k.ends_with(piece.as_str())));
    if may_hold_key {
        ""
    } else {
        &text[end..]
    }
}

const SECRET_KEYS: &[&str] = &[
    "bearer ",
    "basic ",
    "password=",
    "password:",
    "passwd=",
    "secret=",
    "secret:",
    "token=",
    "token:",
    "api_key=",
    "apikey=",
    "api-key:",
    "authorization:",
];

fn redact(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let key = SECRET_KEYS.iter().find(|k| lower[i..].starts_with(*k));
        match key {
            Some(k) => {
                let start = i + k.len();
                let value_start = start + leading_spaces(&text[start..]);
                let rest = &text[value_start..];
                let len = if *k == "authorization:" {
                    rest.find('\n').unwrap_or(rest.len())
                } else {
                    secret_len(rest)
                };
                let end = value_start + len;
                out.push_str(&text[i..value_start]);
                if end > value_start {
                    out.push_str("[redacted]");
                }
                i = end.max(i + k.len());
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn leading_spaces(s: &str) -> usize {
    s.len() - s.trim_start_matches(' ').len()
}

fn secret_len(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | '"' | '\'' | ')'))
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let cases = [
            (
                "auth failed: Bearer abc.def-123 rejected",
                "auth failed: Bearer [redacted] rejected",
            ),
            (
                "url?user=a&password=hunter2&x=1",
                "url?user=a&password=[redacted]&x=1",
            ),
            ("TOKEN=s3cr3t", "TOKEN=[redacted]"),
            (
                "Authorization: Basic dXNlcjpwYXNz",
                "Authorization: [redacted]",
            ),
            ("no secrets here", "no secrets here"),
            (
                "ünïcödé password=🔑🔑 end",
                "ünïcödé password=[redacted] end",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(clean_error_text(input), want, "{input:?}");
        }
    }

    #[test]
    fn a_nul_character_becomes_the_replacement_character() {
        assert_eq!(clean_error_text("bad\0thing\0"), "bad\u{FFFD}thing\u{FFFD}");
        assert_eq!(
            Failure::new("a\0b", ErrorClass::Permanent).message,
            "a\u{FFFD}b"
        );
    }

    #[test]
    fn a_cut_front_never_leaves_a_secret_without_its_key() {
        let cases = [
            ("ken-part-2 rejected", " rejected"),
            ("rer sk_123 rejected", ""),
            ("ssword: hunter2", ""),
            ("x;Authorization: Bearer abc", ""),
            ("word=hunter2&x=1 then more", " then more"),
            ("partial line Bearer\nnext line\n", "next line\n"),
            ("whole line\n", " line\n"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(drop_cut_front(input), want, "{input:?}");
        }
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let text = "é".repeat(1_000_000);
        let cleaned = clean_error_text(&text);
        assert!(cleaned.len() <= MAX_ERROR_BYTES);
        assert!(cleaned.len() >= MAX_ERROR_BYTES - 1);
        assert!(cleaned.chars().all(|c| c == 'é'));
    }
}
