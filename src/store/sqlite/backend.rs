//! [`Backend`] on SQLite: each method is one write transaction (on the one
//! writer connection) or one read (on a pooled reader), delegating to the
//! module of its statements.

use std::sync::atomic::Ordering;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::filter::{Cursor, JobFilter};
use crate::job::{Job, JobId, JobStatus};
use crate::overview::{Overview, OverviewQuery};
use crate::queues::{LimitsChange, QueueInfo};
use crate::retry::Backoff;
use crate::schedule::ScheduleState;
use crate::state::Move;
use crate::stats::{Stats, Waiting};
use crate::store::sqlite::{
    admin, bulk, claim, find, finish, lease, overview, queues, read, schedules, settle, tokens,
    transfer, watch, workers, Sqlite,
};
use crate::store::{
    refusal_is_an_outcome, Backend, BulkBatch, BulkDone, FirePlan, NewRow, Recovered, Round,
    Settled,
};
use crate::token::ApiToken;
use crate::transfer::Settings;
use crate::workers::WorkerInfo;

impl Backend for Sqlite {
    fn watch_commits(&self) -> Option<Box<dyn crate::store::CommitWatch>> {
        watch::watch(self.store.path())
    }

    fn insert(&self, rows: &[NewRow]) -> Result<Vec<Option<Job>>> {
        self.group.insert(&self.store, rows)
    }

    fn settle_and_claim(&self, round: Round<'_>) -> Result<Settled> {
        let types = claim::TypeFilter::new(round.claim.and_then(|c| c.types));
        let rotation = self.rounds.fetch_add(1, Ordering::Relaxed);
        self.store.write("complete_and_claim", |tx| {
            settle::round(tx, &round, &types, rotation)
        })
    }

