//! Listing jobs: the filter, the page, and the keyset cursor between pages.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};

/// Which jobs [`crate::Queue::list`] returns. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this type.
    pub job_type: Option<String>,
    /// Only jobs of this queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// Only jobs on this kind of entity.
    pub entity_type: Option<String>,
    /// Only jobs on this entity id.
    pub entity_id: Option<String>,
    /// Only jobs of this owner.
    pub owner: Option<String>,
}

impl JobFilter {
    /// Checks the filter as enqueue checks the same fields: `job_type` and
    /// `queue` must be valid names, and `entity_type`, `entity_id` and
    /// `owner` 1-255 bytes without NUL (a filter that could match nothing is
    /// refused, not answered empty).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = &self.job_type {
            crate::new_job::validate_job_type(t)?;
        }
        if let Some(q) = &self.queue {
            crate::queues::validate_queue_name(q)?;
        }
        crate::new_job::check_ref("entity_type", self.entity_type.as_deref())?;
        crate::new_job::check_ref("entity_id", self.entity_id.as_deref())?;
        crate::new_job::check_ref("owner", self.owner.as_deref())?;
        Ok(())
    }
}

/// A position in a newest-first listing: `"<created_at ms>.<id>"`, opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub created_at: i64,
    pub id: JobId,
}

impl Cursor {
    /// The position just after `job` in a newest-first listing.
    pub(crate) fn after(job: &Job) -> Cursor {
        Cursor {
            created_at: job.created_at.0,
            id: job.id,
        }
    }

    pub(crate) fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub(crate) fn decode(text: &str) -> Result<Cursor> {
        let bad = || Error::Invalid {
            field: "cursor",
            reason: "not a cursor returned by a previous page".into(),
        };
        let (ms, id) = text.split_once('.').ok_or_else(bad)?;
        // Digits only, 1-18 of them, as encode writes (and as the OpenAPI
        // pattern says): i64's parser also takes a sign.
        if ms.is_empty() || ms.len() > 18 || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Cursor {
            created_at: ms.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of jobs from [`crate::Queue::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(description = "A page of jobs, newest first.")]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// How many jobs match the filter in all.
    pub total: u64,
}
