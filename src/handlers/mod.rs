//! Built-in handlers: exec (run a program), webhook (POST to a URL) and prune (the
//! audit cleanup), and the registry a config declares.

pub mod exec;
pub mod prune;
#[cfg(test)]
mod tests;
pub mod webhook;

use std::time::Duration;

use crate::config::{Config, HandlerConfig, HandlerKind, PRUNE_JOB_TYPE};
use crate::queue::Queue;
use crate::retry::Backoff;
use crate::worker::{HandlerOptions, Registry};

pub use exec::ExecHandler;
pub use webhook::WebhookHandler;

/// Added to a handler's own timeout to give the pool's timeout: the exec and
/// webhook handlers stop at their timeout themselves; the pool's is a backstop.
const POOL_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);

/// The registry of every type `config` declares (see [`Config::declared_types`]):
/// an [`ExecHandler`] or a [`WebhookHandler`] per `[handlers.NAME]`, and
/// `jobq.prune` on `queue`. Also gives `queue` each type's backoff schedule.
pub fn registry_from_config(config: &Config, queue: &Queue) -> Registry {
    let mut registry = Registry::new();
    for (name, handler) in &config.handlers {
        register(&mut registry, name, handler);
    }
    let prune = prune::prune_handler(queue.clone(), config.prune);
    registry.register(PRUNE_JOB_TYPE, prune);
    registry.apply_backoffs(queue);
    registry
}

/// The job types `config` declares, sorted (always including `jobq.prune`).
pub fn declared_types(config: &Config) -> Vec<String> {
    config.declared_types()
}

fn register(registry: &mut Registry, name: &str, handler: &HandlerConfig) {
    let options = options_of(handler);
    match &handler.kind {
        HandlerKind::Command(argv) => {
            let exec = ExecHandler::new(argv.clone(), handler.timeout);
            registry.register_with(name, options, exec)
        }
        HandlerKind::Url(url) => {
            let webhook = WebhookHandler::new(url.clone(), handler.timeout);
            registry.register_with(name, options, webhook)
        }
    };
}

fn options_of(handler: &HandlerConfig) -> HandlerOptions {
    HandlerOptions {
        timeout: handler.timeout.map(|t| t + POOL_TIMEOUT_MARGIN),
        backoff: handler.backoff.clone().map(Backoff::new),
    }
}
