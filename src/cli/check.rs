//! `jobq check`: what `work` and `serve` check before they start (the config,
//! every handler's program or URL), printed without starting anything.

use crate::cli::table::{count, emit, Table};
use crate::cli::{CliError, CliResult, Context};
use crate::handlers::check_handlers;

/// Refuses to start when a handler cannot run (exit 2 naming it).
///
/// # Errors
/// A usage error naming the first handler that cannot run.
pub fn require_runnable(ctx: &Context) -> CliResult {
    match check_handlers(&ctx.config)
        .into_iter()
        .find_map(|(name, problem)| problem.map(|p| (name, p)))
    {
        Some((name, problem)) => Err(CliError::Usage(format!(
            "handler {name} cannot run: {problem} (`jobq check` lists every handler)"
        ))),
        None => Ok(()),
    }
}

/// Runs `jobq check`: one line per handler, exit 2 when any cannot run.
pub fn run(ctx: &Context) -> CliResult {
    let verdicts = check_handlers(&ctx.config);
    let mut t = Table::new(&["HANDLER", "VERDICT"]);
    for (name, problem) in &verdicts {
        t.row(vec![
            name.clone(),
            problem.clone().unwrap_or_else(|| "ok".into()),
        ]);
    }
    let catalog = ctx.config.catalog();
    let schedules: Vec<&str> = catalog.schedules().map(|s| s.name()).collect();
    let bad = verdicts.iter().filter(|(_, p)| p.is_some()).count();
    // "ok" only when every handler can run; the file itself was read either way.
    let verdict = if bad == 0 { "config ok" } else { "config read" };
    emit(&format!(
        "{}\n{verdict}: {}, {} declared, schedules: {}",
        t.render(),
        count(catalog.names().len(), "job type"),
        count(catalog.queues().count(), "queue"),
        if schedules.is_empty() {
            "none".into()
        } else {
            schedules.join(", ")
        }
    ))?;
    if bad > 0 {
        let handlers = count(bad, "handler");
        return Err(CliError::Usage(format!("{handlers} cannot run")));
    }
    Ok(())
}
