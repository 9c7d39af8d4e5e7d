//! The metric series of one queue and job type, looked up once and kept
//! ([`JobSeries`]): a worker pool records each job's start and end through
//! them, without building label sets or hashing them per job; the
//! label-based methods of [`Metrics`] look the series up and record through
//! them too, so there is one way of recording a job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{Finished, JobLabels, Metrics, Outcome, QueueLabel};

/// Every outcome, in the order of [`JobSeries`]'s counters.
const OUTCOMES: [Outcome; 5] = [
    Outcome::Completed,
    Outcome::Failed,
    Outcome::Retried,
    Outcome::Cancelled,
    Outcome::Snoozed,
];

/// The series of jobs of one type in one queue. Each series is created in
/// its family the first time it is recorded, so the exposition lists only
/// what was recorded; the handles share their values with the families.
#[derive(Debug)]
pub(crate) struct JobSeries {
    queue: String,
    job_type: String,
    running: OnceLock<Gauge>,
    wait: OnceLock<Histogram>,
    duration: OnceLock<Histogram>,
    finished: [OnceLock<Counter>; 5],
}

/// The series made so far, by queue then job type.
pub(super) type SeriesMap = Mutex<HashMap<String, HashMap<String, Arc<JobSeries>>>>;

impl JobSeries {
    /// Whether these are the series of `queue` and `job_type`.
    pub fn is(&self, queue: &str, job_type: &str) -> bool {
        self.queue == queue && self.job_type == job_type
    }

    fn labels(&self) -> JobLabels {
        JobLabels {
            queue: self.queue.clone(),
            job_type: self.job_type.clone(),
        }
    }

    fn running(&self, m: &Metrics) -> &Gauge {
        self.running.get_or_init(|| {
            let labels = QueueLabel {
                queue: self.queue.clone(),
            };
            m.inner.running.get_or_create_owned(&labels)
        })
    }

    /// A job's start: the running gauge of its queue goes up, and `wait`
    /// (from its due time to its start) is observed, as [`Metrics::started`].
    pub fn started(&self, m: &Metrics, wait: Duration) {
        self.running(m).inc();
        self.waited(m, wait);
    }

    /// How long a claimed job waited past its due time, as [`Metrics::waited`].
    pub fn waited(&self, m: &Metrics, wait: Duration) {
        self.wait
            .get_or_init(|| m.inner.wait.get_or_create_owned(&self.labels()))
            .observe(wait.as_secs_f64());
    }

    /// A started job left the pool: the running gauge of its queue goes down.
    pub fn running_ended(&self, m: &Metrics) {
        self.running(m).dec();
    }

    /// A settled attempt and its run time, as [`Metrics::finished`].
    pub fn finished(&self, m: &Metrics, outcome: Outcome, ran: Option<Duration>) {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.finished[i]
            .get_or_init(|| {
                let labels = Finished {
                    queue: self.queue.clone(),
                    job_type: self.job_type.clone(),
                    outcome: outcome.as_str(),
                };
                m.inner.finished.get_or_create_owned(&labels)
            })
            .inc();
        if let Some(ran) = ran {
            self.duration
                .get_or_init(|| m.inner.duration.get_or_create_owned(&self.labels()))
                .observe(ran.as_secs_f64());
        }
    }
}

impl Metrics {
    /// The series of `job_type` in `queue`, made on first use and kept for
    /// the life of the metrics.
    pub(crate) fn series(&self, queue: &str, job_type: &str) -> Arc<JobSeries> {
        let mut map = self.inner.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(queue).and_then(|types| types.get(job_type)) {
            return s.clone();
        }
        let s = Arc::new(JobSeries {
            queue: queue.to_string(),
            job_type: job_type.to_string(),
            running: OnceLock::new(),
            wait: OnceLock::new(),
            duration: OnceLock::new(),
            finished: Default::default(),
        });
        map.entry(queue.to_string())
            .or_default()
            .insert(job_type.to_string(), s.clone());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition's lines for `name`, without comments.
    fn lines(m: &Metrics, name: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn recording_through_series_shows_as_the_label_based_methods_do() {
        let by_labels = Metrics::new();
        by_labels.running_started("mail");
        by_labels.waited("mail", "send", Duration::from_millis(20));
        by_labels.finished(
            "mail",
            "send",
            Outcome::Retried,
            Some(Duration::from_millis(7)),
        );
        by_labels.running_ended("mail");
        by_labels.running_started("mail");

        let by_series = Metrics::new();
        let s = by_series.series("mail", "send");
        assert!(s.is("mail", "send") && !s.is("mail", "other"));
        s.started(&by_series, Duration::from_millis(20));
        s.finished(&by_series, Outcome::Retried, Some(Duration::from_millis(7)));
        s.running_ended(&by_series);
        by_series
            .series("mail", "send")
            .started(&by_series, Duration::ZERO);

        for name in ["jobq_jobs_finished", "jobq_job_duration", "jobq_running"] {
            let want = lines(&by_labels, name);
            assert!(!want.is_empty(), "{name}");
            assert_eq!(lines(&by_series, name), want, "{name}");
        }
        // One more wait observed (zero) through the second lookup, which
        // found the same series.
        let waits = lines(&by_series, "jobq_job_wait_seconds_count");
        assert_eq!(
            waits,
            vec!["jobq_job_wait_seconds_count{queue=\"mail\",job_type=\"send\"} 2"]
        );
        // Outcomes never recorded have no series.
        assert!(lines(&by_series, "jobq_jobs_finished_total")
            .iter()
            .all(|l| l.contains("outcome=\"retried\"")));
    }
}
