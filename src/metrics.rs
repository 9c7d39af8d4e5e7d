//! Prometheus metrics of one process ([`Metrics`], shared by a [`crate::Queue`]
//! and its clones): counters and histograms recorded as jobs settle (they
//! reset with the process), and gauges read from the database at scrape time,
//! cached for a moment so frequent scrapes cost little.
//!
//! Labels are only queues, job types, outcomes, routes and statuses: never
//! ids, error text, owners or payloads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::clock::Timestamp;
use crate::overview::Overview;
use crate::queues::QueueInfo;

mod series;
pub(crate) use series::JobSeries;

/// The media type of [`Metrics::encode`]'s text (OpenMetrics 1.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds of the duration and wait histograms, in seconds (5 ms to 1 h).
pub const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// How an attempt ended, as the `outcome` label of `jobq_jobs_finished_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The job completed.
    Completed,
    /// The job ended failed (permanent error, or no attempts left).
    Failed,
    /// The attempt failed and the job is pending again after its backoff.
    Retried,
    /// The job ended cancelled.
    Cancelled,
    /// The handler asked to run again later (`JobError::RetryAfter`, a
    /// webhook's `Retry-After`): pending again at the time it asked for.
    Snoozed,
}

impl Outcome {
    /// The label value: `completed`, `failed`, `retried`, `cancelled`, `snoozed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Retried => "retried",
            Outcome::Cancelled => "cancelled",
            Outcome::Snoozed => "snoozed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Finished {
    queue: String,
    job_type: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    queue: String,
    job_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStatus {
    queue: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: &'static str,
    status: u16,
}

type Histograms = Family<JobLabels, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// How long a started job waited from its due time to its start (zero
/// for a job not started, or started before it was due).
pub(crate) fn wait_of(job: &crate::Job) -> Duration {
    let due = job.next_retry;
    job.started_at.map(|s| s.since(due)).unwrap_or_default()
}

/// The registry and its metric families.
#[derive(Debug)]
struct Inner {
    registry: Registry,
    finished: Family<Finished, Counter>,
    duration: Histograms,
    wait: Histograms,
    recoveries: Counter,
    requests: Family<Request, Counter>,
    jobs: Family<QueueStatus, Gauge>,
    oldest_ready: Family<QueueLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    running: Family<QueueLabel, Gauge>,
    paused: Family<QueueLabel, Gauge>,
    last_fire: Family<ScheduleLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// When the database gauges were last read.
    read_at: Mutex<Option<Instant>>,
    /// The series handed out by [`Metrics::series`].
    series: series::SeriesMap,
}

/// A process's metrics. Cheap to clone; clones share the values.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics, every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let inner = Inner {
            finished: Family::default(),
            duration: Family::new_with_constructor(histogram),
            wait: Family::new_with_constructor(histogram),
            recoveries: Counter::default(),
            requests: Family::default(),
            jobs: Family::default(),
            oldest_ready: Family::default(),
            running: Family::default(),
            paused: Family::default(),
            last_fire: Family::default(),
            read_at: Mutex::new(None),
            series: series::SeriesMap::default(),
            registry: Registry::default(),
        };
        register(&mut registry, &inner);
        Metrics {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    /// Counts a settled attempt of a job of `job_type` in `queue`, and its run
    /// time when known.
    pub fn finished(&self, queue: &str, job_type: &str, outcome: Outcome, ran: Option<Duration>) {
        self.series(queue, job_type).finished(self, outcome, ran);
    }

    /// Records how long a claimed job waited past its due time.
    pub fn waited(&self, queue: &str, job_type: &str, wait: Duration) {
        self.series(queue, job_type).waited(self, wait);
    }

    /// A claimed job's start (a pool's, or the cron endpoint's): the running
    /// gauge of its queue goes up, and the wait from its due time to its
    /// start ([`wait_of`]) is observed.
    pub(crate) fn started(&self, job: &crate::Job) {
        self.series(&job.queue, &job.job_type)
            .started(self, wait_of(job));
    }

    /// Counts jobs recovered after their lease expired.
    pub fn recovered(&self, n: u64) {
        self.inner.recoveries.inc_by(n);
    }

    /// Counts an HTTP request answered by the route `route` (its template, e.g.
    /// `/api/v1/jobs/{id}`) with `status`.
    pub fn request(&self, route: &'static str, status: u16) {
        let labels = Request { route, status };
        self.inner.requests.get_or_create(&labels).inc();
    }

    /// Jobs of `queue` this process is running: one more.
    pub fn running_started(&self, queue: &str) {
        self.running(queue).inc();
    }

    /// Jobs of `queue` this process is running: one fewer.
    pub fn running_ended(&self, queue: &str) {
        self.running(queue).dec();
    }

    fn running(&self, queue: &str) -> Gauge {
        let labels = QueueLabel {
            queue: queue.to_string(),
        };
        self.inner.running.get_or_create_owned(&labels)
    }

    /// True when the database gauges are older than `max_age` (or never read).
    pub fn gauges_stale(&self, max_age: Duration) -> bool {
        let at = self.inner.read_at.lock().unwrap_or_else(|p| p.into_inner());
        at.is_none_or(|t| t.elapsed() >= max_age)
    }

    /// Sets the database gauges from an overview: jobs by queue and status
    /// (pending, in_progress, failed), and the oldest ready job's age by queue.
    pub fn set_gauges(&self, o: &Overview) {
        let jobs = &self.inner.jobs;
        jobs.clear();
        self.inner.oldest_ready.clear();
        for g in &o.groups {
            let pending = g.ready + g.scheduled + g.retrying;
            for (status, n) in [
                ("pending", pending),
                ("in_progress", g.running),
                ("failed", g.failed),
            ] {
                let labels = QueueStatus {
                    queue: g.queue.clone(),
                    status,
                };
                jobs.get_or_create(&labels)
                    .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
            }
            let age = g.oldest_ready.map_or(0.0, |t| {
                Duration::from_millis(u64::try_from(o.at.0 - t.0).unwrap_or(0)).as_secs_f64()
            });
            let labels = QueueLabel {
                queue: g.queue.clone(),
            };
            let gauge = self.inner.oldest_ready.get_or_create(&labels);
            gauge.set(gauge.get().max(age));
        }
        *self.inner.read_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Sets `jobq_queue_paused` (1 while paused) from the queues' list.
    pub fn set_queues(&self, queues: &[QueueInfo]) {
        self.inner.paused.clear();
        for q in queues {
            let labels = QueueLabel {
                queue: q.name.clone(),
            };
            self.inner
                .paused
                .get_or_create(&labels)
                .set(i64::from(q.paused));
        }
    }

    /// Sets `jobq_schedule_last_fire_timestamp_seconds` from each declared
    /// schedule's latest fire time handled (Unix seconds); a schedule not yet
    /// seen by any pool has none.
    pub fn set_schedules<'a>(&self, fires: impl IntoIterator<Item = (&'a str, Timestamp)>) {
        self.inner.last_fire.clear();
        for (name, at) in fires {
            let labels = ScheduleLabel {
                schedule: name.to_string(),
            };
            let secs = at.as_millis() as f64 / 1000.0;
            self.inner.last_fire.get_or_create(&labels).set(secs);
        }
    }

    /// The OpenMetrics text of every metric, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = text::encode(&mut out, &self.inner.registry) {
            log::error!("encoding the metrics failed: {e}");
        }
        out
    }
}

