//! Header work on the proxy path: request ids, X-Forwarded-*, hop-by-hop
//! removal (RFC 9110 section 7.6.1) and the host of a request.

use http::header::{HeaderMap, HeaderName, CONNECTION, TE, UPGRADE};

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [&str; 4] = ["keep-alive", "proxy-connection", "te", "trailer"];

/// A client-sent request id is kept when it is short and of safe characters.
pub fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'=' | b'+' | b'/'))
}

pub fn new_request_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Names listed in the Connection header (lower case).
fn connection_tokens(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

/// True for a protocol upgrade (e.g. WebSocket) that must keep Connection/Upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) && connection_tokens(headers).iter().any(|t| t.as_str() == "upgrade")
}

/// Removes hop-by-hop headers from a message about to be forwarded; `keep_upgrade`
/// keeps Connection and Upgrade of a protocol upgrade. Calls `remove` per name.
pub fn hop_by_hop_names(headers: &HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    let mut names = Vec::new();
    if !headers.contains_key(CONNECTION) && !HOP_BY_HOP.iter().any(|h| headers.contains_key(*h)) {
        return names;
    }
    for t in connection_tokens(headers) {
        if keep_upgrade && t == UPGRADE {
            continue;
        }
        names.push(t);
    }
    for h in HOP_BY_HOP {
        if headers.contains_key(h) {
            if h == "te"
                && headers
                    .get(TE)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"))
            {
                // "TE: trailers" is allowed end to end (gRPC needs it).
                continue;
            }
            names.push(HeaderName::from_static(h));
        }
    }
    if !keep_upgrade {
        names.push(CONNECTION);
        if headers.contains_key(UPGRADE) {
            names.push(UPGRADE);
        }
    }
    names
}

/// The request's host without port, lower case; `authority` covers HTTP/2.
pub fn request_host<'a>(host_header: Option<&'a [u8]>, authority: Option<&'a str>) -> String {
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
pub fn raw_has_header(raw: &[u8], name: &[u8]) -> bool {
    raw.split(|b| *b == b'\n').skip(1).any(|line| {
        line.len() > name.len() && line[name.len()] == b':' && line[..name.len()].eq_ignore_ascii_case(name)
    })
}

/// Approximate size of a request head (HTTP/2, where no raw bytes exist).
/// The method a CORS preflight announces; None when the request is not a preflight.
pub fn preflight_method(req: &pingora_http::RequestHeader) -> Option<http::Method> {
    if req.method != http::Method::OPTIONS || !req.headers.contains_key(http::header::ORIGIN) {
        return None;
    }
    let m = req.headers.get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
    http::Method::from_bytes(m.as_bytes()).ok()
}

pub fn header_size(req: &pingora_http::RequestHeader) -> usize {
    let line = req.method.as_str().len() + req.uri.to_string().len() + 12;
    req.headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
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
    fn request_ids() {
        assert!(sane_request_id(b"abc-123"));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"a b"));
        assert!(!sane_request_id(&[b'a'; 200]));
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
}
