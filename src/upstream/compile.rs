//! Compiles the `upstreams:` section into pools: targets resolved to
//! addresses, connection templates with TLS and timeouts, the selection
//! algorithm, the hash key and the health settings. Runs at config load; a
//! target whose pool and address are unchanged keeps its health state across
//! a reload.

use super::peer::{build_peer, load_ca, PeerTls, Timeouts};
use super::pool::{ActiveCheck, HashKey, Passive, PoolSettings, UpstreamPool};
use super::target::Target;
use crate::config::{CheckKind, HashOn, Issues, LoadedConfig, UpstreamConfig};
use http::HeaderValue;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// The compiled upstreams, by name.
pub(crate) type Pools = HashMap<String, Arc<UpstreamPool>>;

/// Compiles every upstream of `loaded`; problems go to `issues`. An upstream
/// none of whose targets resolves is left out (its routes report it).
pub(crate) fn compile_pools(loaded: &LoadedConfig, previous: Option<&Pools>, issues: &mut Issues) -> Pools {
    let mut pools = HashMap::new();
    for (name, up) in &loaded.config.upstreams {
        let old = previous.and_then(|p| p.get(name)).map(|p| &**p);
        if let Some(pool) = compile_pool(name, up, loaded, old, issues) {
            pools.insert(name.clone(), Arc::new(pool));
        }
    }
    pools
}

fn compile_pool(
    name: &str,
    up: &UpstreamConfig,
    loaded: &LoadedConfig,
    old: Option<&UpstreamPool>,
    issues: &mut Issues,
) -> Option<UpstreamPool> {
    let p = format!("upstreams.{name}");
    let tls = peer_tls(&p, up, loaded, issues);
    let timeouts = Timeouts::default().overridden(&up.timeouts);
    let mut targets = Vec::new();
    let mut seen = HashMap::new();
    for (i, t) in up.targets.iter().enumerate() {
        let addr = match resolve(&t.address) {
            Ok(a) => a,
            Err(e) => {
                issues.add(format!("{p}.targets[{i}].address"), e);
                continue;
            }
        };
        if let Some(first) = seen.insert(addr, i) {
            issues.add(
                format!("{p}.targets[{i}].address"),
                format!("{addr} is already targets[{first}]"),
            );
        }
        let host = t.address.rsplit_once(':').map_or(t.address.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let peer = build_peer(addr, host, tls.as_ref(), &timeouts);
        let target = Target::new(t.address.clone(), addr, t.weight, peer);
        if let Some(old) = old.and_then(|o| o.targets.iter().find(|o| o.addr == addr)) {
            target.inherit(old);
        }
        targets.push(Arc::new(target));
    }
    if targets.is_empty() {
        return None;
    }
    let settings = PoolSettings {
        algorithm: up.algorithm,
        hash: hash_key(up),
        host_header: up.host_header.as_deref().and_then(|h| HeaderValue::from_str(h).ok()),
        passive: Passive {
            max_fails: up.health_check.passive.max_fails,
            cooldown_ms: u64::try_from(up.health_check.passive.cooldown.0.as_millis()).unwrap_or(u64::MAX),
        },
        active: active_check(up),
        tls: tls.is_some(),
    };
    Some(UpstreamPool::new(name.to_string(), targets, settings))
}

/// The TLS settings of the targets, with the CA file read.
fn peer_tls(p: &str, up: &UpstreamConfig, loaded: &LoadedConfig, issues: &mut Issues) -> Option<PeerTls> {
    let t = up.tls.as_ref()?;
    let (ca, ca_key) = match &t.ca_file {
        None => (None, 0),
        Some(f) => match load_ca(&loaded.file_path(f)) {
            Ok((ca, key)) => (Some(ca), key),
            Err(e) => {
                issues.add(format!("{p}.tls.ca_file"), e);
                (None, 0)
            }
        },
    };
    Some(PeerTls {
        sni: t.sni.clone(),
        verify: t.verify,
        ca,
        ca_key,
    })
}

/// `hash_on` and `hash_key`, validated by the config layer.
fn hash_key(up: &UpstreamConfig) -> HashKey {
    let key = up.hash_key.clone().unwrap_or_default();
    match up.hash_on {
        HashOn::ClientIp => HashKey::ClientIp,
        HashOn::Path => HashKey::Path,
        HashOn::Header => match http::HeaderName::from_bytes(key.as_bytes()) {
            Ok(name) => HashKey::Header(name),
            Err(_) => HashKey::ClientIp,
        },
        HashOn::Cookie => HashKey::Cookie(key),
    }
}

fn active_check(up: &UpstreamConfig) -> Option<ActiveCheck> {
    let a = up.health_check.active.as_ref()?;
    Some(ActiveCheck {
        http: a.kind == CheckKind::Http,
        path: a.path.clone(),
        host: a
            .host
            .clone()
            .or_else(|| up.host_header.clone())
            .unwrap_or_else(|| "localhost".into()),
        expected: a.expected_statuses.clone(),
        interval: a.interval.0,
        timeout: a.timeout.0,
        healthy_threshold: a.healthy_threshold,
        unhealthy_threshold: a.unhealthy_threshold,
    })
}

/// `host:port` to an address; a name is resolved once, here.
fn resolve(address: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !address.contains(':') {
        return Err(format!("invalid address {address:?}; use host:port"));
    }
    let mut addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{address:?} resolved to no address"))
}