    fn heartbeat(
        &self,
        held: &[(JobId, i64)],
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Result<bool>>> {
        self.store.write("heartbeat", |tx| {
            held.iter()
                .map(|(id, token)| lease::heartbeat(tx, *id, *token, now, until))
                .map(refusal_is_an_outcome)
                .collect()
        })
    }

    fn progress(&self, id: JobId, token: i64, report: &str, now: Timestamp) -> Result<()> {
        self.store
            .write("progress", |tx| lease::progress(tx, id, token, report, now))
    }

    fn cancel_requests(&self, worker: &str) -> Result<Vec<JobId>> {
        self.store
            .read("cancel_requests", |c| read::cancel_requests(c, worker))
    }

    fn paused_queues(&self, now: Timestamp) -> Result<Vec<String>> {
        let settings = self.store.read("queues", queues::settings)?;
        Ok(crate::queues::paused_at(settings, now))
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> Result<Move> {
        self.store.write("cancel", |tx| admin::cancel(tx, id, now))
    }

    fn retry(&self, id: JobId, now: Timestamp) -> Result<()> {
        self.store.write("retry", |tx| admin::retry(tx, id, now))
    }

    fn recover_expired(
        &self,
        now: Timestamp,
        limit: usize,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>> {
        self.store.write("recover", |tx| {
            finish::recover_expired(tx, backoff_for, now, limit)
        })
    }

    fn recover_worker(
        &self,
        worker: &str,
        message: &str,
        now: Timestamp,
        backoff_for: &dyn Fn(&str) -> Backoff,
    ) -> Result<Vec<Recovered>> {
        self.store.write("recover worker", |tx| {
            finish::recover_worker(tx, worker, message, backoff_for, now)
        })
    }

    fn register_worker(
        &self,
        id: &str,
        types: &[String],
        queues: Option<&[String]>,
        now: Timestamp,
    ) -> Result<()> {
        self.store.write("register worker", |tx| {
            workers::register(tx, id, types, queues, now)
        })
    }

    fn beat_worker(&self, id: &str, now: Timestamp, forget_before: Timestamp) -> Result<bool> {
        self.store.write("worker heartbeat", |tx| {
            workers::beat(tx, id, now, forget_before)
        })
    }

    fn remove_worker(&self, id: &str) -> Result<()> {
        self.store
            .write("remove worker", |tx| workers::remove(tx, id))
    }

    fn workers(&self, fresh_after: Timestamp) -> Result<Vec<WorkerInfo>> {
        self.store.read("workers", |c| workers::all(c, fresh_after))
    }

    fn running_workers(&self) -> Result<Vec<String>> {
        self.store.read("workers", workers::running_workers)
    }

    fn waiting(&self, now: Timestamp) -> Result<Vec<Waiting>> {
        self.store.read("waiting", |c| workers::waiting(c, now))
    }

    fn prune(&self, statuses: &[JobStatus], cutoff: Timestamp, limit: usize) -> Result<usize> {
        self.store.write("prune", |tx| {
            admin::prune_batch(tx, statuses, cutoff, limit)
        })
    }

    fn get(&self, id: JobId) -> Result<Job> {
        self.store.read("get", |c| read::get(c, id))
    }

    fn ids_between(&self, low: JobId, high: JobId, limit: usize) -> Result<Vec<JobId>> {
        self.store
            .read("find id prefix", |c| read::ids_between(c, low, high, limit))
    }

    fn list(
        &self,
        filter: &JobFilter,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Job>, u64)> {
        self.store
            .read("list", |c| read::list(c, filter, cursor, limit))
    }

    fn stats(&self, now: Timestamp) -> Result<Stats> {
        self.store.read("stats", |c| read::stats(c, now))
    }

    fn find(&self, filter: &JobFilter, cursor: Option<Cursor>, limit: usize) -> Result<Vec<Job>> {
        self.store
            .read("find", |c| find::find(c, filter, cursor, limit))
    }

    fn count_up_to(&self, filter: &JobFilter, limit: u64) -> Result<u64> {
        self.store
            .read("count", |c| find::count_up_to(c, filter, limit))
    }

    fn overview(&self, query: &OverviewQuery) -> Result<Overview> {
        self.store
            .read("overview", |c| overview::overview(c, query))
    }

    fn bulk(&self, batch: &BulkBatch<'_>) -> Result<BulkDone> {
        let ids = self.store.read("bulk", |c| bulk::candidates(c, batch))?;
        if ids.is_empty() {
            return Ok(BulkDone::default());
        }
        self.store.write("bulk", |tx| bulk::apply(tx, batch, &ids))
    }

    fn bulk_count(&self, batch: &BulkBatch<'_>) -> Result<u64> {
        self.store.read("bulk count", |c| bulk::count(c, batch))
    }

    fn ping(&self) -> Result<()> {
        self.store.read("ping", |c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(Error::db("ping"))
        })
    }

    fn queue_infos(&self, known: &[String], now: Timestamp) -> Result<Vec<QueueInfo>> {
        self.store
            .read("list queues", |c| queues::infos(c, known, now))
    }

    fn set_queue_limits(&self, queue: &str, change: LimitsChange, now: Timestamp) -> Result<()> {
        self.store.write("queue settings", |tx| {
            queues::set_limits(tx, queue, change, now)
        })
    }

    fn pause_queue(&self, queue: &str, until: Option<Timestamp>, now: Timestamp) -> Result<()> {
        self.store
            .write("pause queue", |tx| queues::pause(tx, queue, until, now))
    }

    fn resume_queue(&self, queue: &str, now: Timestamp) -> Result<()> {
        self.store
            .write("resume queue", |tx| queues::resume(tx, queue, now))
    }

    fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>> {
        self.store.read("schedules", schedules::states)
    }

    fn fire_schedule(
        &self,
        name: &str,
        now: Timestamp,
        plan: &dyn Fn(Option<Timestamp>) -> Result<FirePlan>,
    ) -> Result<Option<(Job, bool)>> {
        self.store
            .write("fire schedule", |tx| schedules::fire(tx, name, now, plan))
    }

    fn insert_token(&self, user: &str, admin: bool, hash: &str, now: Timestamp) -> Result<i64> {
        self.store.write("create token", |tx| {
            tokens::insert(tx, user, admin, hash, now)
        })
    }

    fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.store.read("list tokens", |c| tokens::list(c, user))
    }

    fn revoke_token(&self, id: i64, now: Timestamp) -> Result<usize> {
        self.store
            .write("revoke token", |tx| tokens::revoke_id(tx, id, now))
    }

    fn revoke_user_tokens(&self, user: &str, now: Timestamp) -> Result<usize> {
        self.store
            .write("revoke token", |tx| tokens::revoke_user(tx, user, now))
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<(ApiToken, String)>> {
        self.store
            .read("authenticate token", |c| tokens::by_hash(c, hash))
    }

    fn export_jobs(&self, after: Option<JobId>, limit: usize) -> Result<Vec<Job>> {
        self.store
            .read("export jobs", |c| transfer::page(c, after, limit))
    }

    fn import_jobs(&self, jobs: &[Job]) -> Result<()> {
        self.store
            .write("import jobs", |tx| transfer::insert_jobs(tx, jobs))
    }

    fn export_settings(&self) -> Result<Settings> {
        self.store.read("export settings", transfer::settings)
    }

    fn import_settings(&self, settings: &Settings) -> Result<()> {
        self.store.write("import settings", |tx| {
            transfer::insert_settings(tx, settings)
        })
    }
}
