//! Observability: Prometheus metrics, the record of one call ([`call`]) and
//! the JSON access log. The admin listener that exposes the metrics is
//! served by [`crate::serve::admin`]; the call log, which stores the same
//! records, is [`crate::calllog`].

pub(crate) mod access_log;
pub(crate) mod call;
pub(crate) mod clock;
pub(crate) mod labels;
pub(crate) mod metrics;
