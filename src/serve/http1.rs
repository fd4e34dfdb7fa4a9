//! The HTTP/1 connection loop: a keep-alive connection that waits for its
//! next request holds a small buffer, not a whole request's state.
//!
//! Pingora's own loop hands each connection straight to the proxy, which
//! waits for the next request inside its per-request future: tens of KiB per
//! idle keep-alive connection (about 39 KiB measured, see bench/TUNING.md).
//! Here the wait happens first, in a future that holds no buffer at all: the
//! bytes are read onto the stack of the poll that finds the socket readable
//! ([`IDLE_READ`] of them at most) and only then copied into the parser's
//! buffer. They are given to the HTTP/1 session as its "pipelined prefix",
//! Pingora's public way to start a session with bytes already read, so the
//! request parser sees exactly what it would have read itself, with no extra
//! system call.
//!
//! A request head that is malformed in its first read gets Portico's JSON
//! 400 here ([`malformed_head`]); Pingora would answer it with an empty
//! body. HTTP/2 (h2c or ALPN h2) and custom protocols keep Pingora's loop.

use super::head::{read_head, HeadRules, Refusal};
use bytes::BytesMut;
use once_cell::sync::Lazy;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

/// How many bytes the idle wait reads: the parser's first buffer, Pingora's
/// `INIT_HEADER_BUF_SIZE`. The rest of a larger head is read by the parser,
/// as Pingora would. The read lives on the stack, so its size costs an idle
/// connection nothing.
pub const IDLE_READ: usize = 4096;

/// Whether this connection is plain HTTP/1 and can use [`serve_http1`].
pub fn is_http1<A: HttpServerApp>(app: &A, stream: &Stream) -> bool {
    let options = app.server_options();
    let h2c = options.is_some_and(|o| o.h2c) && stream.get_ssl_digest().is_none();
    let custom = options.is_some_and(|o| o.force_custom);
    !h2c && !custom && matches!(stream.selected_alpn_proto(), None | Some(ALPN::H1))
}

/// How Portico's HTTP/1 loop treats a client connection; fixed at start
/// (a change needs `portico upgrade`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionRules {
    /// How long a connection may wait for its next request.
    pub(crate) keepalive: Duration,
    /// How the request head is read and checked.
    pub(crate) head: HeadRules,
    /// How long one read of the request body may wait.
    pub(crate) body_timeout: Duration,
}

/// Serves HTTP/1 requests on `stream` until it closes, waits longer than
/// `rules.keepalive` for a request, stops being kept alive, or `closing`
/// turns true.
pub(crate) async fn serve_http1<A>(
    app: &Arc<A>,
    mut stream: Stream,
    shutdown: &ShutdownWatch,
    rules: ConnectionRules,
    mut closing: watch::Receiver<bool>,
) -> Option<Stream>
where
    A: HttpServerApp + ServerApp + Send + Sync + 'static,
{
    let keepalive = rules.keepalive;
    let mut settings: Option<HttpPersistentSettings> = None;
    // One timer for the connection's life, re-armed only when it fires
    // early (see `next_request`), instead of one per wait.
    let idle_timer = tokio::time::sleep(keepalive);
    tokio::pin!(idle_timer);
    loop {
        let mut prefix = next_request(&mut stream, keepalive, idle_timer.as_mut(), &mut closing).await?;
        if let Err(refusal) = read_head(&mut stream, &mut prefix, rules.head).await {
            if let Some(refusal) = refusal {
                reply_refusal(&mut stream, &refusal).await;
            }
            return None;
        }
        let mut session = ServerSession::new_http1(stream);
        match settings.take() {
            Some(s) => s.apply_to_session(&mut session),
            None => {
                // As Pingora's loop does for a new connection; later
                // sessions inherit it through the settings.
                session.set_keepalive((!*shutdown.borrow()).then_some(keepalive.as_secs()));
                let limit = app.server_options().and_then(|o| o.keepalive_request_limit);
                session.set_keepalive_reuses_remaining(limit);
            }
        }
        // Portico never turns HTTP/1 pipelining on, so the settings carried
        // no prefix of their own and this one is the only one.
        if let ServerSession::H1(h1) = &mut session {
            h1.set_pipelined_prefix(prefix);
        }
        session.set_read_timeout(Some(rules.body_timeout));
        let reused = app.process_new_http(session, shutdown).await?;
        let (next, next_settings) = reused.consume();
        stream = next;
        settings = next_settings;
    }
}

/// Waits for the first bytes of the next request. `None` when the client
/// closed, the read failed, the connection sat idle for `keepalive`, or the
/// server is closing its idle connections.
///
/// The wait's start is read from the coarse clock, and `timer` (armed
/// `keepalive` after some earlier wait began) is not touched: when it fires
/// before this wait has lasted `keepalive`, it is re-armed for the rest. A
/// busy connection so costs one coarse clock read per request and a timer
/// re-arm once per `keepalive`, where a timer per wait cost two exact clock
/// reads, two allocations and a lock (bench/TUNING.md, change 13).
async fn next_request(
    stream: &mut Stream,
    keepalive: Duration,
    mut timer: Pin<&mut tokio::time::Sleep>,
    closing: &mut watch::Receiver<bool>,
) -> Option<BytesMut> {
    let began = crate::telemetry::clock::coarse_monotonic();
    loop {
        let read = std::future::poll_fn(|cx| read_ready(stream, cx));
        tokio::select! {
            biased;
            read = read => return read,
            _ = timer.as_mut() => {
                let idle = crate::telemetry::clock::coarse_monotonic().saturating_sub(began);
                if idle >= keepalive {
                    return None;
                }
                timer.as_mut().reset(tokio::time::Instant::now() + (keepalive - idle));
            }
            _ = closing.wait_for(|closing| *closing) => return None,
        }
    }
}

