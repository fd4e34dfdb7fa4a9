//! Header work on the proxy path: X-Forwarded-*, hop-by-hop
//! removal (RFC 9110 section 7.6.1) and the host of a request.

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, UPGRADE};
use std::net::IpAddr;

/// The names Portico reads or writes on every request, built once: a
/// lookup or insert by `&str` parses the name each time.
pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(super) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers that describe one connection, never forwarded. A static built
/// once: a lookup by `&str` would parse the name on every request, and a
/// `const` array would be built and dropped wherever it is used.
/// `present` numbers them in this order.
static HOP_BY_HOP: [HeaderName; 4] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    HeaderName::from_static("trailer"),
];

/// Which connection-level headers a message has, found in one pass over its
/// names (a handful of comparisons each) rather than a hash lookup for
/// every candidate.
#[derive(Default)]
struct Present {
    connection: bool,
    upgrade: bool,
    /// Bit i: `HOP_BY_HOP[i]`.
    hop_by_hop: u8,
}

fn present(headers: &HeaderMap) -> Present {
    let mut p = Present::default();
    for name in headers.keys() {
        // Names are lower case; a match on the text is a length switch and
        // a compare, where comparing `HeaderName`s is a call each.
        match name.as_str() {
            "connection" => p.connection = true,
            "upgrade" => p.upgrade = true,
            "keep-alive" => p.hop_by_hop |= 1,
            "proxy-connection" => p.hop_by_hop |= 1 << 1,
            "te" => p.hop_by_hop |= 1 << 2,
            "trailer" => p.hop_by_hop |= 1 << 3,
            _ => {}
        }
    }
    p
}

/// The options listed in the Connection header, as sent (any case).
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// True for a protocol upgrade (e.g. WebSocket) that must keep Connection/Upgrade.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    let p = present(headers);
    p.upgrade && p.connection && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The hop-by-hop headers present in a message about to be forwarded;
/// `keep_upgrade` keeps Connection and Upgrade of a protocol upgrade. Nothing
/// is allocated unless a header must go, and then only its name.
pub(super) fn hop_by_hop_names(headers: &HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    let mut names = Vec::new();
    let p = present(headers);
    if !p.connection && p.hop_by_hop == 0 {
        return names;
    }
    if p.connection {
        for t in connection_tokens(headers) {
            if keep_upgrade && t.eq_ignore_ascii_case("upgrade") {
                continue;
            }
            // A fixed hop-by-hop name's presence is known; any other option
            // ("close") is usually not a header present.
            if let Some(i) = HOP_BY_HOP.iter().position(|h| t.eq_ignore_ascii_case(h.as_str())) {
                if p.hop_by_hop & (1 << i) != 0 && !names.contains(&HOP_BY_HOP[i]) {
                    names.push(HOP_BY_HOP[i].clone());
                }
                continue;
            }
            if !headers.contains_key(t) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(t.as_bytes()) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    for (i, h) in HOP_BY_HOP.iter().enumerate() {
        if p.hop_by_hop & (1 << i) == 0 || names.contains(h) {
            continue;
        }
        if h == TE
            && headers
                .get(TE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"))
        {
            // "TE: trailers" is allowed end to end (gRPC needs it).
            continue;
        }
        names.push(h.clone());
    }
    if !keep_upgrade {
        if p.connection {
            names.push(CONNECTION);
        }
        if p.upgrade && !names.contains(&UPGRADE) {
            names.push(UPGRADE);
        }
    }
    names
}

/// `ip` as a header value, formatted without `fmt` for IPv4 (the common
/// case, on every proxied request).
pub(super) fn ip_value(ip: IpAddr) -> Option<HeaderValue> {
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let digits = [octet / 100, octet / 10 % 10, octet % 10];
                let skip = if octet >= 100 {
                    0
                } else if octet >= 10 {
                    1
                } else {
                    2
                };
                for d in &digits[skip..] {
                    buf[len] = b'0' + d;
                    len += 1;
                }
            }
            HeaderValue::from_bytes(&buf[..len]).ok()
        }
        IpAddr::V6(_) => HeaderValue::from_str(&ip.to_string()).ok(),
    }
}

/// The request's host without port, lower case; `authority` covers HTTP/2.
pub(super) fn request_host<'a>(host_header: Option<&'a [u8]>, authority: Option<&'a str>) -> String {
    let raw = host_header
        .and_then(|h| std::str::from_utf8(h).ok())
        .or(authority)
        .unwrap_or("");
    let no_port = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        raw.rsplit_once(':').map_or(
            raw,
            |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { raw },
        )
    };
    no_port.trim_end_matches('.').to_ascii_lowercase()
}

/// True when the raw HTTP/1 head has a header line named `name` (lower case).
pub(super) fn raw_has_header(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|b| *b == b'\n').skip(1).any(|line| {
        line.len() > name.len() && line[name.len()] == b':' && line[..name.len()].eq_ignore_ascii_case(name)
    })
}

/// The method a CORS preflight announces; None when the request is not a preflight.
pub(super) fn preflight_method(req: &pingora_http::RequestHeader) -> Option<http::Method> {
    if req.method != http::Method::OPTIONS || !req.headers.contains_key(http::header::ORIGIN) {
        return None;
    }
    let m = req.headers.get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
    http::Method::from_bytes(m.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(request_host(Some(b"API.example.com:8080"), None), "api.example.com");
        assert_eq!(request_host(Some(b"[::1]:80"), None), "::1");
        assert_eq!(request_host(None, Some("a.b")), "a.b");
        assert_eq!(request_host(Some(b"example.com."), None), "example.com");
    }

    #[test]
    fn ip_values() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.100.99.9",
            "::1",
            "2001:db8::7",
        ] {
            let v = ip_value(ip.parse().unwrap()).unwrap();
            assert_eq!(v.to_str().unwrap(), ip);
        }
    }

    #[test]
    fn raw_headers() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(raw_has_header(raw, b"content-length"));
        assert!(!raw_has_header(
            b"GET /content-length: HTTP/1.1\r\nHost: a\r\n\r\n",
            b"content-length"
        ));
    }

    #[test]
    fn hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        let names = hop_by_hop_names(&h, false);
        assert!(names.iter().any(|n| n == "x-secret"));
        assert!(names.iter().any(|n| n == "keep-alive"));
        assert!(names.contains(&CONNECTION));
        assert!(!names.iter().any(|n| n == "te"));
    }

    #[test]
    fn hop_by_hop_tokens_in_any_case_and_only_headers_present() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "Keep-Alive".parse().unwrap());
        assert_eq!(hop_by_hop_names(&h, false), vec![CONNECTION], "an option, not a header");

        h.insert(CONNECTION, "close, X-Secret,, te".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert(UPGRADE, "websocket".parse().unwrap());
        let names = hop_by_hop_names(&h, false);
        assert_eq!(
            names,
            vec![HeaderName::from_static("x-secret"), TE, CONNECTION, UPGRADE]
        );

        let mut up = HeaderMap::new();
        up.insert(CONNECTION, "Upgrade".parse().unwrap());
        up.insert(UPGRADE, "websocket".parse().unwrap());
        assert!(is_upgrade(&up));
        assert!(hop_by_hop_names(&up, true).is_empty(), "an upgrade keeps both");
        assert_eq!(hop_by_hop_names(&up, false), vec![UPGRADE, CONNECTION]);

        assert!(hop_by_hop_names(&HeaderMap::new(), false).is_empty());
    }
}
