//! The integration test binary: black-box tests of the library, the `jobq`
//! binary and its HTTP server, on real SQLite files.

mod child;
mod cli;
mod cli_config;
mod cli_handlers;
mod main_job;
mod store_open;
mod store_reads;
mod store_transitions;
mod util;
mod worker_crash;
mod worker_pool;
