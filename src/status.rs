//! A job's status: the five names, and sets of them.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a job is in its life. The allowed moves between these are in
/// [`crate::state`]; `schema.sql` repeats the values in a CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(description = "Where a job is in its life (see README, \"States\").")]
pub enum JobStatus {
    /// Waiting to run: due when `next_retry <= now`.
    Pending,
    /// Claimed by a worker that holds its lease.
    InProgress,
    /// Ran successfully; `result` holds what the handler returned. Final.
    Completed,
    /// Failed permanently or used up its attempts. Final until a manual retry.
    Failed,
    /// Cancelled before or while running. Final until a manual retry.
    Cancelled,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::InProgress,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The stored and JSON name: `pending`, `in_progress`, `completed`, `failed`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// True for `completed`, `failed` and `cancelled`: no worker will touch the job again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the five status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?} (expected pending, in_progress, completed, failed or cancelled)")]
pub struct ParseStatusError(String);

impl FromStr for JobStatus {
    type Err = ParseStatusError;

    /// # Errors
    /// [`ParseStatusError`] for anything but the five names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStatusError(s.chars().take(64).collect()))
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A set of job statuses, stored as a bitmask (bit `i` is `JobStatus::ALL[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusSet(u8);

impl StatusSet {
    /// `pending` and `in_progress`: the statuses every unique rule includes.
    pub const LIVE: StatusSet = StatusSet(0b11);
    /// Every status: a key once used is never used again.
    pub const ALL: StatusSet = StatusSet(0b1_1111);

    fn bit(s: JobStatus) -> u8 {
        let i = JobStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
        1 << i
    }

    /// The set of `statuses`, always with `pending` and `in_progress`.
    pub fn live_and(statuses: &[JobStatus]) -> StatusSet {
        StatusSet(
            statuses
                .iter()
                .fold(StatusSet::LIVE.0, |m, s| m | StatusSet::bit(*s)),
        )
    }

    /// True when `s` is in the set.
    pub fn contains(self, s: JobStatus) -> bool {
        self.0 & StatusSet::bit(s) != 0
    }

    /// The statuses in the set, in life order.
    pub fn statuses(self) -> Vec<JobStatus> {
        JobStatus::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .collect()
    }

    /// The stored bitmask: bit `i` is `JobStatus::ALL[i]`.
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    /// A set read back from its bitmask (unknown bits dropped).
    pub fn from_bits(bits: i64) -> StatusSet {
        StatusSet(u8::try_from(bits & 0b1_1111).unwrap_or(0))
    }
}

/// In the OpenAPI document: the list of status names.
impl utoipa::PartialSchema for StatusSet {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{schema::ArrayBuilder, Ref};
        ArrayBuilder::new()
            .items(Ref::from_schema_name("JobStatus"))
            .into()
    }
}

impl utoipa::ToSchema for StatusSet {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((JobStatus::name().into(), JobStatus::schema()));
    }
}

impl Serialize for StatusSet {
    /// As the list of status names.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.statuses().serialize(s)
    }
}

impl<'de> Deserialize<'de> for StatusSet {
    /// From a list of status names; `pending` and `in_progress` are always added.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StatusSet::live_and(&Vec::<JobStatus>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for st in JobStatus::ALL {
            assert_eq!(st.as_str().parse::<JobStatus>().unwrap(), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert!("running".parse::<JobStatus>().is_err());
    }
}
