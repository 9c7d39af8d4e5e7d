//! API tokens: insert, list, revoke, look up by hash (only SHA-256 hashes are stored).

use postgres::Row;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::postgres::conn::Conn;
use crate::token::ApiToken;

const INSERT: &str = "INSERT INTO jobq.api_tokens (\"user\", is_admin, token_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id";

const LIST: &str = "SELECT id, \"user\", is_admin, created_at, revoked_at FROM jobq.api_tokens \
     WHERE ($1::text IS NULL OR \"user\" = $1) ORDER BY id";

const REVOKE_ID: &str =
    "UPDATE jobq.api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";

const REVOKE_USER: &str =
    "UPDATE jobq.api_tokens SET revoked_at = $1 WHERE \"user\" = $2 AND revoked_at IS NULL";

const BY_HASH: &str = "SELECT id, \"user\", is_admin, created_at, revoked_at, token_hash \
     FROM jobq.api_tokens WHERE token_hash = $1 AND revoked_at IS NULL";

fn token_from_row(r: &Row) -> ApiToken {
    ApiToken {
        id: r.get(0),
        user: r.get(1),
        admin: r.get(2),
        created_at: Timestamp(r.get(3)),
        revoked_at: r.get::<_, Option<i64>>(4).map(Timestamp),
    }
}

/// Stores a new token's hash; returns its id.
pub(crate) fn insert(
    c: &mut Conn,
    user: &str,
    admin: bool,
    hash: &str,
    now: Timestamp,
) -> Result<i64> {
    let row = c.query("create token", INSERT, &[&user, &admin, &hash, &now.0])?;
    Ok(row.first().map_or(0, |r| r.get(0)))
}

/// Every token (of `user`), oldest first.
pub(crate) fn list(c: &mut Conn, user: Option<&str>) -> Result<Vec<ApiToken>> {
    let rows = c.query("list tokens", LIST, &[&user])?;
    Ok(rows.iter().map(token_from_row).collect())
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Revokes the live token `id`; returns how many (0 or 1).
pub(crate) fn revoke_id(c: &mut Conn, id: i64, now: Timestamp) -> Result<usize> {
    c.execute("revoke token", REVOKE_ID, &[&now.0, &id])
        .map(count)
}

/// Revokes every live token of `user`; returns how many.
pub(crate) fn revoke_user(c: &mut Conn, user: &str, now: Timestamp) -> Result<usize> {
    c.execute("revoke token", REVOKE_USER, &[&now.0, &user])
        .map(count)
}

/// The live token whose hash is `hash`, with its stored hash.
pub(crate) fn by_hash(c: &mut Conn, hash: &str) -> Result<Option<(ApiToken, String)>> {
    let row = c.opt("authenticate token", BY_HASH, &[&hash])?;
    Ok(row.map(|r| (token_from_row(&r), r.get(5))))
}
