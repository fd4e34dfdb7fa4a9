//! The HTTP/1 connection loop: a keep-alive connection that waits for its
//! next request holds a small buffer, not a whole request's state.
//!
//! Pingora's own loop hands each connection straight to the proxy, which
//! waits for the next request inside its per-request future: tens of KiB per
//! idle keep-alive connection (about 39 KiB measured, see bench/TUNING.md).
//! Here the wait happens first, in a future that holds only [`IDLE_READ`]
//! bytes. The bytes that arrive are given to the HTTP/1 session as its
//! "pipelined prefix", Pingora's public way to start a session with bytes
//! already read, so the request parser sees exactly what it would have read
//! itself, with no extra system call.
//!
//! HTTP/2 (h2c or ALPN h2) and custom protocols keep Pingora's loop.

use bytes::BytesMut;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// How many bytes the idle wait reads. Most request headers fit; the rest of
/// a larger one is read by the parser, as Pingora would.
pub const IDLE_READ: usize = 2048;

/// The parser's first buffer, Pingora's `INIT_HEADER_BUF_SIZE`.
const HEADER_BUF: usize = 4096;

/// Whether this connection is plain HTTP/1 and can use [`serve_http1`].
pub fn is_http1<A: HttpServerApp>(app: &A, stream: &Stream) -> bool {
    let options = app.server_options();
    let h2c = options.is_some_and(|o| o.h2c) && stream.get_ssl_digest().is_none();
    let custom = options.is_some_and(|o| o.force_custom);
    !h2c && !custom && matches!(stream.selected_alpn_proto(), None | Some(ALPN::H1))
}

/// Serves HTTP/1 requests on `stream` until it closes, waits longer than
/// `keepalive` for a request, stops being kept alive, or `closing` turns true.
pub async fn serve_http1<A>(
    app: &Arc<A>,
    mut stream: Stream,
    shutdown: &ShutdownWatch,
    keepalive: Duration,
    mut closing: watch::Receiver<bool>,
) -> Option<Stream>
where
    A: HttpServerApp + ServerApp + Send + Sync + 'static,
{
    let mut settings: Option<HttpPersistentSettings> = None;
    loop {
        let prefix = next_request(&mut stream, keepalive, &mut closing).await?;
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
        let reused = app.process_new_http(session, shutdown).await?;
        let (next, next_settings) = reused.consume();
        stream = next;
        settings = next_settings;
    }
}

/// Waits for the first bytes of the next request. `None` when the client
/// closed, the read failed, the connection sat idle too long, or the server
/// is closing its idle connections.
async fn next_request(
    stream: &mut Stream,
    keepalive: Duration,
    closing: &mut watch::Receiver<bool>,
) -> Option<BytesMut> {
    let mut buf = [0u8; IDLE_READ];
    let read = tokio::select! {
        biased;
        read = pingora_timeout::timeout(keepalive, stream.read(&mut buf)) => read,
        _ = closing.wait_for(|closing| *closing) => return None,
    };
    match read {
        Ok(Ok(n)) if n > 0 => {
            let mut prefix = BytesMut::with_capacity(HEADER_BUF.max(n));
            prefix.extend_from_slice(buf.get(..n)?);
            Some(prefix)
        }
        _ => None,
    }
}
