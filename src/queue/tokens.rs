//! API tokens for the HTTP server: created with a secret shown once, stored as
//! a SHA-256 hash, listed without secrets, revoked with effect on the next lookup.

use crate::error::Result;
use crate::queue::Queue;
use crate::token::{check_user, hashes_match, new_secret, sha256_hex, ApiToken, CreatedToken};

impl Queue {
    /// Creates a token for `user` (an admin token when `admin`). Only the secret's
    /// SHA-256 is stored; the returned secret cannot be shown again.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for an empty or over-long user name (more than 255 bytes,
    /// or with spaces or control characters); database errors.
    pub fn create_token(&self, user: &str, admin: bool) -> Result<CreatedToken> {
        check_user(user)?;
        let secret = new_secret();
        let hash = sha256_hex(&secret);
        let now = self.now();
        let id = self.backend().insert_token(user, admin, &hash, now)?;
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
        self.backend().list_tokens(user)
    }

    /// Revokes the token `id`. Returns how many tokens were revoked: 0 when there
    /// is no live token with this id. Takes effect at the next authentication.
    ///
    /// # Errors
    /// Database errors.
    pub fn revoke_token(&self, id: i64) -> Result<usize> {
        let now = self.now();
        self.backend().revoke_token(id, now)
    }

    /// Revokes every live token of `user`. Returns how many were revoked.
    ///
    /// # Errors
    /// Database errors.
    pub fn revoke_user_tokens(&self, user: &str) -> Result<usize> {
        let now = self.now();
        self.backend().revoke_user_tokens(user, now)
    }

    /// Finds the live token whose secret is `secret` (looked up by its SHA-256, the
    /// hashes then compared in constant time). No caching: a revocation is seen at
    /// once. `None` for an unknown or revoked secret.
    ///
    /// # Errors
    /// Database errors.
    pub fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>> {
        let hash = sha256_hex(secret);
        let found = self.backend().token_by_hash(&hash)?;
        Ok(found.and_then(|(token, stored)| hashes_match(&stored, &hash).then_some(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::token::{secrets_match, TOKEN_PREFIX};

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
        let conn = rusqlite::Connection::open(q.path().unwrap()).unwrap();
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
