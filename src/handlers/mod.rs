//! Built-in handlers: exec (run a program), webhook (POST to a URL) and prune (the
//! audit cleanup), and the registry a config declares.

pub mod exec;
pub mod prune;
#[cfg(test)]
mod tests;
pub mod webhook;

use crate::config::{Config, HandlerConfig, HandlerKind, PRUNE_JOB_TYPE};
use jobq::Queue;
use jobq::Registry;

pub use exec::ExecHandler;
pub use webhook::WebhookHandler;

/// The registry of every type `config` declares (see [`Config::catalog`]):
/// an [`ExecHandler`] or a [`WebhookHandler`] per `[handlers.NAME]`, and
/// `jobq.prune` on `queue`. Per-type settings (timeouts, retries) come from the
/// queue's catalogue ([`Config::catalog`]).
pub fn registry_from_config(config: &Config, queue: &Queue) -> Registry {
    let mut registry = Registry::new();
    for (name, handler) in &config.handlers {
        register(&mut registry, name, handler);
    }
    let prune = prune::prune_handler(queue.clone(), config.prune.clone());
    registry.register(PRUNE_JOB_TYPE, prune);
    registry
}

fn register(registry: &mut Registry, name: &str, handler: &HandlerConfig) {
    match &handler.kind {
        HandlerKind::Command(argv) => {
            let exec = ExecHandler::new(argv.clone(), handler.timeout)
                .env(handler.env.clone())
                .inherit_env(handler.inherit_env);
            registry.register(name, exec)
        }
        HandlerKind::Url(url) => {
            let webhook = WebhookHandler::new(url.clone(), handler.timeout);
            registry.register(name, webhook)
        }
    };
}

/// Whether each declared handler can run, checked before anything starts: an
/// exec program must exist and be executable (looked up on `PATH` when it has
/// no `/`); a webhook URL was checked when the config was read. Returns the
/// handlers and their problem, if any, sorted by name.
pub fn check_handlers(config: &Config) -> Vec<(String, Option<String>)> {
    config
        .handlers
        .iter()
        .map(|(name, h)| {
            let problem = match &h.kind {
                HandlerKind::Command(argv) => exec::check_program(&argv[0]).err(),
                HandlerKind::Url(_) => None,
            };
            (name.clone(), problem)
        })
        .collect()
}
