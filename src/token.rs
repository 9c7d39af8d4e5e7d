//! API tokens for the HTTP server: who a token speaks for, and its secret,
//! which is shown once and stored only as a SHA-256 hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::new_job::MAX_REF_BYTES;

/// The prefix of every token secret (`jobq_`), so a leaked one is easy to recognise.
pub(crate) const TOKEN_PREFIX: &str = "jobq_";

/// A stored API token: who it speaks for, never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The token's id (for `revoke`).
    pub id: i64,
    /// The user the token speaks for; jobs it enqueues get this `owner`.
    pub user: String,
    /// True when the token may use the admin endpoints.
    pub admin: bool,
    /// When the token was created.
    pub created_at: Timestamp,
    /// When the token was revoked; null while it is live.
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    /// True once the token has been revoked.
    pub fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A newly created token: its record and its secret, which is shown only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedToken {
    /// The stored record.
    pub token: ApiToken,
    /// The secret to present as `Authorization: Bearer <secret>`: `jobq_` and 64
    /// hex digits (32 bytes, 244 of them random). Not stored anywhere.
    pub secret: String,
}

/// The lower-case hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `presented` equals `expected`, compared in constant time (over their
/// SHA-256 digests, so the time does not depend on where they differ or on length).
pub(crate) fn secrets_match(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

pub(crate) fn check_user(user: &str) -> Result<()> {
    let ok = !user.is_empty()
        && user.len() <= MAX_REF_BYTES
        && !user.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        return Ok(());
    }
    Err(Error::Invalid {
        field: "user",
        reason: format!("must be 1-{MAX_REF_BYTES} bytes without spaces or control characters"),
    })
}

/// True when the stored hash `stored` is the hash of the presented secret's
/// hash `hash`, compared in constant time.
pub(crate) fn hashes_match(stored: &str, hash: &str) -> bool {
    bool::from(stored.as_bytes().ct_eq(hash.as_bytes()))
}
