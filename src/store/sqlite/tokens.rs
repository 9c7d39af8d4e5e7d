//! API tokens: insert, list, revoke, and look up by hash. Only the SHA-256 of a
//! token is ever stored (hex, lower case).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::token::ApiToken;

const INSERT: &str =
    "INSERT INTO api_tokens (user, is_admin, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)";

const LIST: &str = "SELECT id, user, is_admin, created_at, revoked_at FROM api_tokens \
     WHERE (?1 IS NULL OR user = ?1) ORDER BY id";

const REVOKE_ID: &str =
    "UPDATE api_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL";

const REVOKE_USER: &str =
    "UPDATE api_tokens SET revoked_at = ?1 WHERE user = ?2 AND revoked_at IS NULL";

const BY_HASH: &str = "SELECT id, user, is_admin, created_at, revoked_at, token_hash \
     FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL";

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        user: r.get(1)?,
        admin: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
        revoked_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
    })
}

/// Stores a new token's hash. Returns the new token's id.
pub(crate) fn insert(
    conn: &Connection,
    user: &str,
    admin: bool,
    hash_hex: &str,
    now: Timestamp,
) -> Result<i64> {
    let mut stmt = conn
        .prepare_cached(INSERT)
        .map_err(Error::db("create token"))?;
    stmt.execute(params![user, admin, hash_hex, now.0])
        .map_err(Error::db("create token"))?;
    Ok(conn.last_insert_rowid())
}

/// Every token (of `user`, when given), oldest first.
pub(crate) fn list(conn: &Connection, user: Option<&str>) -> Result<Vec<ApiToken>> {
    let mut stmt = conn
        .prepare_cached(LIST)
        .map_err(Error::db("list tokens"))?;
    let rows = stmt
        .query_map(params![user], token_from_row)
        .map_err(Error::db("list tokens"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("list tokens"))
}

/// Revokes the live token `id`. Returns how many were revoked (0 or 1).
pub(crate) fn revoke_id(conn: &Connection, id: i64, now: Timestamp) -> Result<usize> {
    let mut stmt = conn
        .prepare_cached(REVOKE_ID)
        .map_err(Error::db("revoke token"))?;
    stmt.execute(params![now.0, id])
        .map_err(Error::db("revoke token"))
}

/// Revokes every live token of `user`. Returns how many were revoked.
pub(crate) fn revoke_user(conn: &Connection, user: &str, now: Timestamp) -> Result<usize> {
    let mut stmt = conn
        .prepare_cached(REVOKE_USER)
        .map_err(Error::db("revoke token"))?;
    stmt.execute(params![now.0, user])
        .map_err(Error::db("revoke token"))
}

/// The live token whose hash is `hash_hex`, with its stored hash.
pub(crate) fn by_hash(conn: &Connection, hash_hex: &str) -> Result<Option<(ApiToken, String)>> {
    let mut stmt = conn
        .prepare_cached(BY_HASH)
        .map_err(Error::db("authenticate token"))?;
    stmt.query_row(params![hash_hex], |r| Ok((token_from_row(r)?, r.get(5)?)))
        .optional()
        .map_err(Error::db("authenticate token"))
}
