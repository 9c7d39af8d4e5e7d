//! Workload 7: the peak RSS of a worker process while a big backlog is pending.

use crate::args::Args;
use crate::report::Row;
use crate::util::Scratch;
use crate::{child, pool, BenchResult};

/// Fills a file with `--rss-pending` jobs, then a child process with 4 workers
/// runs `--rss-run` of them and reports its VmHWM.
pub fn run(args: &Args, scratch: &Scratch) -> BenchResult<Vec<Row>> {
    if !args.wants("rss") {
        return Ok(Vec::new());
    }
    let path = scratch.file("rss");
    pool::backlog(&path, args.rss_pending, 0)?;
    let extra = [
        "--workers".to_string(),
        "4".to_string(),
        "--rss-run".to_string(),
        args.rss_run.to_string(),
    ];
    let out = child::spawn("rss", &path, &extra)?.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("rss child failed: {}", out.status).into());
    }
    let kib: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Scratch::remove(&path);
    let name = format!(
        "peak RSS (VmHWM), worker process, 4 workers, {} pending",
        args.rss_pending
    );
    Ok(vec![Row::new(name, "MiB", vec![kib / 1024.0])
        .lower()
        .at_most(64.0)])
}
