//! `jobq work`: a worker pool with the config's handlers, until SIGTERM/SIGINT
//! (graceful; a second signal forces exit) or, with `--drain`, until idle.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::handlers::registry_from_config;
use clap::Args;
use jobq::{WorkerConfig, WorkerPool};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::{CliError, CliResult, Context};

/// How often a draining pool looks for a signal.
const DRAIN_TICK: Duration = Duration::from_millis(100);

/// `jobq work`.
#[derive(Debug, Args)]
pub struct WorkArgs {
    /// Worker threads (jobs running at once) [default: [workers] count, else 4].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
    workers: Option<u16>,
    /// Stop once no job is due and none is running (jobs due later are left
    /// pending, and said so).
    #[arg(long)]
    drain: bool,
    /// With --drain: also wait for the jobs due later (delays, backoffs) this
    /// pool serves, until none is left pending.
    #[arg(long, requires = "drain")]
    wait: bool,
    /// Serve only these queues, comma-separated [default: every queue].
    #[arg(long, value_delimiter = ',', value_parser = parse_queue)]
    queues: Option<Vec<String>>,
}

/// A queue name from the command line.
pub(crate) fn parse_queue(text: &str) -> Result<String, String> {
    jobq::validate_queue_name(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// A job type from the command line (a filter: `list`, `retry`, `cancel`).
pub(crate) fn parse_job_type(text: &str) -> Result<String, String> {
    jobq::validate_job_type(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// Runs `jobq work`.
pub fn run(ctx: &Context, args: WorkArgs) -> CliResult {
    let mode = match (args.drain, args.wait) {
        (false, _) => Mode::Forever,
        (true, false) => Mode::Drain,
        (true, true) => Mode::DrainAndWait,
    };
    run_pool(ctx, args.workers.map(usize::from), mode, args.queues)
}

/// How long a pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until a signal.
    Forever,
    /// Until no job is due and none is running.
    Drain,
    /// Until no job it serves is pending at all (waiting out delays and backoffs).
    DrainAndWait,
}

/// Runs a pool with the config's handlers until a signal (graceful shutdown with
/// `[workers] shutdown_grace`) or, when `drain`, until nothing is due or running.
///
/// # Errors
/// A runtime error when the database cannot be opened or the pool cannot start.
pub fn run_pool(
    ctx: &Context,
    workers: Option<usize>,
    mode: Mode,
    queues: Option<Vec<String>>,
) -> CliResult {
    crate::cli::check::require_runnable(ctx)?;
    let queue = ctx.open()?;
    let mut config = ctx.config.worker_config();
    config.workers = workers.unwrap_or(config.workers);
    config.drain = mode != Mode::Forever;
    config.queues = queues;
    let signals = listen_for_signals()?;
    // A drain's passes (`--wait` starts a pool per pass), told once at its end.
    let mut total = DrainTotal::default();
    let result = loop {
        let registry = registry_from_config(&ctx.config, &queue);
        let types = registry.types();
        let pool = WorkerPool::start(queue.clone(), registry, config.clone())?;
        let stopped = match mode {
            Mode::Forever => {
                wait_for_signal(&signals);
                true
            }
            _ => !wait_drained(&pool, &signals),
        };
        let failed = pool.drain_error();
        let counts = pool.shutdown(ctx.config.workers.shutdown_grace);
        total.add(&counts);
        if let Some(e) = failed {
            break Err(CliError::Runtime(format!("the drain stopped: {e}")));
        }
        if stopped || mode == Mode::Forever {
            break Ok(());
        }
        let left = report_drained(
            &queue,
            &types,
            config.queues.as_deref(),
            mode == Mode::DrainAndWait,
        );
        let ran = counts.started > 0;
        match after_pass(mode, left, ran, queue.now(), config.poll_interval) {
            After::Stop => break Ok(()),
            After::Again => log::debug!("a job became due as the drain ended: draining again"),
            After::SleepUntil(due) => {
                // The wait serves too: a pool that is not draining runs the
                // jobs enqueued meanwhile, fires the schedules and is listed
                // among the workers; it stops once `due` has passed and none
                // of its handlers runs (then the next pass drains, and ends
                // the drain on a database error that does not pass).
                let serving = WorkerConfig {
                    drain: false,
                    quiet_lifecycle: true,
                    ..config.clone()
                };
                let registry = registry_from_config(&ctx.config, &queue);
                let pool = WorkerPool::start(queue.clone(), registry, serving)?;
                let waited = serve_until(&queue, &pool, due, &signals);
                total.add_wait(&pool.shutdown(ctx.config.workers.shutdown_grace));
                if !waited {
                    break Ok(());
                }
            }
        }
    };
    if mode != Mode::Forever {
        log::info!("drain ended after {}: {}", total.passes(), total.counts);
    }
    result
}

/// What a drain's pools did, over its passes.
#[derive(Default)]
struct DrainTotal {
    counts: jobq::PoolCounts,
    passes: u64,
}

impl DrainTotal {
    fn add(&mut self, c: &jobq::PoolCounts) {
        self.counts += *c;
        self.passes += 1;
    }

    /// What the pool that served a wait between passes did (not a pass).
    fn add_wait(&mut self, c: &jobq::PoolCounts) {
        self.counts += *c;
    }

    fn passes(&self) -> String {
        match self.passes {
            1 => "1 pass".into(),
            n => format!("{n} passes"),
        }
    }
}

/// What a drain left of the jobs it serves (see [`report_drained`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Left {
    /// Due now, outside paused queues: they became due as the pool ended (a
    /// snooze or a backoff ending just after its last claim), or a queue's
    /// concurrency or rate limit holds them.
    ready: u64,
    /// When the earliest of those due later (a delay, a backoff) is due (UTC).
    next_due: Option<jobq::Timestamp>,
}

/// What a drain does after a pass of its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// It is done.
    Stop,
    /// Another pass at once.
    Again,
    /// Another pass at this time (queue's clock, UTC).
    SleepUntil(jobq::Timestamp),
}

/// The rule after a drain pass that `ran` jobs (or none) and `left` these:
/// - due jobs left after a pass that ran jobs: one became due as the pass
///   ended; another pass at once (both `--drain` and `--drain --wait`).
/// - due jobs left after a pass that ran none: a queue's limit holds them;
///   `--drain` stops, `--drain --wait` looks again after `poll` (the pool's
///   poll interval), or when the next job waiting out a delay is due if that
///   is sooner.
/// - else `--drain --wait` sleeps until the next job waiting out a delay is
///   due, and stops when none waits; `--drain` stops.
fn after_pass(mode: Mode, left: Left, ran: bool, now: jobq::Timestamp, poll: Duration) -> After {
    let waits = mode == Mode::DrainAndWait;
    if left.ready > 0 {
        if ran {
            return After::Again;
        }
        if waits {
            let look = now.plus(poll);
            return After::SleepUntil(left.next_due.map_or(look, |t| t.min(look)));
        }
        return After::Stop;
    }
    match left.next_due {
        Some(t) if waits => After::SleepUntil(t),
        _ => After::Stop,
    }
}

/// Waits for the drain; false when a signal came first.
fn wait_drained(pool: &WorkerPool, signals: &Receiver<()>) -> bool {
    while !pool.wait(DRAIN_TICK) {
        if signals.try_recv().is_ok() {
            return false;
        }
    }
    true
}

/// Says what a drain left: jobs it serves waiting out a delay or a backoff
/// (how many, the next due time), due jobs it serves that it left (see
/// [`Left::ready`]), and due jobs it does not serve. Returns what it left of
/// the jobs it serves.
fn report_drained(
    queue: &jobq::Queue,
    types: &[String],
    queues: Option<&[String]>,
    waits: bool,
) -> Left {
    let waiting = match queue.waiting() {
        Ok(w) => w,
        Err(e) => {
            log::warn!("drained, but could not count what waits: {e}");
            return Left::default();
        }
    };
    let serves = |t: &str, q: &str| {
        types.iter().any(|x| x == t) && queues.is_none_or(|qs| qs.iter().any(|x| x == q))
    };
    let (mine, others): (Vec<_>, Vec<_>) =
        waiting.iter().partition(|w| serves(&w.job_type, &w.queue));
    // A paused queue's jobs wait for its resume, not for this pool: named,
    // and not waited for (--wait would wait until someone resumes it).
    let (paused, mine): (Vec<_>, Vec<_>) = mine.into_iter().partition(|w| w.paused);
    let held: Vec<String> = paused
        .iter()
        .filter(|w| w.ready + w.later > 0)
        .map(|w| format!("{} {} (queue {})", w.ready + w.later, w.job_type, w.queue))
        .collect();
    if !held.is_empty() {
        log::warn!(
            "jobs left in paused queues, not waited for (`jobq queue resume NAME`): {}",
            held.join(", ")
        );
    }
    let later: u64 = mine.iter().map(|w| w.later).sum();
    let ready: u64 = mine.iter().map(|w| w.ready).sum();
    let next = mine.iter().filter_map(|w| w.next_due).min();
    let jobs = if later == 1 { "job waits" } else { "jobs wait" };
    let hint = if waits {
        "waiting for it"
    } else {
        "--wait waits for them"
    };
    // Due jobs it serves found after the pool's last claim: one became due as
    // the pool ended, or a queue's limit holds them (see `after_pass`).
    let head = if ready == 0 {
        "drained: no job is due and none is running".to_string()
    } else {
        let jobs = if ready == 1 { "job" } else { "jobs" };
        format!(
            "drained: none is running, but {ready} due {jobs} it serves left (due as the \
             pool ended, or held by a queue's concurrency or rate limit)"
        )
    };
    match next {
        Some(t) => log::info!(
            "{head}; {later} {jobs} out a delay or a backoff, the next due at {} ({hint})",
            t.to_rfc3339()
        ),
        None => log::info!("{head}"),
    }
    report_held_elsewhere(queue, types, queues);
    let unserved: Vec<&jobq::Waiting> = others
        .into_iter()
        .filter(|w| w.ready > 0 && !w.paused)
        .collect();
    if !unserved.is_empty() {
        log::warn!(
            "due jobs left that this pool does not serve: {}",
            crate::cli::inspect::waiting_list(unserved)
        );
    }
    Left {
        ready,
        next_due: next,
    }
}

/// Says which other pools that serve some of this pool's jobs (a type and a
/// queue in common) hold jobs in progress, running or reserved by their
/// prefetch (this pool has stopped and left the list): a drain does not wait
/// for them, and the jobs of a pool that died come back only when their
/// leases expire (or at once with `jobq recover`), which the drain would
/// otherwise leave unsaid. The counts are each pool's whole.
fn report_held_elsewhere(queue: &jobq::Queue, types: &[String], queues: Option<&[String]>) {
    let pools = match queue.workers() {
        Ok(p) => p,
        Err(e) => {
            log::warn!("drained, but could not list other pools: {e}");
            return;
        }
    };
    let holding: Vec<&jobq::WorkerInfo> = pools
        .iter()
        .filter(|w| {
            let queue_in_common = match (queues, &w.queues) {
                (Some(mine), Some(theirs)) => mine.iter().any(|q| theirs.contains(q)),
                _ => true,
            };
            held(w) > 0 && queue_in_common && w.types.iter().any(|t| types.contains(t))
        })
        .collect();
    if holding.is_empty() {
        return;
    }
    let list = holding
        .iter()
        .map(|w| held_by(w))
        .collect::<Vec<_>>()
        .join(", ");
    let total: u64 = holding.iter().map(|w| held(w)).sum();
    let jobs = if total == 1 { "job is" } else { "jobs are" };
    log::info!(
        "{total} {jobs} in progress in other pools, not waited for: {list}; \
         a dead pool's jobs come back when their leases (reserved jobs: their \
         reservations) expire \
         (at once: `jobq recover --worker NAME` once its heartbeat is stale)"
    );
}

/// The jobs pool `w` holds in progress: running, and reserved by its prefetch.
fn held(w: &jobq::WorkerInfo) -> u64 {
    w.running + w.reserved
}

/// Pool `w` and what it holds: `host:1:ab (2 running, 10 reserved)`.
fn held_by(w: &jobq::WorkerInfo) -> String {
    let reserved = match w.reserved {
        0 => String::new(),
        n => format!(", {n} reserved"),
    };
    let state = if w.alive { "" } else { ", heartbeat stale" };
    format!("{} ({} running{reserved}{state})", w.id, w.running)
}

/// Waits until `due` (by the queue's clock) has passed and none of `pool`'s
/// handlers runs (see [`WorkerPool::is_idle`]), or a signal: false on a
/// signal.
fn serve_until(
    queue: &jobq::Queue,
    pool: &WorkerPool,
    due: jobq::Timestamp,
    signals: &Receiver<()>,
) -> bool {
    loop {
        let now = queue.now();
        if now >= due && pool.is_idle() {
            return true;
        }
        let tick = if now < due {
            due.since(now).min(DRAIN_TICK)
        } else {
            DRAIN_TICK
        };
        if matches!(
            signals.recv_timeout(tick),
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected)
        ) {
            return false;
        }
    }
}

