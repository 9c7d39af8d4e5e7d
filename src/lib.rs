//! jobq: a durable background-job queue in one SQLite file.
//!
//! Jobs are rows; every state change is one short transaction; a crashed
//! worker's jobs come back when their lease expires. See README.md for the job,
//! its states, the retry schedule and the error classification.
//!
//! ```
//! use jobq::{NewJob, Queue, JobStatus};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), jobq::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let queue = Queue::open(dir.path().join("jobq.db"))?;
//! let job = queue.enqueue(NewJob::new("send_email", json!({"to": "a@example.com"})))?;
//!
//! let claimed = queue.claim("worker-1", None, 10, Duration::from_secs(300))?;
//! assert_eq!(claimed[0].id, job.id);
//! queue.complete(job.id, claimed[0].lease_token, &json!({"sent": true}))?;
//! assert_eq!(queue.get(job.id)?.status, JobStatus::Completed);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod catalog;
pub mod clock;
pub mod duration;
mod error;
pub mod failure;
mod filter;
pub mod http;
mod id_prefix;
mod job;
mod job_id;
mod location;
pub mod metrics;
mod new_job;
mod overview;
mod queue;
mod queues;
pub mod retry;
mod schedule;
pub mod state;
mod stats;
mod status;
mod store;
mod token;
mod transfer;
mod unique;
pub mod worker;
mod workers;

#[cfg(test)]
mod layers;

pub use catalog::{Catalog, JobType};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{Error, Result};
pub use failure::Failure;
pub use filter::{JobFilter, JobPage};
pub use id_prefix::{IdPrefix, MAX_LISTED_MATCHES, MIN_ID_PREFIX};
pub use job::{HeldKey, Job, JobId, JobStatus, ParseJobIdError, ParseStatusError, StatusSet};
pub use location::{redact_url, Location};
pub use metrics::Metrics;
pub use new_job::{validate_job_type, NewJob, MAX_ATTEMPTS, MAX_DELAY_S, MAX_REF_BYTES};
pub use overview::{
    BulkAction, CappedStatusCounts, Count, GroupCounts, Minute, Overview, OverviewQuery,
};
#[doc(hidden)]
pub use queue::{postgres_overview_statements, postgres_schema_to, PrefetchRound};
pub use queue::{
    MigrateProgress, Queue, QueueOptions, COUNT_CAP, DEFAULT_MAX_PAYLOAD_BYTES, MAX_PAGE,
};
pub use queues::{
    validate_queue_name, LimitsChange, QueueInfo, QueueSpec, RateLimit, DEFAULT_QUEUE,
    MAX_CONCURRENCY,
};
pub use retry::{classify, Backoff, EmptyBackoff, ErrorClass};
pub use schedule::{Misfire, Schedule, ScheduleInfo, SKIP_GRACE};
pub use stats::{PendingCounts, Stats, StatusCounts, Waiting};
pub use store::Durability;
pub use token::{ApiToken, CreatedToken};
pub use transfer::{Census, MigrateOptions, MigrateStep, Migrated};
pub use unique::{canonical, Enqueued, Unique};
pub use worker::{
    run_due, run_due_until, Handler, HandlerResult, JobContext, JobError, PoolCounts, Registry,
    RunSummary, StopFlag, StopReason, WorkerConfig, WorkerPool, MAX_PREFETCH, MAX_WORKERS,
    PREFETCH_TTL,
};
pub use workers::{WorkerInfo, WORKER_BEAT, WORKER_STALE};
