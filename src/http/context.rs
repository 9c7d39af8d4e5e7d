//! What every endpoint shares: the queue, the handlers the cron endpoint runs,
//! and the settings the API was started with.

use std::sync::Arc;

use crate::worker::{Registry, WorkerConfig};
use crate::{NewJob, Queue};

/// The endpoints' shared state.
pub(crate) struct Ctx {
    pub queue: Queue,
    pub registry: Registry,
    pub worker: WorkerConfig,
    /// The job types the API accepts, sorted.
    pub job_types: Vec<String>,
    pub cron_secret: Option<String>,
    pub job_defaults: Option<JobDefaults>,
}

/// A function that fills defaults into a job before it is enqueued, e.g. the
/// `priority` and `max_attempts` a config declares for its type.
#[derive(Clone)]
pub struct JobDefaults(Arc<dyn Fn(&mut NewJob) + Send + Sync>);

impl JobDefaults {
    /// Wraps `f`; it should only fill fields the request left out.
    pub fn new(f: impl Fn(&mut NewJob) + Send + Sync + 'static) -> JobDefaults {
        JobDefaults(Arc::new(f))
    }

    /// Applies the defaults to `job`.
    pub fn apply(&self, job: &mut NewJob) {
        (self.0)(job);
    }
}

impl std::fmt::Debug for JobDefaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobDefaults(..)")
    }
}
