//! API tokens for the HTTP server: created with a secret shown once, stored as
//! a SHA-256 hash, listed without secrets, revoked with effect on the next lookup.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::queue::validate::MAX_REF_BYTES;
use crate::queue::Queue;
use crate::store::tokens;

/// The prefix of every token secret, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "jobq_";

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
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `presented` equals `expected`, compared in constant time (over their
/// SHA-256 digests, so the time does not depend on where they differ or on length).
pub fn secrets_match(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

fn check_user(user: &str) -> Result<()> {
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

impl Queue {
    /// Creates a token for `user` (an admin token when `admin`). Only the secret's
    /// SHA-256 is stored; the returned secret cannot be shown again.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty or over-long user name (more than 255 bytes,
    /// or with spaces or control characters); database errors.
    pub fn create_token(&self, user: &str, admin: bool) -> Result<CreatedToken> {
        check_user(user)?;
        let secret = new_secret();
        let hash = sha256_hex(&secret);
        let now = self.now();
        let id = self.inner.store.write("create token", |tx| {
            tokens::insert(tx, user, admin, &hash, now)
        })?;
        let token = ApiToken {
            id,
            user: user.to_string(),
            admin,
            created_at: now,
            revoked_at: None,
        };
        Ok(CreatedToken { token, secret })
    }

    /// Lists tokens, live and revoked, oldest first; only `user`'s when given.
    /// Never secrets or hashes.
    ///
    /// # Errors
    /// Database errors.
    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.inner
            .store
            .read("list tokens", |c| tokens::list(c, user))
    }

    /// Revokes the token `id`. Returns how many tokens were revoked: 0 when there
    /// is no live token with this id. Takes effect at the next authentication.
    ///
    /// # Errors
    /// Database errors.
    pub fn revoke_token(&self, id: i64) -> Result<usize> {
        let now = self.now();
        self.inner
            .store
            .write("revoke token", |tx| tokens::revoke_id(tx, id, now))
    }

    /// Revokes every live token of `user`. Returns how many were revoked.
    ///
    /// # Errors
    /// Database errors.
    pub fn revoke_user_tokens(&self, user: &str) -> Result<usize> {
        let now = self.now();
        self.inner
            .store
            .write("revoke token", |tx| tokens::revoke_user(tx, user, now))
    }

    /// Finds the live token whose secret is `secret` (looked up by its SHA-256, the
    /// hashes then compared in constant time). No caching: a revocation is seen at
    /// once. `None` for an unknown or revoked secret.
    ///
    /// # Errors
    /// Database errors.
    pub fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>> {
        let hash = sha256_hex(secret);
        let found = self
            .inner
            .store
            .read("authenticate token", |c| tokens::by_hash(c, &hash))?;
        Ok(found.and_then(|(token, stored)| {
            bool::from(stored.as_bytes().ct_eq(hash.as_bytes())).then_some(token)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (tempfile::TempDir, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path().join("t.db")).unwrap();
        (dir, q)
    }

    #[test]
    fn a_token_authenticates_until_revoked() -> Result<()> {
        let (_d, q) = queue();
        let made = q.create_token("alice", false)?;
        assert!(made.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(made.secret.len(), TOKEN_PREFIX.len() + 64);
        let who = q.authenticate(&made.secret)?.expect("live token");
        assert_eq!((who.user.as_str(), who.admin), ("alice", false));
        assert_eq!(q.authenticate("jobq_nope")?, None);
        assert_eq!(q.revoke_token(made.token.id)?, 1);
        assert_eq!(q.revoke_token(made.token.id)?, 0);
        assert_eq!(q.authenticate(&made.secret)?, None);
        Ok(())
    }

    #[test]
    fn only_the_hash_is_stored_and_lists_show_no_secret() -> Result<()> {
        let (_d, q) = queue();
        let a = q.create_token("alice", true)?;
        let b = q.create_token("bob", false)?;
        assert_ne!(a.secret, b.secret);
        let conn = rusqlite::Connection::open(q.path()).unwrap();
        let stored: Vec<String> = conn
            .prepare("SELECT token_hash FROM api_tokens ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(stored, vec![sha256_hex(&a.secret), sha256_hex(&b.secret)]);
        let listed = q.list_tokens(None)?;
        assert_eq!(listed, vec![a.token.clone(), b.token.clone()]);
        let json = serde_json::to_string(&listed).unwrap();
        assert!(!json.contains(&a.secret[5..]) && !json.contains(&stored[0]));
        assert_eq!(q.revoke_user_tokens("alice")?, 1);
        assert!(q.list_tokens(Some("alice"))?[0].revoked());
        Ok(())
    }

    #[test]
    fn bad_user_names_are_refused() {
        let (_d, q) = queue();
        for bad in ["", "a b", "x\n", &"u".repeat(256)] {
            assert!(matches!(
                q.create_token(bad, false),
                Err(Error::Invalid { field: "user", .. })
            ));
        }
    }

    #[test]
    fn secrets_match_compares_whole_values() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cret", "s3cre"));
        assert!(!secrets_match("", "s3cret"));
    }
}
