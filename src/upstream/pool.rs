//! An upstream pool: its targets and how one is chosen. Selection orders come
//! from pingora-load-balancing (weighted round robin, weighted random and the
//! Ketama ring), which yield candidates in preference order; the pool skips
//! candidates that are down or already tried by this request. least_conn is
//! Portico's own: pingora has no in-flight-aware selector.

use super::target::{now_ms, Target};
use crate::config::{Algorithm, HashOn};
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

pub struct UpstreamPool {
    pub name: String,
    pub targets: Vec<Arc<Target>>,
    selector: Selector,
    index: HashMap<SocketAddr, usize>,
    total_weight: usize,
    pub hash_on: HashOn,
    /// Cookie name for consistent hashing (`hash_on: cookie`).
    pub hash_key: String,
    /// Header name for consistent hashing (`hash_on: header`), parsed once.
    pub hash_header: Option<http::HeaderName>,
    pub host_header: Option<http::HeaderValue>,
    pub passive: Passive,
    pub active: Option<ActiveCheck>,
    /// True for TLS upstreams (X-Forwarded-Proto is about the client side, this is not).
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        targets: Vec<Arc<Target>>,
        algorithm: Algorithm,
        hash_on: HashOn,
        hash_key: String,
        host_header: Option<http::HeaderValue>,
        passive: Passive,
        active: Option<ActiveCheck>,
        tls: bool,
    ) -> UpstreamPool {
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
            name,
            total_weight,
            targets,
            selector,
            index,
            hash_on,
            hash_header: (hash_on == HashOn::Header)
                .then(|| http::HeaderName::from_bytes(hash_key.as_bytes()).ok())
                .flatten(),
            hash_key,
            host_header,
            passive,
            active,
            tls,
        }
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
