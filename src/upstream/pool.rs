//! An upstream pool: its targets and how one is chosen. Selection orders come
//! from pingora-load-balancing (weighted round robin, weighted random and the
//! Ketama ring), which yield candidates in preference order; the pool skips
//! candidates that are down or already tried by this request. least_conn is
//! Portico's own: pingora has no in-flight-aware selector.

use super::target::{now_ms, Target};
use crate::config::Algorithm;
use pingora_load_balancing::selection::weighted::Weighted;
use pingora_load_balancing::selection::{algorithms, BackendIter, BackendSelection, Consistent};
use pingora_load_balancing::Backend;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

enum Selector {
    RoundRobin(Arc<Weighted<algorithms::RoundRobin>>),
    Random(Arc<Weighted<algorithms::Random>>),
    Consistent(Arc<Consistent>),
    LeastConn(AtomicUsize),
}

/// Passive health settings.
#[derive(Debug, Clone, Copy)]
pub struct Passive {
    pub max_fails: u32,
    pub cooldown_ms: u64,
}

/// Active health check settings, compiled.
#[derive(Debug, Clone)]
pub struct ActiveCheck {
    pub http: bool,
    pub path: String,
    pub host: String,
    pub expected: Vec<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// What a request's consistent-hash key is taken from (`hash_on`), compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client address (after `trusted_proxies`).
    ClientIp,
    /// The normalised request path.
    Path,
    /// A request header's value; the client address when it is missing.
    Header(http::HeaderName),
    /// A cookie's value; the client address when it is missing.
    Cookie(String),
}

/// A pool's settings besides its targets: one `upstreams.NAME` entry,
/// compiled by [`super::compile`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How a target is chosen.
    pub algorithm: Algorithm,
    /// The key of `consistent_hash`.
    pub hash: HashKey,
    /// The Host header sent upstream instead of the client's.
    pub host_header: Option<http::HeaderValue>,
    /// Passive health: failures before a target is ejected, and for how long.
    pub passive: Passive,
    /// Active health checks, when configured.
    pub active: Option<ActiveCheck>,
    /// True for TLS upstreams (X-Forwarded-Proto is about the client side, this is not).
    pub tls: bool,
}

/// One upstream: its targets, how one is chosen, and its health settings.
pub struct UpstreamPool {
    /// The name in `upstreams:`.
    pub name: Arc<str>,
    /// The targets, in config order; requests refer to them by index.
    pub targets: Vec<Arc<Target>>,
    selector: Selector,
    index: HashMap<SocketAddr, usize>,
    total_weight: usize,
    hash: HashKey,
    /// The Host header sent upstream instead of the client's.
    pub host_header: Option<http::HeaderValue>,
    passive: Passive,
    /// Active health checks, when configured.
    pub active: Option<ActiveCheck>,
    /// True for TLS upstreams.
    pub tls: bool,
    /// `portico_upstream_duration_seconds{upstream}`, resolved once.
    pub upstream_duration: prometheus::Histogram,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool").field("name", &self.name).finish()
    }
}

/// How many candidates a selection looks at before giving up.
fn max_iterations(n: usize) -> usize {
    (n * 4).max(16)
}

impl UpstreamPool {
    /// A pool of `targets` chosen among as `settings` say.
    pub fn new(name: String, targets: Vec<Arc<Target>>, settings: PoolSettings) -> UpstreamPool {
        let algorithm = settings.algorithm;
        let weights_matter = algorithm != Algorithm::RoundRobin;
        let backends: BTreeSet<Backend> = targets
            .iter()
            .map(|t| Backend {
                addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(t.addr),
                weight: if weights_matter { t.weight } else { 1 },
                ext: http::Extensions::new(),
            })
            .collect();
        let selector = match algorithm {
            Algorithm::RoundRobin | Algorithm::Weighted => Selector::RoundRobin(Arc::new(Weighted::build(&backends))),
            Algorithm::Random => Selector::Random(Arc::new(Weighted::build(&backends))),
            Algorithm::ConsistentHash => Selector::Consistent(Arc::new(Consistent::build(&backends))),
            Algorithm::LeastConn => Selector::LeastConn(AtomicUsize::new(0)),
        };
        let index = targets.iter().enumerate().map(|(i, t)| (t.addr, i)).collect();
        let total_weight = targets.iter().map(|t| t.weight).sum();
        let upstream_duration = crate::telemetry::metrics::METRICS
            .upstream_duration
            .with_label_values(&[name.as_str()]);
        UpstreamPool {
            upstream_duration,
            name: name.into(),
            total_weight,
            targets,
            selector,
            index,
            hash: settings.hash,
            host_header: settings.host_header,
            passive: settings.passive,
            active: settings.active,
            tls: settings.tls,
        }
    }

