//! Downstream TLS: certificates loaded at config time and chosen per
//! connection by SNI. The names a certificate serves are read from its subject
//! alternative names (DNS entries, wildcards included), as nginx and Caddy
//! users expect; the first certificate is the default when SNI matches none.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*.`, e.g. `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let name = name.to_ascii_lowercase();
        if let Some(c) = self.exact.get(&name) {
            return Some(c.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(c) = self.wildcard.get(parent) {
                return Some(c.clone());
            }
        }
        Some(self.default.clone())
    }
}

/// One certificate and key pair, loaded and checked.
pub(crate) fn load_certified_key(cert: &Path, key: &Path) -> Result<(Arc<CertifiedKey>, Vec<String>), String> {
    let cert_pem = std::fs::read(cert).map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{}: no certificate found", cert.display()));
    };
    let names = dns_names(leaf.as_ref()).map_err(|e| format!("{}: {e}", cert.display()))?;
    let key_pem = std::fs::read(key).map_err(|e| format!("cannot read key {}: {e}", key.display()))?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: bad PEM: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("{}: unsupported key: {e}", key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("{} does not match {}: {e}", key.display(), cert.display()))?;
    Ok((Arc::new(ck), names))
}

fn dns_names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("bad certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

impl SniResolver {
    /// Builds a resolver from loaded keys in config order (the first is the default).
    pub(crate) fn new(keys: Vec<(Arc<CertifiedKey>, Vec<String>)>) -> Option<SniResolver> {
        let default = keys.first()?.0.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (ck, names) in keys {
            for n in names {
                match n.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_string()).or_insert_with(|| ck.clone()),
                    None => exact.entry(n).or_insert_with(|| ck.clone()),
                };
            }
        }
        Some(SniResolver {
            exact,
            wildcard,
            default,
        })
    }
}
