//! A tool call's trip to the route's upstream: a target chosen by the
//! pool's own selection (its algorithm, skipping targets that are down or
//! already tried), the request sent with `reqwest`, the answer read within
//! `max_response`, all within the route's `timeout`.
//!
//! Plain-HTTP targets share one `reqwest` client for the whole process (one
//! connection pool, as the AI gateway's provider calls do). A TLS upstream
//! gets one client per target, built at load with the upstream's TLS
//! settings (`sni`, `verify`, `ca_file`), which connects to the target's
//! address whatever the name: SNI and certificate checks use the name, the
//! socket the address, as a proxied request does. Redirects are never
//! followed: a 3xx is the operation's answer.
//!
//! A failure to connect counts against the target (passive health) and
//! moves the call to another target, up to the route's `retries`; a
//! timeout or a broken answer ends the call (the operation may have run).

use super::openapi::Tool;
use super::request::Outbound;
use crate::error::GatewayError;
use crate::upstream::{InflightGuard, UpstreamPool};
use http::{HeaderMap, HeaderValue};
use once_cell::sync::Lazy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The process's client for plain-HTTP upstreams.
static PLAIN: Lazy<reqwest::Client> = Lazy::new(|| builder(Duration::from_secs(10)).build().unwrap_or_default());

fn builder(connect: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// How one target is reached.
pub(crate) struct Endpoint {
    client: reqwest::Client,
    /// `http://10.0.0.5:8080` or `https://api.internal:8443`.
    base: String,
}

/// The TLS settings of an upstream, as its config gives them.
pub(crate) struct Tls {
    pub(crate) sni: Option<String>,
    pub(crate) verify: bool,
    /// PEM certificates to trust instead of the built-in roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) connect_timeout: Duration,
}

impl Endpoint {
    /// A plain-HTTP target.
    pub(crate) fn plain(addr: SocketAddr) -> Endpoint {
        Endpoint {
            client: PLAIN.clone(),
            base: format!("http://{addr}"),
        }
    }

    /// A TLS target written as `label` (`host:port`) at `addr`.
    pub(crate) fn tls(label: &str, addr: SocketAddr, tls: &Tls) -> Result<Endpoint, String> {
        let written = label.rsplit_once(':').map_or(label, |(h, _)| h);
        let host = tls.sni.as_deref().unwrap_or(written);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut b = builder(tls.connect_timeout);
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        if !is_ip {
            b = b.resolve(host, addr);
        }
        if !tls.verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("ca_file: {e}"))?;
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| format!("TLS client: {e}"))?;
        let authority = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(Endpoint {
            client,
            base: format!("https://{authority}:{}", addr.port()),
        })
    }
}

/// An upstream answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) body: Vec<u8>,
    /// The answer was longer than `max_response` (`body` is empty).
    pub(crate) too_large: bool,
}

/// Why a call got no answer: the gateway's failure and a message for the
/// tool result.
#[derive(Debug)]
pub(crate) struct NoAnswer {
    pub(crate) error: GatewayError,
    pub(crate) message: String,
}

/// What the call log learns of the attempts.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    /// Targets tried, in order (indexes into the pool's targets).
    pub(crate) tried: Vec<usize>,
    /// From sending the last attempt to its answer's head.
    pub(crate) time: Option<Duration>,
}

/// Sends one operation of a route's upstream.
pub(crate) struct Caller {
    pub(crate) pool: Arc<UpstreamPool>,
    /// One per target of the pool, in the same order.
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) timeout: Duration,
    pub(crate) max_response: usize,
    pub(crate) retries: u32,
}

impl Caller {
    /// Sends `out` of `tool`, with `headers` (forwarding, consumer) under
    /// the tool's own; `key` is the consistent-hash key.
    pub(crate) async fn send(
        &self,
        tool: &Tool,
        out: &Outbound,
        headers: &HeaderMap,
        key: &[u8],
        attempts: &mut Attempts,
    ) -> Result<Answer, NoAnswer> {
        let deadline = Instant::now() + self.timeout;
        let mut last = None;
        for _ in 0..=self.retries {
            let Some(i) = self.pool.select(key, &attempts.tried) else {
                break;
            };
            attempts.tried.push(i);
            let (Some(target), Some(endpoint)) = (self.pool.targets.get(i), self.endpoints.get(i)) else {
                break;
            };
            let _inflight = InflightGuard::new(target.clone());
            let url = format!("{}{}", endpoint.base, out.path_and_query);
            let parsed = reqwest::Url::parse(&url).map_err(|e| NoAnswer {
                error: GatewayError::Internal,
                message: format!("{url} is not a URL: {e}"),
            })?;
            let mut rb = endpoint
                .client
                .request(tool.method.clone(), parsed)
                .headers(headers.clone())
                .timeout(deadline.saturating_duration_since(Instant::now()));
            for (name, value) in &out.headers {
                rb = rb.header(name, value);
            }
            if let Some(body) = &out.body {
                rb = rb
                    .header(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone());
            }
            let started = Instant::now();
            match rb.send().await {
                Ok(resp) => {
                    attempts.time = Some(started.elapsed());
                    target.record_success();
                    return read(resp, self.max_response).await;
                }
                Err(e) if e.is_connect() => {
                    self.pool.record_failure(target);
                    last = Some(NoAnswer {
                        error: GatewayError::UpstreamConnect,
                        message: format!("could not connect to {}: {}", target.label, cause(&e)),
                    });
                }
                Err(e) if e.is_timeout() => {
                    return Err(NoAnswer {
                        error: GatewayError::UpstreamTimeout,
                        message: format!("{} did not answer within {:?}", target.label, self.timeout),
                    })
                }
                Err(e) => {
                    return Err(NoAnswer {
                        error: GatewayError::UpstreamReset,
                        message: format!("{} failed: {}", target.label, cause(&e)),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| NoAnswer {
            error: GatewayError::NoHealthyUpstream,
            message: format!("upstream {} has no healthy target", self.pool.name),
        }))
    }
}

/// Reads an answer within `max` bytes.
async fn read(mut resp: reqwest::Response, max: usize) -> Result<Answer, NoAnswer> {
    let header = |name: http::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let location = header(http::header::LOCATION);
    let status = resp.status().as_u16();
    let too_large = |status| {
        Ok(Answer {
            status,
            content_type: content_type.clone(),
            location: location.clone(),
            body: Vec::new(),
            too_large: true,
        })
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return too_large(status);
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return too_large(status);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                let error = if e.is_timeout() {
                    GatewayError::UpstreamTimeout
                } else {
                    GatewayError::UpstreamReset
                };
                return Err(NoAnswer {
                    error,
                    message: format!("the answer was cut off: {}", cause(&e)),
                });
            }
        }
    }
    Ok(Answer {
        status,
        content_type,
        location,
        body,
        too_large: false,
    })
}

/// The innermost cause of a `reqwest` error, which says what happened
/// (`Connection refused`) where the outer one says only "error sending
/// request".
fn cause(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
