//! How a job's id is stored in SQLite (schema version 8): the UUID's 16 bytes
//! as a BLOB, the primary key of a `WITHOUT ROWID` table. The public id (JSON,
//! HTTP, CLI) stays the UUID's hyphenated text; only this module converts.
//!
//! Blobs compare byte by byte, so the key orders jobs as the UUIDs do (UUID v7:
//! by creation time), and a range of ids is a range of the key.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::job::JobId;

/// A job id as bound to a statement: the UUID's 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key([u8; 16]);

impl ToSql for Key {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.0)))
    }
}

/// An empty blob: sorts before every stored id (blobs sort after text, and
/// byte by byte among themselves).
pub(crate) const BEFORE_ALL: [u8; 0] = [];

/// The stored form of `id`.
pub(crate) fn key(id: JobId) -> Key {
    Key(*id.as_uuid().as_bytes())
}

/// Reads a stored id: 16 bytes, or (a row written by hand or by a version
/// before 8 that the upgrade could not convert) a UUID in text. `None` when the
/// value is neither.
pub(crate) fn decode(v: ValueRef<'_>) -> Option<JobId> {
    match v {
        ValueRef::Blob(b) => Uuid::from_slice(b).ok().map(JobId::from_uuid),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.parse().ok(),
        _ => None,
    }
}

/// Reads column `i` of `row` as an id (an error when it is not one).
pub(crate) fn get(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<JobId> {
    let v = row.get_ref(i)?;
    decode(v).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            v.data_type(),
            "the stored job id is not a UUID".into(),
        )
    })
}

/// The SQL expression that turns a version-7 text id (column `id`) into its
/// stored form: the 16 bytes of a hyphenated UUID, or the text unchanged when it
/// is not one (it stays readable through [`decode`]'s fallback, or is shown as
/// unreadable, as before).
macro_rules! id_from_text {
    () => {
        "CASE WHEN typeof(id) = 'text' AND length(id) = 36 \
           AND substr(id, 9, 1) = '-' AND substr(id, 14, 1) = '-' \
           AND substr(id, 19, 1) = '-' AND substr(id, 24, 1) = '-' \
           AND length(unhex(replace(id, '-', ''))) = 16 \
         THEN unhex(replace(id, '-', '')) ELSE id END"
    };
}
pub(crate) use id_from_text;

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn the_key_is_the_uuid_bytes_and_reads_back() {
        let id = JobId::new();
        let conn = Connection::open_in_memory().unwrap();
        let (stored, kind): (Vec<u8>, String) = conn
            .query_row("SELECT ?1, typeof(?1)", [key(id)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kind, "blob");
        assert_eq!(stored, id.as_uuid().as_bytes().to_vec());
        let back = conn
            .query_row("SELECT ?1", [key(id)], |r| get(r, 0))
            .unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn the_upgrade_expression_converts_uuid_text_and_keeps_anything_else() {
        let conn = Connection::open_in_memory().unwrap();
        let id = JobId::new();
        let sql = concat!("SELECT ", id_from_text!(), " FROM (SELECT ?1 AS id)");
        let conv = |text: &str| -> rusqlite::types::Value {
            conn.query_row(sql, [text], |r| r.get(0)).unwrap()
        };
        assert_eq!(
            conv(&id.to_string()),
            rusqlite::types::Value::Blob(id.as_uuid().as_bytes().to_vec())
        );
        for kept in ["not-a-uuid", "0193a4f2-8c1e-7d3a-9b2f-5e6d7c8b9a0z", ""] {
            assert_eq!(conv(kept), rusqlite::types::Value::Text(kept.into()));
        }
        let upper = id.to_string().to_uppercase();
        let rusqlite::types::Value::Blob(b) = conv(&upper) else {
            panic!("upper-case text is converted too")
        };
        assert_eq!(decode(ValueRef::Blob(&b)), Some(id));
    }
}
