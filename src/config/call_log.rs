//! The call log's part of the YAML schema: `server.call_log` (where records
//! go and how long they are kept) and the `call_log` of a service or a route
//! (sampling, and what of a call is captured). Compiled by
//! [`crate::calllog::policy`].

use super::units::{ConfDuration, ConfSize};
use serde::Deserialize;
use std::time::Duration;

const DAY: u64 = 86_400;

/// `server.call_log`: the record of every call, in its own database.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallLogConfig {
    /// Record calls. Default: on in store mode, off in file mode (where
    /// giving `server.call_log` at all turns it on).
    pub enabled: Option<bool>,
    /// The database (`sqlite://PATH` or `postgres://...`). Default:
    /// `sqlite://<state_dir>/calls.db`, apart from the config store.
    pub url: Option<String>,
    /// Records queued for the writer before new ones are dropped (and
    /// counted in `portico_call_log_dropped_total`).
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Successful calls at least this slow are always kept, whatever a
    /// route's sampling.
    #[serde(default = "default_slow")]
    pub slow: ConfDuration,
    #[serde(default)]
    pub retention: RetentionConfig,
}

impl Default for CallLogConfig {
    fn default() -> Self {
        CallLogConfig {
            enabled: None,
            url: None,
            buffer: default_buffer(),
            slow: default_slow(),
            retention: RetentionConfig::default(),
        }
    }
}

/// How long records and rollups are kept. Raw records go when they are
/// older than `raw_age` or when the database outgrows `raw_size`, oldest
/// first, whichever comes first.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionConfig {
    #[serde(default = "default_raw_age")]
    pub raw_age: ConfDuration,
    #[serde(default = "default_raw_size")]
    pub raw_size: ConfSize,
    /// Per-minute rollups.
    #[serde(default = "default_minute")]
    pub minute: ConfDuration,
    /// Hourly rollups.
    #[serde(default = "default_hour")]
    pub hour: ConfDuration,
    /// Daily rollups.
    #[serde(default = "default_day")]
    pub day: ConfDuration,
    /// How often retention looks for work (it runs in small steps between
    /// batches while there is some).
    #[serde(default = "default_interval")]
    pub interval: ConfDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw_age: default_raw_age(),
            raw_size: default_raw_size(),
            minute: default_minute(),
            hour: default_hour(),
            day: default_day(),
            interval: default_interval(),
        }
    }
}

/// The `call_log` of a service or a route (a route's replaces its
/// service's): which calls keep a raw record, and what is captured.
#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CallPolicyConfig {
    /// The share (0 to 1) of successful, fast, non-AI calls that keep a raw
    /// record; errors, slow calls and AI calls are always kept, and the
    /// rollups count every call. Default 1.
    pub sample: Option<f64>,
    /// Capture headers and bodies (off unless given).
    pub capture: Option<CaptureConfig>,
}

/// What of a call is stored with its record, capped and redacted first.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Request and response headers.
    #[serde(default = "yes")]
    pub headers: bool,
    /// Request and response bodies, each up to `max_body`.
    #[serde(default = "yes")]
    pub bodies: bool,
    #[serde(default = "default_max_body")]
    pub max_body: ConfSize,
    /// More headers to redact, beyond the credential and cookie headers
    /// that always are.
    #[serde(default)]
    pub redact_headers: Vec<String>,
    /// JSON fields (by name, at any depth) whose values are redacted in
    /// captured bodies.
    #[serde(default)]
    pub redact_fields: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_buffer() -> usize {
    65_536
}
fn default_slow() -> ConfDuration {
    ConfDuration(Duration::from_secs(1))
}
fn default_raw_age() -> ConfDuration {
    ConfDuration(Duration::from_secs(7 * DAY))
}
fn default_raw_size() -> ConfSize {
    ConfSize(20 * 1024 * 1024 * 1024)
}
fn default_minute() -> ConfDuration {
    ConfDuration(Duration::from_secs(7 * DAY))
}
fn default_hour() -> ConfDuration {
    ConfDuration(Duration::from_secs(90 * DAY))
}
fn default_day() -> ConfDuration {
    ConfDuration(Duration::from_secs(5 * 365 * DAY))
}
fn default_interval() -> ConfDuration {
    ConfDuration(Duration::from_secs(60))
}
fn default_max_body() -> ConfSize {
    ConfSize(8 * 1024)
}

impl super::ServerConfig {
    /// The call log's settings when calls are recorded: always when
    /// `enabled: true`, never when `false`; otherwise in store mode, or in
    /// file mode when `server.call_log` is given.
    pub(crate) fn call_log_on(&self) -> Option<CallLogConfig> {
        let given = self.call_log.clone();
        let on = given
            .as_ref()
            .and_then(|c| c.enabled)
            .unwrap_or(self.store.is_some() || given.is_some());
        on.then(|| given.unwrap_or_default())
    }

    /// Where the call log is kept.
    pub(crate) fn call_log_url(&self, cfg: &CallLogConfig) -> String {
        cfg.url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.state_dir.join("calls.db").display()))
    }
}
