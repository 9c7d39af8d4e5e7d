//! The integration test binary: black-box tests of the library, the `jobq`
//! binary and its HTTP server, on real SQLite files.

mod child;
mod cli;
mod cli_config;
mod cli_handlers;
mod fuzz_payload;
mod http_admin;
mod http_api;
mod http_auth;
mod http_cli;
mod http_limits;
mod http_util;
mod log_capture;
mod main_job;
mod powercut_check;
mod powercut_drivers;
mod powercut_fs;
mod powercut_fuse;
mod rel_cli_files;
mod rel_clock;
mod rel_contention;
mod rel_crash;
mod rel_disk;
mod rel_errtext;
mod rel_hostile;
mod rel_http_fuzz;
mod rel_http_hostile;
mod rel_lock;
mod rel_powercut;
mod rel_readonly;
mod store_open;
mod store_reads;
mod store_transitions;
mod util;
mod worker_crash;
mod worker_pool;
