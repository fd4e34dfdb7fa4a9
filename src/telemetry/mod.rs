//! Observability: Prometheus metrics and the JSON access log. The admin
//! listener that exposes the metrics is served by [`crate::serve::admin`].

pub(crate) mod access_log;
pub(crate) mod labels;
pub(crate) mod metrics;
