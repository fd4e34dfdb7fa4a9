//! The YAML schema: plain serde structs with `deny_unknown_fields`, so a typo
//! is an error rather than a silently ignored key. Defaults live here; the
//! cross-field checks live in `validate.rs`.

use super::units::{ConfDuration, ConfSize};
use super::{ConsumerConfig, PolicyConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Clients and their credentials, for the auth policies.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    /// LLM providers, model aliases, prices and budgets for `ai` routes and prompt APIs.
    pub ai: Option<crate::config::ai::AiConfig>,
    /// Prompt templates published as REST APIs.
    #[serde(default)]
    pub prompt_apis: Vec<crate::config::ai::PromptApiConfig>,
    /// Policies run before each route's own, unless the route sets `skip_default_policies`.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub default_policies: Vec<PolicyConfig>,
    /// Named sets of routes with an owner and a subscription rule.
    #[serde(default)]
    pub services: Vec<super::ServiceConfig>,
    /// Which applications may call which services.
    #[serde(default)]
    pub subscriptions: Vec<super::SubscriptionConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerConfig {
    /// Store mode: the database that holds every section but `server`
    /// (`sqlite://PATH` or `postgres://...`). Without it, file mode.
    pub store: Option<String>,
    /// Where store mode keeps the last config it compiled, to serve when the
    /// store is unreachable at start; and where file mode keeps AI budget
    /// spend across restarts (`spend.db`; store mode keeps it in the store).
    #[serde(default = "default_state_dir")]
    pub state_dir: std::path::PathBuf,
    /// The key secrets are sealed under (32 bytes: hex, base64 or raw; keep
    /// it 0600). `PORTICO_SECRETS_KEY` overrides it; store mode without
    /// either keeps one in `state_dir/secrets-key`. Read once per process.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// Where clients connect. Default: one plain HTTP listener on 0.0.0.0:8080.
    #[serde(default = "default_listeners")]
    pub listeners: Vec<ListenerConfig>,
    /// Worker threads per listening service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Let idle worker threads steal tasks from busy ones (one tokio runtime
    /// for all threads). Off by default: each thread runs its own event loop,
    /// like nginx's workers, and each plain HTTP/1 connection goes to the
    /// thread with the fewest open ones (`crate::serve::workers`). Measured faster
    /// and smaller at 1, 2 and 8 threads (bench/TUNING.md, change 11).
    #[serde(default)]
    pub work_stealing: bool,
    /// Idle upstream connections kept for reuse, across all upstreams.
    #[serde(default = "default_keepalive_pool")]
    pub upstream_keepalive_pool_size: usize,
    /// How long an old process keeps serving after a graceful upgrade or shutdown begins.
    #[serde(default = "default_grace")]
    pub grace_period: ConfDuration,
    /// Hard deadline for in-flight requests once the grace period is over.
    #[serde(default = "default_grace")]
    pub graceful_shutdown_timeout: ConfDuration,
    #[serde(default = "default_pid_file")]
    pub pid_file: String,
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
    /// Admin listener for /metrics, /healthz and /readyz; omit to disable.
    #[serde(default = "default_admin")]
    pub admin: Option<String>,
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// The call log: a record of every call in its own database, with
    /// rollups, retention and the admin API's queries.
    pub call_log: Option<super::CallLogConfig>,
    /// The web console (store mode): sign-in through OpenID Connect.
    #[serde(default)]
    pub console: super::ConsoleConfig,
    /// How long a client connection may wait between requests before it is
    /// closed (whole seconds). Read at start; a change needs `portico upgrade`.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: ConfDuration,
    /// How long a client may take to send a whole request head, from its
    /// first byte (nginx's `client_header_timeout`); then 408. Read at start.
    #[serde(default = "default_request_timeout")]
    pub request_head_timeout: ConfDuration,
    /// How long one read of a request body may wait (nginx's
    /// `client_body_timeout`); then 408. Read at start.
    #[serde(default = "default_request_timeout")]
    pub request_body_timeout: ConfDuration,
    /// Largest request head (request line and headers) accepted; larger gets
    /// 431. A reload may lower it; raising it takes `portico upgrade`, since
    /// HTTP/1 heads are read with the value the process started with.
    #[serde(default = "default_max_header_size")]
    pub max_header_size: ConfSize,
    /// Proxies (CIDRs) whose X-Forwarded-For is believed when finding the client address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Header that tells the upstream which consumer was identified; a client's own copy is always removed.
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
    /// What to do with `%2F` and `%5C` in a path: `reject` (400) or `keep` (passed on encoded).
    #[serde(default)]
    pub encoded_slashes: EncodedSlashes,
    /// Match routes case-insensitively; the path is lower-cased for routing and upstream alike.
    #[serde(default)]
    pub case_insensitive_paths: bool,
    /// Read buffer per client connection (Pingora's default is 64KiB); `0` reads straight
    /// into the HTTP parser's own buffers. Idle keepalive connections hold it.
    #[serde(default = "default_read_buffer")]
    pub client_read_buffer: ConfSize,
    /// Write buffer per client connection. A response whose head and body fit goes
    /// out in one send; a larger body is sent after the head, in a second one.
    /// Unset: 16.5KiB for plain HTTP/1 connections served on Portico's threads,
    /// which hold it only while writing a response (`crate::serve::stream`), and
    /// Pingora's 1460 bytes for the rest, which hold it while open.
    #[serde(default)]
    pub client_write_buffer: Option<ConfSize>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EncodedSlashes {
    /// Answer 400: an upstream that decodes them could see a different path than the one routed.
    #[default]
    Reject,
    /// Route and forward the path with the escape kept as it is.
    Keep,
}

fn default_state_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("/var/lib/portico")
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            store: None,
            state_dir: default_state_dir(),
            secrets_key_file: None,
            listeners: default_listeners(),
            threads: default_threads(),
            work_stealing: false,
            upstream_keepalive_pool_size: default_keepalive_pool(),
            grace_period: default_grace(),
            graceful_shutdown_timeout: default_grace(),
            pid_file: default_pid_file(),
            upgrade_sock: default_upgrade_sock(),
            max_header_size: default_max_header_size(),
            admin: default_admin(),
            access_log: AccessLogConfig::default(),
            call_log: None,
            console: super::ConsoleConfig::default(),
            trusted_proxies: Vec::new(),
            consumer_header: default_consumer_header(),
            encoded_slashes: EncodedSlashes::default(),
            case_insensitive_paths: false,
            client_read_buffer: default_read_buffer(),
            client_write_buffer: None,
            keepalive_timeout: default_keepalive_timeout(),
            request_head_timeout: default_request_timeout(),
            request_body_timeout: default_request_timeout(),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessLogConfig {
    /// `stdout`, a file path, or `off`.
    #[serde(default = "default_access_log_path")]
    pub path: String,
    /// Lines queued for the writer before new ones are dropped (and counted).
    #[serde(default = "default_access_log_buffer")]
    pub buffer: usize,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            path: default_access_log_path(),
            buffer: default_access_log_buffer(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerConfig {
    /// `ip:port`, e.g. `0.0.0.0:8080` or `[::]:8443`.
    pub address: String,
    /// Terminate TLS here with these certificates.
    pub tls: Option<ListenerTls>,
    /// Accept HTTP/2 over cleartext (prior knowledge) on a plain listener.
    #[serde(default)]
    pub h2c: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerTls {
    /// Certificates; the one whose names match the client's SNI is used, the
    /// first one when none matches.
    pub certificates: Vec<CertificateConfig>,
    /// Offer HTTP/2 by ALPN.
    #[serde(default = "default_true")]
    pub http2: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Each target in turn, ignoring weights.
    #[default]
    RoundRobin,
    /// Round robin in proportion to the targets' weights.
    Weighted,
    /// A random target, in proportion to weights.
    Random,
    /// Ketama ring over the `hash_on` key: a key stays on its target.
    ConsistentHash,
    /// The target with the fewest requests in flight (relative to weight).
    LeastConn,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HashOn {
    #[default]
    ClientIp,
    Path,
    Header,
    Cookie,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamConfig {
    /// The team whose services use it (the admin API's permissions follow
    /// it, as for a service); none: the gateway's own config.
    #[expect(
        dead_code,
        reason = "read from the stored resource by the admin API's ownership rule"
    )]
    pub team: Option<String>,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Key for `consistent_hash`.
    #[serde(default)]
    pub hash_on: HashOn,
    /// Header or cookie name when `hash_on` is `header` or `cookie`.
    pub hash_key: Option<String>,
    /// Connect to the targets over TLS.
    pub tls: Option<UpstreamTls>,
    /// Host header sent upstream; default: the client's Host is passed through.
    pub host_header: Option<String>,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub health_check: HealthCheckConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetConfig {
    /// `host:port`; names are resolved once when the config loads.
    pub address: String,
    #[serde(default = "default_weight")]
    pub weight: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTls {
    /// Server name sent and verified; default: the host part of the target address.
    pub sni: Option<String>,
    #[serde(default = "default_true")]
    pub verify: bool,
    /// PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    pub connect: Option<ConfDuration>,
    pub read: Option<ConfDuration>,
    pub write: Option<ConfDuration>,
    pub idle: Option<ConfDuration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthCheckConfig {
    pub active: Option<ActiveCheckConfig>,
    #[serde(default)]
    pub passive: PassiveCheckConfig,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckKind {
    #[default]
    Http,
    Tcp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActiveCheckConfig {
    #[serde(default, rename = "type")]
    pub kind: CheckKind,
    #[serde(default = "default_check_path")]
    pub path: String,
    /// Host header of the check request; default: the upstream's host_header or "localhost".
    pub host: Option<String>,
    #[serde(default = "default_statuses")]
    pub expected_statuses: Vec<u16>,
    #[serde(default = "default_interval")]
    pub interval: ConfDuration,
    #[serde(default = "default_check_timeout")]
    pub timeout: ConfDuration,
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PassiveCheckConfig {
    /// Consecutive failures that eject a target; 0 turns ejection off.
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// How long an ejected target is skipped.
    #[serde(default = "default_cooldown")]
    pub cooldown: ConfDuration,
}

impl Default for PassiveCheckConfig {
    fn default() -> Self {
        PassiveCheckConfig {
            max_fails: default_max_fails(),
            cooldown: default_cooldown(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    pub name: String,
    /// The service this route belongs to: its subscription rule applies.
    pub service: Option<String>,
    /// Exact (`api.example.com`) or wildcard (`*.example.com`) hosts; empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `/exact`, `/users/{id}` (one segment per parameter) or `/prefix/*`. Default: `/*`.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// Allowed methods; empty: any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The upstream pool that serves this route.
    pub upstream: Option<String>,
    /// Answer directly from the gateway instead of proxying.
    pub response: Option<FixedResponseConfig>,
    /// Serve the OpenAI-compatible AI API (`/chat/completions`, `/embeddings`, `/models` under the route's paths).
    pub ai: Option<crate::config::ai::AiRouteConfig>,
    /// Serve the service's OpenAPI operations as Model Context Protocol
    /// tools, sending each call to `upstream`.
    pub mcp: Option<super::McpRouteConfig>,
    /// Remove the matched prefix of a `/prefix/*` path before proxying.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the path sent upstream (`{param}` placeholders are filled from the match).
    pub rewrite: Option<String>,
    /// Extra attempts on other targets after a failure to connect.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Overrides the upstream's timeouts for this route.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// The route's policy chain, run in order after the default policies.
    /// Each step is a one-key map (`- key_auth: {...}`).
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub policies: Vec<PolicyConfig>,
    /// Do not run `default_policies` on this route.
    #[serde(default)]
    pub skip_default_policies: bool,
    /// Call-log sampling and capture for this route (replaces its service's).
    pub call_log: Option<super::CallPolicyConfig>,
    /// Deprecation, then 410 Gone (replaces its service's).
    pub retire: Option<super::RetireConfig>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixedResponseConfig {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub body: String,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig {
        address: "0.0.0.0:8080".into(),
        tls: None,
        h2c: false,
    }]
}
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
fn default_true() -> bool {
    true
}
fn default_keepalive_pool() -> usize {
    256
}
fn default_grace() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(5))
}
fn default_pid_file() -> String {
    "/tmp/portico.pid".into()
}
fn default_upgrade_sock() -> String {
    "/tmp/portico_upgrade.sock".into()
}
fn default_admin() -> Option<String> {
    None
}
fn default_access_log_path() -> String {
    "stdout".into()
}
fn default_access_log_buffer() -> usize {
    16384
}
fn default_max_header_size() -> ConfSize {
    ConfSize(64 * 1024)
}
fn default_request_timeout() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(60))
}
fn default_keepalive_timeout() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(60))
}
fn default_read_buffer() -> ConfSize {
    ConfSize(0)
}
fn default_consumer_header() -> String {
    "x-consumer".into()
}
fn default_weight() -> usize {
    1
}
fn default_check_path() -> String {
    "/".into()
}
fn default_statuses() -> Vec<u16> {
    vec![200]
}
fn default_interval() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(5))
}
fn default_check_timeout() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(2))
}
fn default_healthy_threshold() -> u32 {
    2
}
fn default_unhealthy_threshold() -> u32 {
    3
}
fn default_max_fails() -> u32 {
    3
}
fn default_cooldown() -> ConfDuration {
    ConfDuration(std::time::Duration::from_secs(10))
}
fn default_paths() -> Vec<String> {
    vec!["/*".into()]
}
fn default_retries() -> u32 {
    1
}
fn default_status() -> u16 {
    200
}
fn default_content_type() -> String {
    "text/plain; charset=utf-8".into()
}
