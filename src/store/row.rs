//! The job columns and the mapping of a row to a [`Job`].

use rusqlite::types::{FromSqlError, Type};
use rusqlite::Row;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::job::Job;

/// Every job column, in the order [`job_from_row`] reads them.
macro_rules! job_columns {
    () => {
        "id, job_type, status, priority, payload, result, attempts, max_attempts, next_retry, \
         error_message, error_context, entity_type, entity_id, owner, created_at, updated_at, \
         started_at, completed_at, locked_by, lease_expires_at, lease_token, cancel_requested, \
         progress"
    };
}
pub(crate) use job_columns;

fn json(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(i)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
    })
    .transpose()
}

fn ts(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp))
}

fn count(row: &Row<'_>, i: usize) -> rusqlite::Result<u32> {
    let n: i64 = row.get(i)?;
    u32::try_from(n).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            Type::Integer,
            Box::new(FromSqlError::OutOfRange(n)),
        )
    })
}

/// Reads a row selected with [`job_columns!`].
pub(crate) fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: row.get(0)?,
        job_type: row.get(1)?,
        status: row.get(2)?,
        priority: row.get(3)?,
        payload: json(row, 4)?.unwrap_or(Value::Null),
        result: json(row, 5)?,
        attempts: count(row, 6)?,
        max_attempts: count(row, 7)?,
        next_retry: Timestamp(row.get(8)?),
        error_message: row.get(9)?,
        error_context: json(row, 10)?,
        entity_type: row.get(11)?,
        entity_id: row.get(12)?,
        owner: row.get(13)?,
        created_at: Timestamp(row.get(14)?),
        updated_at: Timestamp(row.get(15)?),
        started_at: ts(row, 16)?,
        completed_at: ts(row, 17)?,
        locked_by: row.get(18)?,
        lease_expires_at: ts(row, 19)?,
        lease_token: row.get(20)?,
        cancel_requested: row.get::<_, i64>(21)? != 0,
        progress: json(row, 22)?,
    })
}
