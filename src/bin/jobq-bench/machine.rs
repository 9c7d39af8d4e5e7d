//! What the machine's cores can do together: a pool runs its jobs beside the
//! thread writing its rounds, and gains from that only where two threads run
//! at once at full speed. Some virtual machines report two vCPUs that share
//! one core's time: each of two busy threads then runs at half speed, and
//! the drain rows' ratios to a single-threaded raw loop mean something else.

use std::time::Instant;

use crate::args::Args;
use crate::report::Row;
use crate::util::Scratch;
use crate::BenchResult;

/// Steps of the CPU-bound loop: about 50-100 ms alone on a current core.
const STEPS: u64 = 100_000_000;

/// A CPU-bound loop that touches no memory: its time measures only the core.
fn spin(steps: u64) -> u64 {
    let mut x: u64 = 1;
    for _ in 0..steps {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// Seconds `threads` threads take to run the loop once each, all at once.
fn together(threads: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| spin(STEPS));
        }
    });
    started.elapsed().as_secs_f64()
}

/// The speed-up of two threads (or as many as the machine has, if fewer)
/// over one: 2.0 on two real cores, 1.0 where they share one core's time.
pub fn run(args: &Args, _scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("machine cores") {
        return Ok(Vec::new());
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let runs = (0..args.runs.max(1))
        .map(|_| {
            let one = together(1);
            let many = together(n);
            n as f64 * one / many
        })
        .collect();
    let name = format!("machine cores: {n} CPU-bound threads' speed-up over 1 (ideal {n})");
    Ok(vec![Row::new(name, "x", runs)])
}
