//! The request head, read whole by Portico before Pingora parses it: with a
//! time limit (`server.request_head_timeout`, like nginx's
//! `client_header_timeout`), so a client that trickles a header line every
//! few seconds cannot hold a connection for ever; and checked for what
//! Pingora would refuse with a bodiless 400, so every refusal is the JSON
//! error of [`crate::error`] with the README's status.
//!
//! A head that fits the first read (the common case) costs one httparse pass
//! over bytes already in cache; a longer one is read here into the same
//! buffer, which Pingora then parses without reading again (it is handed
//! over as the session's "pipelined prefix").

use super::http1::malformed_head;
use crate::error::GatewayError;
use bytes::BytesMut;
use pingora_core::protocols::Stream;
use std::mem::MaybeUninit;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Pingora's limit on header lines (`MAX_HEADERS`).
const MAX_HEADERS: usize = 256;

/// The longest request target the `http` crate parses.
const MAX_TARGET: usize = 65534;

/// How a request head is read and checked; fixed at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadRules {
    /// The whole head must arrive within this, counted from its first byte.
    pub(crate) timeout: Duration,
    /// Largest head accepted (`server.max_header_size` at start).
    pub(crate) max_bytes: usize,
    /// The longest pause between two reads of a head, as between requests
    /// (`server.keepalive_timeout`): a client that stops sending is closed
    /// quietly, as an idle one is.
    pub(crate) idle: Duration,
}

/// Why a request head is refused: the error (its status and type come from
/// [`GatewayError`], as every other refusal's do) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) error: GatewayError,
    pub(crate) message: String,
}

impl Refusal {
    fn new(error: GatewayError, message: impl Into<String>) -> Refusal {
        Refusal {
            error,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(GatewayError::BadRequest, message)
    }

    fn too_large(message: impl Into<String>) -> Refusal {
        Refusal::new(GatewayError::HeadersTooLarge, message)
    }
}

/// What a look at the bytes so far found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadCheck {
    /// The head is complete and Pingora may have it.
    Complete,
    /// More bytes are needed.
    Incomplete,
    /// The head can never be served.
    Refuse(Refusal),
}

/// Reads until `buf` holds a complete head. `Err(Some(_))`: refuse it;
/// `Err(None)`: the client went away, paused longer than `rules.idle`, or
/// the read failed: close quietly.
pub(crate) async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
    rules: HeadRules,
) -> Result<(), Option<Refusal>> {
    // Read from the clock only for a head that needs more reads.
    let mut deadline = None;
    loop {
        match check_head(buf, rules.max_bytes) {
            HeadCheck::Complete => return Ok(()),
            HeadCheck::Refuse(r) => return Err(Some(r)),
            HeadCheck::Incomplete => {}
        }
        if buf.len() > rules.max_bytes {
            return Err(Some(Refusal::too_large(format!(
                "request headers exceed {} bytes",
                rules.max_bytes
            ))));
        }
        buf.reserve(4096);
        let now = tokio::time::Instant::now();
        let deadline = *deadline.get_or_insert(now + rules.timeout);
        let pause = now + rules.idle;
        match tokio::time::timeout_at(deadline.min(pause), stream.read_buf(buf)).await {
            Err(_) if pause < deadline => return Err(None),
            Err(_) => {
                crate::telemetry::metrics::METRICS
                    .client_timeouts_total
                    .with_label_values(&["head"])
                    .inc();
                return Err(Some(Refusal::new(
                    GatewayError::RequestTimeout,
                    format!("the request head did not arrive within {:?}", rules.timeout),
                )));
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Err(None),
            Ok(Ok(_)) => {}
        }
    }
}

/// Checks the head in `buf` (possibly followed by body bytes).
pub(crate) fn check_head(buf: &[u8], max_bytes: usize) -> HeadCheck {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Partial) => {
            if request_target_len(buf) > MAX_TARGET {
                return HeadCheck::Refuse(Refusal::too_large(format!(
                    "request target longer than {MAX_TARGET} bytes"
                )));
            }
            HeadCheck::Incomplete
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > max_bytes {
                return HeadCheck::Refuse(Refusal::too_large(format!("request headers exceed {max_bytes} bytes")));
            }
            match semantic_problem(&req) {
                Some(r) => HeadCheck::Refuse(r),
                None => HeadCheck::Complete,
            }
        }
        Err(httparse::Error::TooManyHeaders) => {
            HeadCheck::Refuse(Refusal::too_large(format!("more than {MAX_HEADERS} header lines")))
        }
        Err(_) => match malformed_head(buf) {
            Some(message) => HeadCheck::Refuse(Refusal::bad(message)),
            // A request line Pingora repairs itself: its parser decides.
            None => HeadCheck::Complete,
        },
    }
}

/// The length of the request target seen so far.
fn request_target_len(buf: &[u8]) -> usize {
    let Some(start) = buf.iter().position(|&b| b == b' ') else {
        return 0;
    };
    let rest = &buf[start + 1..];
    rest.iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(rest.len())
}

