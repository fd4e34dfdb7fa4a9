//! Observability: Prometheus metrics, the JSON access log, and the admin
//! endpoints that expose them.

pub mod access_log;
pub mod admin;
pub mod metrics;