fn register(r: &mut Registry, m: &Inner) {
    r.register(
        "jobq_jobs_finished",
        "Settled attempts by queue, job type and outcome (this process, since it started)",
        m.finished.clone(),
    );
    r.register(
        "jobq_job_duration_seconds",
        "Run time of settled attempts",
        m.duration.clone(),
    );
    r.register(
        "jobq_job_wait_seconds",
        "Time from a job's due time to its claim",
        m.wait.clone(),
    );
    r.register(
        "jobq_jobs",
        "Jobs in the database by queue and status (pending, in_progress, failed)",
        m.jobs.clone(),
    );
    r.register(
        "jobq_oldest_ready_age_seconds",
        "How long the oldest ready job of each queue has been due",
        m.oldest_ready.clone(),
    );
    r.register(
        "jobq_running",
        "Jobs this process is running now, by queue",
        m.running.clone(),
    );
    r.register(
        "jobq_queue_paused",
        "1 while a queue is paused, else 0",
        m.paused.clone(),
    );
    r.register(
        "jobq_schedule_last_fire_timestamp_seconds",
        "The latest fire time each schedule has handled (Unix time)",
        m.last_fire.clone(),
    );
    r.register(
        "jobq_lease_recoveries",
        "Jobs recovered after their lease expired (this process)",
        m.recoveries.clone(),
    );
    r.register(
        "jobq_http_requests",
        "HTTP requests answered, by route and status",
        m.requests.clone(),
    );
}
