//! Builds the connection template (pingora `HttpPeer`) for each target:
//! address, TLS with SNI and verification, an optional per-upstream CA, and
//! timeouts. Done at config load; a request clones the template.

use crate::config::TimeoutsConfig;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::WrappedX509;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Effective timeouts after defaults and overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// These timeouts with the ones set in `over` replaced.
    pub fn overridden(self, over: &TimeoutsConfig) -> Timeouts {
        Timeouts {
            connect: over.connect.map_or(self.connect, |d| d.0),
            read: over.read.map_or(self.read, |d| d.0),
            write: over.write.map_or(self.write, |d| d.0),
            idle: over.idle.map_or(self.idle, |d| d.0),
        }
    }

    pub fn apply(&self, peer: &mut HttpPeer) {
        peer.options.connection_timeout = Some(self.connect);
        peer.options.read_timeout = Some(self.read);
        peer.options.write_timeout = Some(self.write);
        peer.options.idle_timeout = Some(self.idle);
    }
}

/// TLS settings for an upstream, compiled.
#[derive(Clone)]
pub(crate) struct PeerTls {
    pub sni: Option<String>,
    pub verify: bool,
    pub ca: Option<Arc<[WrappedX509]>>,
    /// Hash of the CA bundle (0 for the system roots); separates pooled connections.
    pub ca_key: u64,
}

/// Loads a PEM CA bundle; every certificate is checked to be valid X.509.
pub(crate) fn load_ca(path: &Path) -> Result<(Arc<[WrappedX509]>, u64), String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for item in rustls_pemfile::certs(&mut pem.as_slice()) {
        let der = item.map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
        x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("{}: bad certificate: {e}", path.display()))?;
        out.push(WrappedX509::new(der.to_vec(), |raw| {
            pingora_core::utils::tls::parse_x509(raw)
        }));
    }
    if out.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&pem, &mut h);
    // Never 0, which stands for the system roots.
    let key = std::hash::Hasher::finish(&h) | 1;
    Ok((out.into(), key))
}

/// `group_key` made specific to this worker thread, when each worker thread
/// runs its own single-threaded runtime (`work_stealing: false`).
///
/// Pingora's upstream connection pool is shared by all threads, but each
/// connection stays registered with the reactor of the thread that opened it.
/// A connection reused by another thread has its every read event delivered
/// by the first thread, which wakes the second through its event fd. (Its
/// idle watch runs on the releasing thread on Portico's serving threads, on
/// a random one on Pingora's; see `crate::serve::workers`.) A pool
/// key per thread keeps each thread on its own connections, as nginx's
/// per-worker keepalive cache does. With work stealing (one reactor for all
/// threads) the key is unchanged.
pub(crate) fn thread_group(group_key: u64) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static SLOT: u64 = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => NEXT.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
    // Spread the slot over the high bits so it cannot cancel a CA key's low ones.
    group_key ^ SLOT.with(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The connection template for one target.
pub(crate) fn build_peer(addr: SocketAddr, host: &str, tls: Option<&PeerTls>, timeouts: &Timeouts) -> HttpPeer {
    let mut peer = match tls {
        Some(t) => {
            let sni = t.sni.clone().unwrap_or_else(|| host.to_string());
            let mut p = HttpPeer::new(addr, true, sni);
            p.options.verify_cert = t.verify;
            p.options.verify_hostname = t.verify;
            p.options.ca = t.ca.clone();
            // Pingora's connection pool keys on the peer hash, which covers SNI and
            // the verify flags but not the CA: without this, an upstream with one
            // trust store could reuse a connection verified against another's.
            p.group_key = t.ca_key;
            p
        }
        None => HttpPeer::new(addr, false, String::new()),
    };
    timeouts.apply(&mut peer);
    peer
}

#[cfg(test)]
mod tests {
    use super::thread_group;

    fn on_current_thread_runtime(key: u64) -> (u64, u64) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async { (thread_group(key), thread_group(key)) })
    }

    /// Each single-threaded runtime's thread gets its own pool key, stable on
    /// that thread; a work-stealing runtime and no runtime keep the key.
    #[test]
    fn pool_keys_are_per_thread_only_without_work_stealing() {
        let a = std::thread::spawn(|| on_current_thread_runtime(7))
            .join()
            .expect("thread a");
        let b = std::thread::spawn(|| on_current_thread_runtime(7))
            .join()
            .expect("thread b");
        assert_eq!(a.0, a.1, "stable on one thread");
        assert_ne!(a.0, 7);
        assert_ne!(a.0, b.0, "two threads, two keys");
        let stealing = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("rt");
        let on_worker = stealing.block_on(async { tokio::spawn(async { thread_group(7) }).await.expect("task") });
        assert_eq!(on_worker, 7);
        assert_eq!(std::thread::spawn(|| thread_group(7)).join().expect("thread"), 7);
    }
}
