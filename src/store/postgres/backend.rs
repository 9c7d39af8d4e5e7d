//! [`Backend`] on PostgreSQL: each method is one transaction (or one autocommit
//! statement) on a pooled client, delegating to the module of its statements.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId, JobStatus};
use crate::overview::{BulkAction, Overview, OverviewQuery};
use crate::queues::{LimitsChange, QueueInfo};
use crate::retry::Backoff;
use crate::schedule::ScheduleState;
use crate::state::Move;
use crate::stats::{Stats, Waiting};
use crate::store::postgres::conn::BEGIN;
use crate::store::postgres::notify::Listener;
use crate::store::postgres::{
    admin, bulk, claim, find, finish, overview, queues, read, schedules, settle, tokens, transfer,
    workers, Postgres,
};
use crate::store::{Backend, BulkBatch, BulkDone, FirePlan, NewRow, Recovered, Round, Settled};
use crate::token::ApiToken;
use crate::transfer::Settings;
use crate::workers::WorkerInfo;

impl Backend for Postgres {
    fn insert(&self, rows: &[NewRow]) -> Result<Vec<Option<Job>>> {
        // `None`: inserted; `Some`: the unique job already there.
        let inserted = |out: Vec<Option<Job>>| {
            let due = out.iter().any(Option::is_none);
            (out, due)
        };
        if let [one] = rows {
            if one.job.unique.is_none() {
                // One statement inserts and notifies.
                return self.notifying("enqueue", |notify| {
                    self.pool
                        .auto("enqueue", |c| {
                            Ok(vec![admin::insert(c, &one.job, &one.payload, notify)?])
                        })
                        .map(inserted)
                });
            }
        }
        self.notifying_tx("enqueue_many", |c| {
            rows.iter()
                .map(|r| admin::insert(c, &r.job, &r.payload, false))
                .collect::<Result<Vec<_>>>()
                .map(inserted)
        })
    }

    fn settle_and_claim(&self, round: Round<'_>) -> Result<Settled> {
        let rotation = self.rounds.fetch_add(1, Ordering::Relaxed);
        if round.claim.is_none() && !round.unstarted.is_empty() {
            // A pool hands back jobs it reserved (shutdown, a paused queue,
            // a stalled pool): other processes' pools may run them now.
            return self.notifying_tx("give back", |c| {
                let settled = settle::round(c, &round, rotation)?;
                let pending = settled
                    .unstarted
                    .iter()
                    .any(|r| matches!(r, Ok(JobStatus::Pending)));
                Ok((settled, pending))
            });
        }
        // A claim holds the queue settings' lock shared from its first
        // statement (see `queues::CLAIM_BEGIN`).
        let begin = match round.claim {
            Some(k) if k.n > 0 => queues::CLAIM_BEGIN,
            _ => BEGIN,
        };
        self.pool.tx_begun("complete_and_claim", begin, |c| {
            settle::round(c, &round, rotation)
        })
    }

