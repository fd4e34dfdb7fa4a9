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
pub struct PeerTls {
    pub sni: Option<String>,
    pub verify: bool,
    pub ca: Option<Arc<[WrappedX509]>>,
    /// Hash of the CA bundle (0 for the system roots); separates pooled connections.
    pub ca_key: u64,
}

/// Loads a PEM CA bundle; every certificate is checked to be valid X.509.
pub fn load_ca(path: &Path) -> Result<(Arc<[WrappedX509]>, u64), String> {
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

/// The connection template for one target.
pub fn build_peer(addr: SocketAddr, host: &str, tls: Option<&PeerTls>, timeouts: &Timeouts) -> HttpPeer {
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
