//! What every endpoint shares: the queue, the handlers the cron endpoint runs,
//! and the settings the API was started with.

use crate::http::session::Sessions;
use crate::worker::{Registry, WorkerConfig};
use crate::Queue;

/// The endpoints' shared state.
pub(crate) struct Ctx {
    pub queue: Queue,
    pub registry: Registry,
    pub worker: WorkerConfig,
    /// The job types the queue's catalogue declares, when only those are
    /// accepted (for the OpenAPI document's enum); empty otherwise.
    pub job_types: Vec<String>,
    pub cron_secret: Option<String>,
    /// A bearer token that may read `/metrics` (besides admin tokens).
    pub metrics_token: Option<String>,
    /// The dashboard's signed-in sessions.
    pub sessions: Sessions,
    /// Set when the server shuts down: a cron call in flight claims no
    /// further job.
    pub stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
}
