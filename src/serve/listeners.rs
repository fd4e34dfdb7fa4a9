//! The client listeners as compiled from `server.listeners`: address, TLS
//! certificates chosen by SNI, HTTP/2 and h2c. They belong to the process,
//! not to a config snapshot: listening sockets are bound once (or handed
//! over by the process before), so a reload cannot change them and reports a
//! change as needing `portico upgrade`.

use super::tls::{load_certified_key, SniResolver};
use crate::config::{Issues, LoadedConfig};
use std::sync::Arc;

/// A listener as compiled: address and TLS acceptor material.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSpec {
    /// `host:port` to bind.
    pub address: String,
    /// Certificates by SNI; plain TCP when absent.
    pub tls: Option<Arc<SniResolver>>,
    /// Offer HTTP/2 over TLS (ALPN).
    pub http2: bool,
    /// Accept HTTP/2 without TLS (prior knowledge).
    pub h2c: bool,
}

impl ListenerSpec {
    /// What a reload compares to tell whether the listeners changed.
    fn key(&self) -> (String, bool, bool, bool) {
        (self.address.clone(), self.tls.is_some(), self.http2, self.h2c)
    }
}

/// Compiles `server.listeners`, reading the certificates; problems go to `issues`.
pub(crate) fn compile_listeners(loaded: &LoadedConfig, issues: &mut Issues) -> Vec<ListenerSpec> {
    let mut listeners = Vec::new();
    for (i, l) in loaded.config.server.listeners.iter().enumerate() {
        let mut resolver = None;
        if let Some(tls) = &l.tls {
            let mut keys = Vec::new();
            for (j, c) in tls.certificates.iter().enumerate() {
                match load_certified_key(&loaded.file_path(&c.cert), &loaded.file_path(&c.key)) {
                    Ok(k) => keys.push(k),
                    Err(e) => issues.add(format!("server.listeners[{i}].tls.certificates[{j}]"), e),
                }
            }
            resolver = SniResolver::new(keys).map(Arc::new);
        }
        listeners.push(ListenerSpec {
            address: l.address.clone(),
            tls: resolver,
            http2: l.tls.as_ref().is_some_and(|t| t.http2),
            h2c: l.h2c,
        });
    }
    listeners
}

/// True when two sets of listeners differ in anything a socket is bound with.
pub(crate) fn listeners_differ(a: &[ListenerSpec], b: &[ListenerSpec]) -> bool {
    let keys = |l: &[ListenerSpec]| {
        let mut v: Vec<_> = l.iter().map(ListenerSpec::key).collect();
        v.sort();
        v
    };
    keys(a) != keys(b)
}