/// Waits for the first SIGTERM/SIGINT.
pub(crate) fn wait_for_signal(signals: &Receiver<()>) {
    let _ = signals.recv();
}

/// Signals this soon after the first belong to the same stop: GNU `timeout`
/// sends SIGTERM to the program and then to its process group, and a shell
/// may signal a whole group, so one stop can arrive twice within
/// microseconds. A person asking again to force the exit takes longer.
const SAME_STOP: Duration = Duration::from_millis(250);

/// The first SIGTERM/SIGINT is sent on the channel; another one, at least
/// [`SAME_STOP`] later, exits at once (running jobs go back to pending when
/// their leases expire).
pub(crate) fn listen_for_signals() -> CliResult<Receiver<()>> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| CliError::io("installing signal handlers", e))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first: Option<Instant> = None;
        for signal in signals.forever() {
            match first {
                None => {
                    log::warn!(
                        "signal {signal}: finishing running jobs (signal again to force exit)"
                    );
                    first = Some(Instant::now());
                    let _ = tx.send(());
                }
                Some(t) if t.elapsed() < SAME_STOP => {
                    log::debug!("signal {signal}: part of the same stop, ignored");
                }
                Some(_) => {
                    eprintln!("jobq: second signal: exiting now; running jobs return to pending when their leases expire");
                    std::process::exit(1);
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobq::Timestamp;

    const NOW: Timestamp = Timestamp(1_764_504_000_000);
    const POLL: Duration = Duration::from_secs(1);

    fn left(ready: u64, next_due: Option<Timestamp>) -> Left {
        Left { ready, next_due }
    }

    #[test]
    fn a_drain_goes_on_while_a_job_it_serves_is_due_and_waits_only_with_wait() {
        let (soon_at, later_at) = (
            NOW.plus(Duration::from_millis(300)),
            NOW.plus(Duration::from_secs(60)),
        );
        let (soon, later) = (Some(soon_at), Some(later_at));
        let (d, w) = (Mode::Drain, Mode::DrainAndWait);
        let table = [
            // A job became due as a pass that ran jobs ended: another pass.
            (d, left(1, None), true, After::Again),
            (w, left(1, later), true, After::Again),
            // Due jobs after a pass that ran none: a queue's limit holds them.
            (d, left(2, None), false, After::Stop),
            (w, left(2, None), false, After::SleepUntil(NOW.plus(POLL))),
            (w, left(2, soon), false, After::SleepUntil(soon_at)),
            (w, left(2, later), false, After::SleepUntil(NOW.plus(POLL))),
            // Nothing due: --wait sleeps until the next delay ends.
            (d, left(0, later), true, After::Stop),
            (w, left(0, later), true, After::SleepUntil(later_at)),
            (w, left(0, None), true, After::Stop),
            (d, left(0, None), false, After::Stop),
        ];
        for (mode, left, ran, want) in table {
            assert_eq!(
                after_pass(mode, left, ran, NOW, POLL),
                want,
                "{mode:?} {left:?} ran={ran}"
            );
        }
    }

    #[test]
    fn a_pool_that_holds_jobs_is_named_with_what_it_runs_and_reserves() {
        let pool = |running, reserved, alive| jobq::WorkerInfo {
            id: "host:1:ab".into(),
            types: vec!["email".into()],
            queues: None,
            started_at: NOW,
            heartbeat_at: NOW,
            alive,
            running,
            reserved,
        };
        let table = [
            (pool(2, 0, true), 2, "host:1:ab (2 running)"),
            (pool(0, 10, true), 10, "host:1:ab (0 running, 10 reserved)"),
            (
                pool(1, 3, false),
                4,
                "host:1:ab (1 running, 3 reserved, heartbeat stale)",
            ),
        ];
        for (w, n, line) in table {
            assert_eq!(held(&w), n);
            assert_eq!(held_by(&w), line);
        }
    }
}