/// Reads what the client sent once the socket is readable. The buffer is on
/// this poll's stack, not in the waiting future, and is left uninitialised.
fn read_ready(stream: &mut Stream, cx: &mut Context<'_>) -> Poll<Option<BytesMut>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); IDLE_READ];
    let mut read = ReadBuf::uninit(&mut buf);
    match Pin::new(stream).poll_read(cx, &mut read) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Ok(())) if !read.filled().is_empty() => {
            let mut prefix = BytesMut::with_capacity(IDLE_READ);
            prefix.extend_from_slice(read.filled());
            Poll::Ready(Some(prefix))
        }
        Poll::Ready(_) => Poll::Ready(None),
    }
}

/// Pingora's request-line pattern: a request line it would percent-encode and
/// parse again (a URI with spaces, quotes or control bytes) is left to it.
static REQUEST_LINE: Lazy<Option<regex::bytes::Regex>> =
    Lazy::new(|| regex::bytes::Regex::new(r"^\w+ (?P<uri>.+) HTTP/\d(?:\.\d)?").ok());

/// Why the start of a request head can never parse, with the same parser
/// and settings Pingora uses; `None` when it parses, is incomplete, or is a
/// case Pingora repairs or decides itself. A complete head costs one extra
/// pass of httparse over bytes already in cache.
pub fn malformed_head(buf: &[u8]) -> Option<String> {
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; 256];
    let error = httparse::Request::new(&mut [])
        .parse_with_uninit_headers(buf, &mut headers)
        .err()?;
    match error {
        // More headers than this check holds: Pingora applies its own limit.
        httparse::Error::TooManyHeaders => None,
        httparse::Error::Token | httparse::Error::Version if repairable_request_line(buf) => None,
        e => Some(format!("malformed request: {e}")),
    }
}

/// Whether Pingora would escape the request line's URI and try again.
fn repairable_request_line(buf: &[u8]) -> bool {
    let Some(re) = REQUEST_LINE.as_ref() else { return true };
    re.captures(buf).and_then(|c| c.name("uri")).is_some_and(|uri| {
        uri.as_bytes()
            .iter()
            .any(|&b| b.is_ascii_control() || b" <>\"".contains(&b) || b >= 0x7f)
    })
}

/// Answers a refused head with the JSON error every other refusal has, and
/// closes: the rest of the bytes cannot be framed.
async fn reply_refusal(stream: &mut Stream, refusal: &Refusal) {
    let id = crate::telemetry::clock::new_request_id();
    let status = refusal.error.status();
    let body = crate::error::error_body(&refusal.message, refusal.error, None, &id);
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    log::debug!(
        "{} from {:?}",
        refusal.message,
        stream.get_socket_digest().and_then(|d| d.peer_addr().cloned())
    );
    if stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(&body).await.is_ok() {
        let _ = stream.flush().await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::malformed_head;

    #[test]
    fn malformed_heads_are_named_and_the_rest_left_to_pingora() {
        for (head, bad) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], false),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", false),
            (b"GE", false),
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", false),
            (b"GET /\"q\" HTTP/1.1\r\n\r\n", false),
            (b"NOT HTTP AT ALL\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", true),
            (b"GET / HTTP/9\r\n\r\n", true),
            (b"\x00\x01\x02\r\n\r\n", true),
        ] {
            assert_eq!(
                malformed_head(head).is_some(),
                bad,
                "{:?}: {:?}",
                String::from_utf8_lossy(head),
                malformed_head(head)
            );
        }
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(300));
        assert_eq!(
            malformed_head(many.as_bytes()),
            None,
            "too many headers: Pingora's call"
        );
    }

    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the malformed-head check.
        #[test]
        fn malformed_head_check_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = super::malformed_head(&bytes);
        }

        /// A well-formed head, whole or cut anywhere, is never called malformed.
        #[test]
        fn well_formed_heads_are_never_malformed(
            method in "[A-Z]{1,10}",
            path in "/[a-zA-Z0-9/._~%-]{0,60}",
            query in proptest::option::of("[a-z0-9=&]{0,30}"),
            headers in proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9-]{0,20}", "[!-~]([ -~]{0,38}[!-~])?"), 0..12),
            cut in 0usize..1000,
        ) {
            let mut head = format!("{method} {path}{} HTTP/1.1\r\n", query.map(|q| format!("?{q}")).unwrap_or_default());
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let bytes = head.as_bytes();
            prop_assert_eq!(super::malformed_head(bytes), None);
            let cut = cut.min(bytes.len());
            prop_assert_eq!(super::malformed_head(&bytes[..cut]), None);
        }
    }
}