/// What Pingora's own checks would refuse in a parsed head (request target,
/// Host, framing), as the JSON error.
fn semantic_problem(req: &httparse::Request) -> Option<Refusal> {
    let path = req.path.unwrap_or("");
    if path.len() > MAX_TARGET {
        return Some(Refusal::too_large(format!(
            "request target longer than {MAX_TARGET} bytes"
        )));
    }
    if req.method == Some("CONNECT") {
        return Some(Refusal::new(GatewayError::MethodNotAllowed, "CONNECT is not supported"));
    }
    let http11 = req.version == Some(1);
    let named = |name: &'static str| req.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name));
    let mut hosts = named("host").map(|h| h.value);
    let host = hosts.next();
    match (host, hosts.next()) {
        (None, _) if http11 => return Some(Refusal::bad("an HTTP/1.1 request needs a Host header")),
        (Some(_), Some(_)) => return Some(Refusal::bad("the request has several Host headers")),
        (Some(h), None) if h.contains(&b'@') => return Some(Refusal::bad("userinfo in the Host header")),
        _ => {}
    }
    if let Some(problem) = target_problem(path.as_bytes(), host) {
        return Some(Refusal::bad(problem));
    }
    let mut te = named("transfer-encoding").peekable();
    if te.peek().is_some() {
        if !http11 {
            return Some(Refusal::bad("an HTTP/1.0 request cannot use Transfer-Encoding"));
        }
        let last = te
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .rfind(|t| !t.is_empty());
        if !last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
            return Some(Refusal::bad("the final Transfer-Encoding is not chunked"));
        }
        return None;
    }
    content_length_problem(named("content-length").map(|h| h.value)).map(Refusal::bad)
}

/// An absolute-form request target (`GET http://host/path`) must name one
/// authority, parseable, without userinfo, and the same one as `Host`
/// (Pingora's rules, RFC 9112 section 3.2.2).
fn target_problem(target: &[u8], host: Option<&[u8]>) -> Option<&'static str> {
    use pingora_http::authority::{is_http_family_scheme, raw_target_authority, RawTargetAuthority};
    match raw_target_authority(target) {
        RawTargetAuthority::None => None,
        RawTargetAuthority::AmbiguousAuthority => Some("ambiguous absolute-form request target"),
        RawTargetAuthority::Absolute { scheme, authority, .. } => {
            if is_http_family_scheme(scheme) && http::uri::Authority::try_from(authority).is_err() {
                Some("unparseable authority in the request target")
            } else if authority.contains(&b'@') {
                Some("userinfo in the request target")
            } else if host.is_some_and(|h| h != authority) {
                Some("the Host header differs from the request target's authority")
            } else {
                None
            }
        }
    }
}

/// Content-Length values must be decimal digits that fit 64 bits, and agree
/// (RFC 9110 section 8.6: identical duplicates and lists are one value).
fn content_length_problem<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<&'static str> {
    let mut seen: Option<u64> = None;
    for token in values.flat_map(|v| v.split(|&b| b == b',')) {
        let token = token.trim_ascii();
        if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
            return Some("invalid Content-Length");
        }
        let n = std::str::from_utf8(token).ok().and_then(|s| s.parse::<u64>().ok());
        let Some(n) = n else {
            return Some("Content-Length too large");
        };
        if seen.is_some_and(|s| s != n) {
            return Some("conflicting Content-Length values");
        }
        seen = Some(n);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &str) -> HeadCheck {
        check_head(head.as_bytes(), 64 * 1024)
    }

    fn refusal(head: &str) -> (u16, String) {
        match check(head) {
            HeadCheck::Refuse(r) => (r.error.status(), r.message),
            other => panic!("{head:?}: {other:?}"),
        }
    }

    #[test]
    fn good_heads_pass_and_partial_ones_wait() {
        assert_eq!(check("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), HeadCheck::Complete);
        assert_eq!(check("GET / HTTP/1.0\r\n\r\n"), HeadCheck::Complete);
        assert_eq!(
            check("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"),
            HeadCheck::Complete
        );
        assert_eq!(
            check("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HeadCheck::Complete
        );
        assert_eq!(check("GET / HTTP/1.1\r\nHost: a\r\n"), HeadCheck::Incomplete);
    }

    #[test]
    fn what_pingora_would_refuse_bodiless_is_named() {
        assert_eq!(refusal("GET / HTTP/1.1\r\n\r\n").0, 400);
        assert_eq!(refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").0, 400);
        assert_eq!(refusal("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n").0, 400);
        for cl in ["99999999999999999999", "+5", "0x5", "5, 6", ""] {
            let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(refusal(&head).0, 400, "{cl}");
        }
        assert_eq!(
            refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").0,
            400
        );
        assert_eq!(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").0, 400);
        assert_eq!(
            refusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").0,
            400
        );
        assert_eq!(refusal("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").0, 405);
        assert_eq!(
            refusal("GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n").0,
            400
        );
        assert_eq!(
            refusal("GET http://u@a.example/x HTTP/1.1\r\nHost: u@a.example\r\n\r\n").0,
            400
        );
        assert_eq!(
            check("GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"),
            HeadCheck::Complete
        );
    }

    #[test]
    fn oversized_heads_are_431() {
        let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(refusal(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).0, 431);
        let long = "a".repeat(70 * 1024);
        assert_eq!(refusal(&format!("GET /{long}")).0, 431);
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(65 * 1024));
        assert_eq!(refusal(&big).0, 431);
    }
}