    /// The bytes a request hashes on for `consistent_hash` (`hash_on`). The
    /// client address is the key, and the fallback when a header or cookie
    /// is missing; `ip_buf` holds its octets.
    pub fn hash_input<'a>(
        &self,
        req: &'a pingora_http::RequestHeader,
        path: &'a str,
        client: Option<std::net::IpAddr>,
        ip_buf: &'a mut [u8; 16],
    ) -> &'a [u8] {
        let ip_key: &[u8] = match client {
            Some(std::net::IpAddr::V4(v4)) => {
                ip_buf[..4].copy_from_slice(&v4.octets());
                &ip_buf[..4]
            }
            Some(std::net::IpAddr::V6(v6)) => {
                ip_buf.copy_from_slice(&v6.octets());
                &ip_buf[..]
            }
            None => &[],
        };
        match &self.hash {
            HashKey::ClientIp => ip_key,
            HashKey::Path => path.as_bytes(),
            HashKey::Header(name) => req.headers.get(name).map_or(ip_key, |v| v.as_bytes()),
            HashKey::Cookie(name) => req
                .headers
                .get(http::header::COOKIE)
                .and_then(|c| cookie_value(c.as_bytes(), name))
                .unwrap_or(ip_key),
        }
    }

    /// Passive health: a failed attempt counts against its target, which is
    /// ejected for the cool-down after `max_fails` in a row.
    pub fn record_failure(&self, target: &Target) {
        target.record_failure(self.passive.max_fails, self.passive.cooldown_ms);
    }

    /// Picks a target for `key`, skipping unavailable targets and those in
    /// `tried` (indexes already attempted by this request).
    pub fn select(&self, key: &[u8], tried: &[usize]) -> Option<usize> {
        let now = now_ms();
        let usable = |i: usize| !tried.contains(&i) && self.targets[i].available(now);
        match &self.selector {
            Selector::RoundRobin(s) => self.walk(s.iter(key), &usable, max_iterations(self.targets.len())),
            Selector::Random(s) => self.walk(s.iter(key), &usable, max_iterations(self.targets.len())),
            // The ring holds many points per target: walk far enough to pass a down target's points.
            Selector::Consistent(s) => self.walk(s.iter(key), &usable, 160 * self.total_weight + 16),
            Selector::LeastConn(rotor) => {
                let n = self.targets.len();
                let start = rotor.fetch_add(1, Ordering::Relaxed);
                let mut best: Option<usize> = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    if !usable(i) {
                        continue;
                    }
                    let t = &self.targets[i];
                    // Compare inflight/weight without division.
                    let better = best.is_none_or(|b| {
                        let bt = &self.targets[b];
                        t.inflight() * bt.weight < bt.inflight() * t.weight
                    });
                    if better {
                        best = Some(i);
                    }
                }
                best
            }
        }
    }

    fn walk(&self, mut iter: impl BackendIter, usable: &impl Fn(usize) -> bool, max: usize) -> Option<usize> {
        for _ in 0..max {
            let backend = iter.next()?;
            let Some(addr) = backend.addr.as_inet() else {
                continue;
            };
            if let Some(&i) = self.index.get(addr) {
                if usable(i) {
                    return Some(i);
                }
            }
        }
        // The iterators may revisit targets; a final scan finds any usable one left.
        (0..self.targets.len()).find(|&i| usable(i))
    }
}

/// The value of cookie `name` in a Cookie header.
fn cookie_value<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii_start();
        let (k, v) = pair.split_at(pair.iter().position(|b| *b == b'=')?);
        (k == name.as_bytes()).then(|| &v[1..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(cookie_value(b"a=1; sid=xyz; b=2", "sid"), Some(&b"xyz"[..]));
        assert_eq!(cookie_value(b"a=1", "sid"), None);
        assert_eq!(cookie_value(b"garbage", "sid"), None);
    }

    fn pool(hash: HashKey) -> UpstreamPool {
        let settings = PoolSettings {
            algorithm: Algorithm::ConsistentHash,
            hash,
            host_header: None,
            passive: Passive {
                max_fails: 1,
                cooldown_ms: 1000,
            },
            active: None,
            tls: false,
        };
        UpstreamPool::new("test".into(), Vec::new(), settings)
    }

    #[test]
    fn hash_input_falls_back_to_the_client_address() {
        let mut req = pingora_http::RequestHeader::build("GET", b"/a", None).unwrap();
        req.insert_header("cookie", "sid=s1").unwrap();
        req.insert_header("x-user", "u1").unwrap();
        let client = Some(std::net::IpAddr::from([10, 0, 0, 7]));
        let mut buf = [0u8; 16];
        assert_eq!(
            pool(HashKey::ClientIp).hash_input(&req, "/a", client, &mut buf),
            &[10, 0, 0, 7]
        );
        let mut buf = [0u8; 16];
        assert_eq!(pool(HashKey::Path).hash_input(&req, "/a", client, &mut buf), b"/a");
        let mut buf = [0u8; 16];
        let header = HashKey::Header(http::HeaderName::from_static("x-user"));
        assert_eq!(pool(header).hash_input(&req, "/a", client, &mut buf), b"u1");
        let mut buf = [0u8; 16];
        assert_eq!(
            pool(HashKey::Cookie("sid".into())).hash_input(&req, "/a", client, &mut buf),
            b"s1"
        );
        let mut buf = [0u8; 16];
        let missing = HashKey::Cookie("other".into());
        assert_eq!(pool(missing).hash_input(&req, "/a", client, &mut buf), &[10, 0, 0, 7]);
    }
}
