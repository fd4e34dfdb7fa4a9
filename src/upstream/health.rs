//! Active health checks: one background task checks every pool that has
//! `health_check.active`, each on its own interval. The checks themselves are
//! pingora-load-balancing's `HttpHealthCheck` and `TcpHealthCheck`; the
//! thresholds and the resulting state live on Portico's targets, so state
//! survives a reload for unchanged targets. The task reads the current
//! snapshot every tick, so pools added by a reload are checked at once.

use super::pool::{ActiveCheck, UpstreamPool};
use super::target::now_ms;
use super::target::Target;
use crate::telemetry::metrics::METRICS;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::Backend;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Sets `portico_upstream_target_healthy` for every target of `pools`: 1
/// when in rotation (active checks pass and not ejected), 0 otherwise.
pub(crate) fn publish_health<'a>(pools: impl IntoIterator<Item = &'a Arc<UpstreamPool>>) {
    let gauge = &METRICS.target_healthy;
    let now = now_ms();
    for pool in pools {
        for t in &pool.targets {
            gauge
                .with_label_values(&[&*pool.name, &*t.label])
                .set(i64::from(t.available(now)));
        }
    }
}

struct PoolCheck {
    built_for: usize,
    due: Instant,
    check: Arc<dyn HealthCheck + Send + Sync>,
}

/// The current pools, read on every tick: a reload's new pools are checked
/// at once, without the checker knowing where they come from.
pub(crate) type PoolSource = Box<dyn Fn() -> Vec<Arc<UpstreamPool>> + Send + Sync>;

/// The background task of the active checks.
pub(crate) struct HealthChecker {
    /// Where the pools come from (the running snapshot).
    pub pools: PoolSource,
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Per pool: the pool object it was built for, when it is due, its checker.
        let mut pools: HashMap<String, PoolCheck> = HashMap::new();
        let mut last_publish = Instant::now() - PUBLISH_EVERY;
        loop {
            let current = (self.pools)();
            let now = Instant::now();
            for pool in &current {
                let Some(active) = &pool.active else { continue };
                let built_for = Arc::as_ptr(pool) as usize;
                let state = match pools.get_mut(&*pool.name) {
                    // A pool new or changed by a reload is checked at once, with a fresh checker.
                    Some(s) if s.built_for == built_for => s,
                    _ => pools
                        .entry(pool.name.to_string())
                        .insert_entry(PoolCheck {
                            built_for,
                            due: now,
                            check: build_check(pool, active),
                        })
                        .into_mut(),
                };
                if state.due > now {
                    continue;
                }
                state.due = now + active.interval;
                for target in pool.targets.iter().filter(|t| t.begin_check()) {
                    tokio::spawn(run_one(
                        state.check.clone(),
                        target.clone(),
                        active.clone(),
                        pool.name.to_string(),
                    ));
                }
            }
            if last_publish.elapsed() >= PUBLISH_EVERY {
                publish_health(&current);
                last_publish = Instant::now();
            }
            pools.retain(|name, _| current.iter().any(|p| *p.name == **name));
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn run_one(check: Arc<dyn HealthCheck + Send + Sync>, target: Arc<Target>, active: ActiveCheck, pool: String) {
    let backend = Backend {
        addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(target.addr),
        weight: 1,
        ext: http::Extensions::new(),
    };
    let ok = matches!(
        tokio::time::timeout(active.timeout, check.check(&backend)).await,
        Ok(Ok(()))
    );
    target.end_check();
    if let Some(healthy) = target.record_check(ok, active.healthy_threshold, active.unhealthy_threshold) {
        let state = if healthy { "healthy" } else { "unhealthy" };
        log::warn!("upstream {pool}: target {} is now {state}", target.label);
    }
}

fn build_check(pool: &UpstreamPool, active: &ActiveCheck) -> Arc<dyn HealthCheck + Send + Sync> {
    // The peer template carries TLS, SNI and CA of the pool's first target.
    let mut template = pool.targets[0].peer.clone();
    template.options.connection_timeout = Some(active.timeout);
    template.options.read_timeout = Some(active.timeout);
    template.options.write_timeout = Some(active.timeout);
    if !active.http {
        let mut tcp = TcpHealthCheck::new();
        tcp.peer_template = pingora_core::upstreams::peer::BasicPeer::new("0.0.0.0:1");
        tcp.peer_template.sni = template.sni.clone();
        tcp.peer_template.options = template.options.clone();
        return Arc::from(tcp as Box<dyn HealthCheck + Send + Sync>);
    }
    let mut hc = HttpHealthCheck::new(&active.host, pool.tls);
    hc.peer_template = template;
    hc.reuse_connection = false;
    if let Ok(mut req) = RequestHeader::build("GET", active.path.as_bytes(), None) {
        let _ = req.insert_header("Host", active.host.as_str());
        let _ = req.insert_header("User-Agent", "portico-health-check");
        hc.req = req;
    }
    let expected = active.expected.clone();
    hc.validator = Some(Box::new(move |resp| {
        if expected.contains(&resp.status.as_u16()) {
            Ok(())
        } else {
            pingora_core::Error::e_explain(
                pingora_core::ErrorType::Custom("unexpected status"),
                format!("status {}", resp.status),
            )
        }
    }));
    Arc::new(hc)
}
