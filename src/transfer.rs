//! Moving a queue from one database to another ([`crate::Queue::migrate_into`]):
//! the rows carried between backends besides jobs, the options, and the census
//! both sides are verified with (counts per status and a SHA-256 over a
//! canonical encoding of every row, computed from the decoded rows so it
//! compares across backends).

use sha2::{Digest, Sha256};

use crate::job::Job;
use crate::stats::StatusCounts;

/// An API token's row as stored (only the token's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRecord {
    pub id: i64,
    pub user: String,
    pub admin: bool,
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A queue's stored settings row (pause and limits), times in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueRecord {
    pub name: String,
    pub paused: bool,
    pub paused_until: Option<i64>,
    pub concurrency: Option<i64>,
    pub rate_count: Option<i64>,
    pub rate_period_ms: Option<i64>,
    pub updated_at: i64,
}

/// A schedule's stored state row, times in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleRecord {
    pub name: String,
    pub last_fire_at: Option<i64>,
    /// The job id as stored (text).
    pub last_job_id: Option<String>,
    pub updated_at: i64,
}

/// Everything but jobs and live workers: tokens, queue settings, schedule state.
/// Each list sorted (tokens by id, the others by name, in byte order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub tokens: Vec<TokenRecord>,
    pub queues: Vec<QueueRecord>,
    pub schedules: Vec<ScheduleRecord>,
}

impl Settings {
    /// Sorts every list into its canonical order (backends may collate names differently).
    pub(crate) fn sorted(mut self) -> Settings {
        self.tokens.sort_by_key(|t| t.id);
        self.queues
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        self.schedules
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        self
    }
}

/// How [`crate::Queue::migrate_into`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Jobs per page read from the source and per transaction on the target.
    /// Default 1,000; at least 1.
    pub batch: usize,
    /// Hand jobs whose lease is live back to pending in the source first (as a
    /// worker shutting down does: the attempt is not counted) and forget live
    /// worker pool rows, instead of refusing. Only for workers known stopped.
    pub release_leases: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch: 1_000,
            release_leases: false,
        }
    }
}

/// One side of a move, read back after it: counts and a digest of every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Jobs by status.
    pub jobs: StatusCounts,
    /// API tokens (live and revoked).
    pub tokens: u64,
    /// Queues with stored settings.
    pub queues: u64,
    /// Schedules with stored state.
    pub schedules: u64,
    /// SHA-256 (hex) over every job row in id order, each encoded canonically.
    pub jobs_digest: String,
    /// SHA-256 (hex) over the token, queue and schedule rows.
    pub settings_digest: String,
}

impl Census {
    /// Every job, whatever its status.
    pub fn total_jobs(&self) -> u64 {
        let c = &self.jobs;
        c.pending + c.in_progress + c.completed + c.failed + c.cancelled
    }
}

/// What a move did and what both sides hold after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Jobs copied.
    pub copied: u64,
    /// Jobs handed back to pending in the source first (`release_leases`).
    pub released: u64,
    /// The source, read after the copy.
    pub source: Census,
    /// The target, read after the copy.
    pub target: Census,
}

impl Migrated {
    /// True when the target holds exactly what the source holds.
    pub fn verified(&self) -> bool {
        self.source == self.target
    }
}

/// Feeds fields into a SHA-256, each tagged by kind and length-prefixed, so no
/// two different rows encode alike.
pub(crate) struct Canonical(Sha256);

impl Canonical {
    pub(crate) fn new() -> Canonical {
        Canonical(Sha256::new())
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.update(b"b");
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
    }

    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn int(&mut self, n: i64) {
        self.0.update(b"i");
        self.0.update(n.to_be_bytes());
    }

    fn none(&mut self) {
        self.0.update(b"n");
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.none(),
        }
    }

    fn opt_int(&mut self, n: Option<i64>) {
        match n {
            Some(n) => self.int(n),
            None => self.none(),
        }
    }

    fn json(&mut self, v: Option<&serde_json::Value>) {
        self.opt_text(v.map(|v| v.to_string()).as_deref());
    }

    /// The hex digest.
    pub(crate) fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Adds one job: every stored column (the destructuring fails to compile
    /// when a field is added to [`Job`] and not here).
    pub(crate) fn job(&mut self, job: &Job) {
        let Job {
            id,
            job_type,
            queue,
            status,
            priority,
            payload,
            result,
            attempts,
            max_attempts,
            snoozes,
            next_retry,
            error_message,
            error_context,
            entity_type,
            entity_id,
            owner,
            created_at,
            updated_at,
            started_at,
            completed_at,
            locked_by,
            lease_expires_at,
            cancel_requested,
            unique,
            schedule,
            fire_time,
            progress,
            lease_token,
            backoff,
            unreadable: _,
        } = job;
        self.bytes(id.as_uuid().as_bytes());
        self.text(job_type);
        self.text(queue);
        self.text(status.as_str());
        self.int(i64::from(*priority));
        self.json(Some(payload));
        self.json(result.as_ref());
        for n in [attempts, max_attempts, snoozes] {
            self.int(i64::from(*n));
        }
        self.int(next_retry.0);
        self.opt_text(error_message.as_deref());
        self.json(error_context.as_ref());
        for s in [entity_type, entity_id, owner] {
            self.opt_text(s.as_deref());
        }
        self.int(created_at.0);
        self.int(updated_at.0);
        self.opt_int(started_at.map(|t| t.0));
        self.opt_int(completed_at.map(|t| t.0));
        self.opt_text(locked_by.as_deref());
        self.opt_int(lease_expires_at.map(|t| t.0));
        self.int(i64::from(*cancel_requested));
        match unique {
            Some(k) => {
                self.bytes(&k.key);
                self.int(k.states.bits());
            }
            None => self.none(),
        }
        self.opt_text(schedule.as_deref());
        self.opt_int(fire_time.map(|t| t.0));
        self.json(progress.as_ref());
        self.int(*lease_token);
        self.opt_text(
            backoff
                .as_ref()
                .map(crate::retry::Backoff::to_stored)
                .as_deref(),
        );
    }

    /// Adds every token, queue and schedule row (in [`Settings::sorted`] order).
    pub(crate) fn settings(&mut self, s: &Settings) {
        for t in &s.tokens {
            self.int(t.id);
            self.text(&t.user);
            self.int(i64::from(t.admin));
            self.text(&t.hash);
            self.int(t.created_at);
            self.opt_int(t.revoked_at);
        }
        for q in &s.queues {
            self.text(&q.name);
            self.int(i64::from(q.paused));
            for n in [
                q.paused_until,
                q.concurrency,
                q.rate_count,
                q.rate_period_ms,
            ] {
                self.opt_int(n);
            }
            self.int(q.updated_at);
        }
        for sc in &s.schedules {
            self.text(&sc.name);
            self.opt_int(sc.last_fire_at);
            self.opt_text(sc.last_job_id.as_deref());
            self.int(sc.updated_at);
        }
    }
}

/// Which part of a move a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateStep {
    /// Copying jobs to the target.
    Copy,
    /// Reading the source back to verify it.
    VerifySource,
    /// Reading the target back to verify it.
    VerifyTarget,
}