    fn heartbeat(
        &self,
        held: &[(JobId, i64)],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Result<bool>>> {
        self.pool
            .tx("heartbeat", |c| claim::heartbeat_many(c, held, now, until))
    }

    fn progress(&self, id: JobId, token: i64, report: &str, now: Timestamp) -> Result<()> {
        self.pool
            .auto("progress", |c| claim::progress(c, id, token, report, now))
    }

    fn cancel_requests(&self, worker: &str) -> Result<Vec<JobId>> {
        self.pool
            .auto("cancel_requests", |c| read::cancel_requests(c, worker))
    }

    fn paused_queues(&self, now: Timestamp) -> Result<Vec<String>> {
        let settings = self.pool.auto("queues", queues::settings)?;
        Ok(crate::queues::paused_at(settings, now))
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> Result<Move> {
        self.pool.tx("cancel", |c| admin::cancel(c, id, now))
    }

    fn retry(&self, id: JobId, now: Timestamp) -> Result<()> {
        self.notifying_tx("retry", |c| admin::retry(c, id, now).map(|()| ((), true)))
    }

    fn recover_expired(
        &self,
        now: Timestamp,
        limit: usize,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>> {
        self.notifying_tx("recover", |c| {
            finish::recover_expired(c, backoff_for, now, limit).map(any_pending)
        })
    }

    fn recover_worker(
        &self,
        worker: &str,
        message: &str,
        now: Timestamp,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>> {
        self.notifying_tx("recover worker", |c| {
            finish::recover_worker(c, worker, message, backoff_for, now).map(any_pending)
        })
    }

    fn register_worker(
        &self,
        id: &str,
        types: &[String],
        queues: Option<&[String]>,
        now: Timestamp,
    ) -> Result<()> {
        self.pool.auto("register worker", |c| {
            workers::register(c, id, types, queues, now)
        })
    }

    fn beat_worker(&self, id: &str, now: Timestamp, forget_before: Timestamp) -> Result<bool> {
        self.pool.tx("worker heartbeat", |c| {
            workers::beat(c, id, now, forget_before)
        })
    }

    fn remove_worker(&self, id: &str) -> Result<()> {
        self.pool.auto("remove worker", |c| workers::remove(c, id))
    }

    fn workers(&self, fresh_after: Timestamp) -> Result<Vec<WorkerInfo>> {
        self.pool.auto("workers", |c| workers::all(c, fresh_after))
    }

    fn running_workers(&self) -> Result<Vec<String>> {
        self.pool.auto("workers", workers::running_workers)
    }

    fn waiting(&self, now: Timestamp) -> Result<Vec<Waiting>> {
        self.pool.auto("waiting", |c| workers::waiting(c, now))
    }

    fn prune(&self, statuses: &[JobStatus], cutoff: Timestamp, limit: usize) -> Result<usize> {
        self.pool
            .auto("prune", |c| admin::prune_batch(c, statuses, cutoff, limit))
    }

    fn get(&self, id: JobId) -> Result<Job> {
        self.pool.auto("get", |c| read::get(c, id))
    }

    fn ids_between(&self, low: JobId, high: JobId, limit: usize) -> Result<Vec<JobId>> {
        self.pool
            .auto("find id prefix", |c| read::ids_between(c, low, high, limit))
    }

    fn list(
        &self,
        filter: &JobFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Job>, u64)> {
        self.pool.tx("list", |c| {
            c.batch("list", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")?;
            read::list(c, filter, cursor, limit)
        })
    }

    fn stats(&self, now: Timestamp) -> Result<Stats> {
        self.pool.auto("stats", |c| read::stats(c, now))
    }

    fn find(&self, filter: &JobFilter, cursor: Option<Cursor>, limit: usize) -> Result<Vec<Job>> {
        self.pool
            .auto("find", |c| find::find(c, filter, cursor, limit))
    }

    fn count_up_to(&self, filter: &JobFilter, limit: u64) -> Result<u64> {
        self.pool
            .auto("count", |c| find::count_up_to(c, filter, limit))
    }

    fn overview(&self, query: &OverviewQuery) -> Result<Overview> {
        self.pool.tx("overview", |c| {
            c.batch(
                "overview",
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )?;
            overview::overview(c, query)
        })
    }

    fn bulk(&self, batch: &BulkBatch<'_>) -> Result<BulkDone> {
        if batch.action != BulkAction::Retry {
            return self.pool.tx("bulk", |c| bulk::batch(c, batch));
        }
        self.notifying_tx("bulk", |c| {
            bulk::batch(c, batch).map(|done| {
                let due = done.changed > 0;
                (done, due)
            })
        })
    }

    fn bulk_count(&self, batch: &BulkBatch<'_>) -> Result<u64> {
        self.pool.auto("bulk count", |c| bulk::count(c, batch))
    }

    fn ping(&self) -> Result<()> {
        self.pool.auto("ping", |c| c.batch("ping", "SELECT 1"))
    }

    fn queue_infos(&self, known: &[String], now: Timestamp) -> Result<Vec<QueueInfo>> {
        self.pool.tx("list queues", |c| {
            c.batch(
                "list queues",
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            )?;
            queues::infos(c, known, now)
        })
    }

    fn set_queue_limits(&self, queue: &str, change: LimitsChange, now: Timestamp) -> Result<()> {
        self.pool.tx("queue settings", |c| {
            queues::set_limits(c, queue, change, now)
        })
    }

    fn pause_queue(&self, queue: &str, until: Option<Timestamp>, now: Timestamp) -> Result<()> {
        self.pool
            .tx("pause queue", |c| queues::pause(c, queue, until, now))
    }

    fn resume_queue(&self, queue: &str, now: Timestamp) -> Result<()> {
        self.notifying_tx("resume queue", |c| {
            queues::resume(c, queue, now).map(|()| ((), true))
        })
    }

    fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>> {
        self.pool.auto("schedules", schedules::states)
    }

    fn fire_schedule(
        &self,
        name: &str,
        now: Timestamp,
        plan: &dyn Fn(Option<Timestamp>) -> Result<FirePlan>,
    ) -> Result<Option<(Job, bool)>> {
        self.notifying("fire schedule", |notify| {
            let fired = self.pool.tx("fire schedule", |c| {
                schedules::fire(c, name, now, notify, plan)
            })?;
            // `false`: a new job, not the unique one already there.
            let due = matches!(fired, Some((_, false)));
            Ok((fired, due))
        })
    }

    fn insert_token(&self, user: &str, admin: bool, hash: &str, now: Timestamp) -> Result<i64> {
        self.pool.auto("create token", |c| {
            tokens::insert(c, user, admin, hash, now)
        })
    }

    fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.pool.auto("list tokens", |c| tokens::list(c, user))
    }

    fn revoke_token(&self, id: i64, now: Timestamp) -> Result<usize> {
        self.pool
            .auto("revoke token", |c| tokens::revoke_id(c, id, now))
    }

    fn revoke_user_tokens(&self, user: &str, now: Timestamp) -> Result<usize> {
        self.pool
            .auto("revoke token", |c| tokens::revoke_user(c, user, now))
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<(ApiToken, String)>> {
        self.pool
            .auto("authenticate token", |c| tokens::by_hash(c, hash))
    }

    fn export_jobs(&self, after: Option<JobId>, limit: usize) -> Result<Vec<Job>> {
        self.pool
            .auto("export jobs", |c| transfer::page(c, after, limit))
    }

    fn import_jobs(&self, jobs: &[Job]) -> Result<()> {
        self.pool
            .tx("import jobs", |c| transfer::insert_jobs(c, jobs))
    }

    fn export_settings(&self) -> Result<Settings> {
        self.pool.tx("export settings", transfer::settings)
    }

    fn import_settings(&self, settings: &Settings) -> Result<()> {
        self.pool.tx("import settings", |c| {
            transfer::insert_settings(c, settings)
        })
    }

    fn watch(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        if !self.notify {
            return;
        }
        self.listening.call_once(|| {
            Listener {
                config: self.config.clone(),
                shown: self.pool.shown.clone(),
                wake,
                stop: self.stop.clone(),
            }
            .spawn();
        });
    }
}

/// A recovery's outcomes, and whether any job went back to pending (due).
fn any_pending(out: Vec<Recovered>) -> (Vec<Recovered>, bool) {
    let due = out.iter().any(|r| r.status == JobStatus::Pending);
    (out, due)
}
