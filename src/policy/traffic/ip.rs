//! `ip`: allow and deny lists by CIDR (IPv4 and IPv6, `ipnet` for parsing
//! and containment), and the client address itself: X-Forwarded-For is
//! believed only from `server.trusted_proxies`.

use crate::config::IpRulesConfig;
use crate::error::GatewayError;
use crate::policy::{Rejection, Step};
use ipnet::IpNet;
use std::net::IpAddr;

pub struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Parses `10.0.0.0/8`, `::1` or `192.168.1.7` (a bare address is a /32 or /128).
pub(crate) fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an IP address or CIDR"))
}

/// Parses every entry; the error names each bad one, not only the first.
pub(crate) fn parse_nets(list: &[String], field: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match parse_net(s) {
            Ok(n) => nets.push(n),
            Err(e) => bad.push(format!("{field}[{i}]: {e}")),
        }
    }
    if bad.is_empty() {
        Ok(nets)
    } else {
        Err(bad.join("; "))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpRules {
    pub fn new(c: &IpRulesConfig) -> Result<IpRules, String> {
        if c.allow.is_empty() && c.deny.is_empty() {
            return Err("give `allow` or `deny` networks".into());
        }
        Ok(IpRules {
            allow: parse_nets(&c.allow, "allow")?,
            deny: parse_nets(&c.deny, "deny")?,
        })
    }

    pub fn check(&self, ip: Option<IpAddr>) -> Step {
        let Some(ip) = ip.map(canonical) else {
            // A Unix-socket client has no address; only an allow-list-free rule admits it.
            if self.allow.is_empty() {
                return Step::Continue;
            }
            return forbidden("client address unknown");
        };
        if self.deny.iter().any(|n| n.contains(&ip))
            || (!self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&ip)))
        {
            return forbidden(&format!("client address {ip} is not allowed"));
        }
        Step::Continue
    }
}

fn forbidden(msg: &str) -> Step {
    Step::Reject(Rejection::new(GatewayError::Forbidden, msg))
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case X-Forwarded-For is read from the right, skipping trusted hops;
/// the first untrusted address is the client.
pub(crate) fn client_address<'a>(
    peer: Option<IpAddr>,
    xff: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    let mut client = peer;
    for header in xff.rev() {
        let Ok(text) = std::str::from_utf8(header) else {
            return Some(client);
        };
        for hop in text.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>().map(canonical) else {
                // A garbled hop: stop believing anything further left.
                return Some(client);
            };
            client = ip;
            if !trusted.iter().any(|n| n.contains(&ip)) {
                return Some(ip);
            }
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff<'a>(v: &'a [&'a [u8]]) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        v.iter().copied()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules() {
        let r = IpRules::new(&IpRulesConfig {
            allow: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            deny: vec!["10.1.0.0/16".into()],
        })
        .unwrap();
        assert!(matches!(r.check(Some(ip("10.2.3.4"))), Step::Continue));
        assert!(matches!(r.check(Some(ip("::ffff:10.2.3.4"))), Step::Continue));
        assert!(matches!(r.check(Some(ip("10.1.3.4"))), Step::Reject(_)));
        assert!(matches!(r.check(Some(ip("11.0.0.1"))), Step::Reject(_)));
        assert!(matches!(r.check(Some(ip("2001:db8::1"))), Step::Continue));
        assert!(matches!(r.check(Some(ip("2001:db9::1"))), Step::Reject(_)));
        assert!(IpRules::new(&IpRulesConfig {
            allow: vec!["nope".into()],
            deny: vec![]
        })
        .is_err());
    }

    #[test]
    fn forwarded_for() {
        let trusted = vec![parse_net("127.0.0.1").unwrap(), parse_net("10.0.0.0/8").unwrap()];
        let peer = Some(ip("127.0.0.1"));
        // Untrusted peer: XFF ignored.
        assert_eq!(
            client_address(Some(ip("8.8.8.8")), xff(&[b"1.2.3.4"]), &trusted),
            Some(ip("8.8.8.8"))
        );
        // Trusted peer: rightmost untrusted hop wins, a spoofed leftmost one is ignored.
        assert_eq!(
            client_address(peer, xff(&[b"6.6.6.6, 1.2.3.4, 10.0.0.2"]), &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_address(peer, xff(&[b"6.6.6.6", b"1.2.3.4"]), &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_address(peer, xff(&[b"garbage, 1.2.3.4"]), &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_address(peer, xff(&[b"1.2.3.4, garbage"]), &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(client_address(peer, xff(&[]), &trusted), Some(ip("127.0.0.1")));
        assert_eq!(
            client_address(peer, xff(&[b"10.0.0.5"]), &trusted),
            Some(ip("10.0.0.5"))
        );
    }
}
