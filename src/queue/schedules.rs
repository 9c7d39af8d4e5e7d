//! Recurring schedules: firing them exactly once per fire time across
//! processes, running one by hand, and listing them.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::new_job::NewJob;
use crate::queue::{validate, Queue};
use crate::schedule::{Schedule, ScheduleInfo, ScheduleState};
use crate::store::{FirePlan, NewRow};
use crate::unique::{Enqueued, Unique};

impl Queue {
    /// The catalogue's schedules with their next and last fire times and the
    /// last job's status, sorted by name.
    ///
    /// # Errors
    /// Database errors.
    pub fn schedules(&self) -> Result<Vec<ScheduleInfo>> {
        let states = self.schedule_states()?;
        let now = self.now();
        self.catalog()
            .schedules()
            .map(|s| self.schedule_info(s, states.get(s.name()).cloned(), now))
            .collect()
    }

    pub(crate) fn schedule_states(
        &self,
    ) -> Result<std::collections::BTreeMap<String, ScheduleState>> {
        Ok(self.backend().schedule_states()?.into_iter().collect())
    }

    fn schedule_info(
        &self,
        s: &Schedule,
        state: Option<ScheduleState>,
        now: Timestamp,
    ) -> Result<ScheduleInfo> {
        let state = state.unwrap_or_default();
        let next = s.enabled.then(|| s.next_after(now)).flatten();
        let last_job = match state.last_job_id {
            Some(id) => match self.get(id) {
                Ok(job) => Some(job),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        // The last fire is the last job's: the stored time is also set when a
        // pool first sees the schedule (its start point) and for skipped fire
        // times, which enqueued nothing. A pruned job leaves the stored time.
        let last_fire = match (&last_job, state.last_job_id) {
            (Some(job), _) => job.fire_time.or(state.last_fire_at),
            (None, Some(_)) => state.last_fire_at,
            (None, None) => None,
        };
        Ok(ScheduleInfo {
            name: s.name().to_string(),
            cron: s.cron().to_string(),
            timezone: s.timezone_name().to_string(),
            job_type: s.job_type.clone(),
            misfire: s.misfire,
            enabled: s.enabled,
            next_fire: next,
            next_fire_local: next.map(|t| s.local(t)),
            last_fire,
            last_job_id: state.last_job_id,
            last_job_status: last_job.map(|j| j.status),
        })
    }

    /// Enqueues schedule `name`'s job now, whatever its cron says (its fire time
    /// is now). Returns the job.
    ///
    /// # Errors
    /// [`Error::UnknownSchedule`] when no schedule has this name; as
    /// [`Queue::enqueue`].
    pub fn run_schedule(&self, name: &str) -> Result<Enqueued> {
        let s = self.declared_schedule(name)?;
        let now = self.now();
        let fired = self.backend().fire_schedule(name, now, &|_| {
            Ok(FirePlan {
                record: None,
                row: Some(self.schedule_row(s, now)?),
            })
        })?;
        let (job, duplicate) = fired.ok_or(Error::Invalid {
            field: "schedule",
            reason: format!("{name}: nothing was enqueued"),
        })?;
        self.notify_enqueued();
        Ok(Enqueued { job, duplicate })
    }

    fn declared_schedule(&self, name: &str) -> Result<&Schedule> {
        self.catalog()
            .schedule(name)
            .ok_or_else(|| Error::UnknownSchedule {
                name: name.chars().take(64).collect(),
            })
    }

    /// Fires schedule `name` if a fire time of it is due and not yet handled by
    /// any process: in one transaction, the fire time's job (unique per
    /// schedule and fire time) and the record of it. Returns the fire time
    /// recorded, if any (then the next is after it).
    ///
    /// # Errors
    /// Database errors; [`Error::UnknownSchedule`] for an undeclared schedule.
    pub fn fire_schedule(&self, name: &str) -> Result<Option<Timestamp>> {
        let s = self.declared_schedule(name)?;
        let now = self.now();
        let recorded = std::cell::Cell::new(None);
        let fired = self.backend().fire_schedule(name, now, &|last| {
            let d = s.decide(last, now);
            recorded.set(d.record.or(last));
            let row = d.fire.map(|t| self.schedule_row(s, t)).transpose()?;
            Ok(FirePlan {
                record: d.record,
                row,
            })
        })?;
        if let Some((job, false)) = &fired {
            log::info!(
                "schedule {name}: enqueued job {} for {}",
                job.id,
                job.fire_time.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
            self.notify_enqueued();
        }
        Ok(recorded.get())
    }

    /// The job schedule `s` enqueues for fire time `at`: unique per (schedule,
    /// fire time) in every status, so a fire time is one job ever.
    fn schedule_row(&self, s: &Schedule, at: Timestamp) -> Result<NewRow> {
        let mut new = NewJob::new(s.job_type.clone(), s.payload.clone());
        new.priority = s.priority;
        new.queue = s.queue.clone();
        let key = format!("schedule:{}@{}", s.name(), at.0);
        new.unique = Some(Unique::by_key(key).also_in(&crate::JobStatus::ALL));
        new.scheduled = Some((s.name().to_string(), at));
        let (job, payload) = validate::build(new, self.now(), &self.inner.opts)?;
        Ok(NewRow { job, payload })
    }
}
