//! One finished call, as the access log writes it and the call log stores
//! it: built once in the proxy's `logging` phase and shared (an `Arc`) by
//! both writers, so recording it twice costs one allocation.

use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One request, as logged.
#[derive(Debug, Serialize)]
pub(crate) struct CallRecord {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub request_id: String,
    #[serde(serialize_with = "ip_or_empty")]
    pub client_ip: Option<IpAddr>,
    #[serde(serialize_with = "method_str")]
    pub method: http::Method,
    pub host: String,
    pub path: String,
    pub route: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Arc<str>>,
    /// The team that owns the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_team: Option<Arc<str>>,
    /// The consumer (the application) the credential belongs to, or a
    /// token's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Arc<str>>,
    /// The application's team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<Arc<str>>,
    /// The credential's id (never the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<str>>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    #[serde(
        rename = "upstream_ms",
        serialize_with = "opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_time: Option<Duration>,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Set on AI routes and prompt APIs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai: Option<Box<AiFields>>,
    /// The MCP tools called (comma-separated when a batch called several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_tool: Option<Arc<str>>,
    /// What the route's call-log policy captured (the call log only).
    #[serde(skip)]
    pub capture: Option<Box<Captured>>,
    /// The call log keeps a raw record of it (the rollups count every call).
    #[serde(skip)]
    pub keep: bool,
}

/// The AI part of a record.
#[derive(Debug, Serialize)]
pub(crate) struct AiFields {
    /// The model the client asked for (an alias or `provider/model`).
    pub model: String,
    pub provider: String,
    /// The provider's model that answered.
    pub provider_model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: f64,
    /// The provider reported no usage (or not all of it): the tokens are
    /// Portico's estimate, charged like reported ones.
    pub usage_estimated: bool,
    /// The model has no price: `cost_usd` is 0 because nothing is known.
    pub unpriced: bool,
    /// Provider requests sent, the answering one included.
    pub attempts: u32,
    /// `hit` when the route's AI cache answered (nothing charged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
}

/// Headers and bodies captured for the call log, already capped and
/// redacted.
#[derive(Debug, Serialize, Default, Clone, PartialEq)]
pub(crate) struct Captured {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// A body was longer than the cap and was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

fn ip_or_empty<S: serde::Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
    match ip {
        Some(ip) => s.collect_str(ip),
        None => s.serialize_str(""),
    }
}

fn method_str<S: serde::Serializer>(m: &http::Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

impl CallRecord {
    /// Unix milliseconds of the record's time.
    pub(crate) fn unix_ms(&self) -> i64 {
        self.time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
