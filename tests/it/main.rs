//! The integration test binary: one module per area.

mod http_api;
mod http_auth;
mod http_limits;
mod http_util;
