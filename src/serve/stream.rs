//! Client connections served on the reactor of the thread that serves them.
//!
//! With `work_stealing: false` Pingora runs one single-threaded tokio runtime
//! per worker thread. Its accept loop runs on one of them and hands each new
//! connection to a random one, but the socket stays registered with the
//! accept loop's reactor. Every readiness event of that connection then
//! arrives on the accepting thread, which has to wake the serving thread
//! through its event fd: two threads and a wake-up system call for each read.
//! `strace -c` showed 2.3 such wake-ups per proxied request at two threads
//! (bench/TUNING.md), and throughput stopped scaling with threads.
//!
//! [`detach`] takes a plain TCP connection out of the accepting runtime and
//! [`Detached::attach`] registers it with the runtime of the thread that
//! will serve it (one of Portico's own, [`crate::serve::workers`]), before its
//! first request: the socket is duplicated, the original dropped (which
//! deregisters it from the accepting reactor) and the copy registered anew.
//! [`LocalStream`] carries it with the same read and write buffer sizes as
//! Pingora's stream, but holds the write buffer only while a response is
//! being written. TLS connections and Unix sockets are left as they
//! are.

use async_trait::async_trait;
use pingora_core::listeners::L4BufferSettings;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest, SocketDigest, TimingDigest};
use pingora_core::protocols::{Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadBuf};
use tokio::net::TcpStream;

/// A client TCP connection registered with the reactor of the runtime that
/// created it, buffered like Pingora's own stream.
#[derive(Debug)]
pub(crate) struct LocalStream {
    io: Buffered,
    /// The socket's descriptor, Pingora's id for a stream.
    fd: std::os::fd::RawFd,
    digest: Option<Arc<SocketDigest>>,
    established: SystemTime,
}

/// A plain TCP client connection taken out of the runtime that accepted it,
/// ready to be registered with another one ([`Detached::attach`]).
#[derive(Debug)]
pub(crate) struct Detached {
    tcp: std::net::TcpStream,
    peer: std::net::SocketAddr,
    established: SystemTime,
}

/// Takes a plain TCP connection out of the accepting runtime: its socket is
/// duplicated and the original stream dropped, which deregisters it from
/// that runtime's reactor and closes the original descriptor; the copy keeps
/// the connection open. Anything else (a Unix socket, TLS) comes back as it
/// was, as does a connection whose descriptor cannot be duplicated. Nothing
/// is lost either way: it is called before anything has been read.
pub(crate) fn detach(stream: Stream) -> Result<Detached, Stream> {
    let Some(l4) = stream.as_any().downcast_ref::<L4Stream>() else {
        return Err(stream);
    };
    let Some(peer) = l4
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied())
    else {
        return Err(stream); // a Unix socket
    };
    // SAFETY: the descriptor belongs to `l4`, which is alive for this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(l4.as_raw_fd()) };
    let tcp = match fd.try_clone_to_owned() {
        Ok(copy) => std::net::TcpStream::from(copy),
        Err(e) => {
            log::debug!("connection stays on the accepting thread: dup failed: {e}");
            return Err(stream);
        }
    };
    let established = l4.established_ts;
    drop(stream);
    Ok(Detached { tcp, peer, established })
}

impl Detached {
    /// The connection registered with the current runtime's reactor, with
    /// Pingora's client buffers. `None` (the connection closes) only when the
    /// reactor refuses the socket.
    pub(crate) fn attach(self, buffers: L4BufferSettings) -> Option<Stream> {
        // The copy shares the original's file status flags: it is non-blocking already.
        let tcp = match TcpStream::from_std(self.tcp) {
            Ok(tcp) => tcp,
            Err(e) => {
                log::warn!(
                    "client connection from {} closed: the reactor refused it: {e}",
                    self.peer
                );
                return None;
            }
        };
        let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
        let _ = digest.peer_addr.set(Some(self.peer.into()));
        Some(Box::new(LocalStream {
            fd: tcp.as_raw_fd(),
            io: Buffered::new(buffers.read_capacity(), buffers.write_capacity(), tcp),
            digest: Some(Arc::new(digest)),
            established: self.established,
        }))
    }
}

/// The buffers of Pingora's own stream: a write buffer, and a read buffer
/// only when one is configured (tokio's `BufReader` refuses a zero capacity;
/// a zero-capacity `BufWriter` writes straight through).
#[derive(Debug)]
enum Buffered {
    Write(Writer),
    ReadWrite(BufReader<Writer>),
}

impl Buffered {
    fn new(read: usize, write: usize, tcp: TcpStream) -> Self {
        let writer = Writer {
            capacity: write,
            state: WriterState::Idle(tcp),
        };
        match read {
            0 => Buffered::Write(writer),
            n => Buffered::ReadWrite(BufReader::with_capacity(n, writer)),
        }
    }
}

/// Pingora's write buffer, held only while a response is being written: the
/// first write after a flush allocates it (tokio's `BufWriter`), and the
/// flush that empties it frees it. Between requests a keep-alive connection
/// holds no write buffer; Pingora's own stream keeps one for the
/// connection's whole life.
#[derive(Debug)]
struct Writer {
    capacity: usize,
    state: WriterState,
}

#[derive(Debug)]
enum WriterState {
    Idle(TcpStream),
    Busy(BufWriter<TcpStream>),
    /// Only between taking one state apart and building the next.
    Moving,
}

impl Writer {
    fn busy(&mut self) -> std::io::Result<&mut BufWriter<TcpStream>> {
        if let WriterState::Idle(_) = self.state {
            if let WriterState::Idle(tcp) = std::mem::replace(&mut self.state, WriterState::Moving) {
                self.state = WriterState::Busy(BufWriter::with_capacity(self.capacity, tcp));
            }
        }
        match &mut self.state {
            WriterState::Busy(w) => Ok(w),
            _ => Err(moving()),
        }
    }

    /// Frees the buffer once a flush has emptied it.
    fn settle(&mut self) {
        if matches!(&self.state, WriterState::Busy(w) if w.buffer().is_empty()) {
            if let WriterState::Busy(w) = std::mem::replace(&mut self.state, WriterState::Moving) {
                self.state = WriterState::Idle(w.into_inner());
            }
        }
    }
}

fn moving() -> std::io::Error {
    std::io::Error::other("client connection in an inconsistent state")
}

impl AsyncRead for Writer {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.state {
            WriterState::Idle(tcp) => Pin::new(tcp).poll_read(cx, buf),
            WriterState::Busy(w) => Pin::new(w).poll_read(cx, buf),
            WriterState::Moving => Poll::Ready(Err(moving())),
        }
    }
}

impl AsyncWrite for Writer {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.busy() {
            Ok(w) => Pin::new(w).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.busy() {
            Ok(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true // the buffer takes the slices
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = match &mut self.state {
            WriterState::Idle(tcp) => Pin::new(tcp).poll_flush(cx),
            WriterState::Busy(w) => Pin::new(w).poll_flush(cx),
            WriterState::Moving => Poll::Ready(Err(moving())),
        };
        if let Poll::Ready(Ok(())) = flushed {
            self.settle();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.state {
            WriterState::Idle(tcp) => Pin::new(tcp).poll_shutdown(cx),
            WriterState::Busy(w) => Pin::new(w).poll_shutdown(cx),
            WriterState::Moving => Poll::Ready(Err(moving())),
        }
    }
}

/// Forwards a poll to whichever buffering the stream has.
macro_rules! forward {
    ($self:ident, $io:ident => $call:expr) => {
        match &mut $self.io {
            Buffered::Write($io) => {
                let $io = Pin::new($io);
                $call
            }
            Buffered::ReadWrite($io) => {
                let $io = Pin::new($io);
                $call
            }
        }
    };
}

impl AsyncRead for LocalStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        forward!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for LocalStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        forward!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        forward!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true // both buffer the slices
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        forward!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        forward!(self, io => io.poll_shutdown(cx))
    }
}

#[async_trait]
impl Shutdown for LocalStream {
    async fn shutdown(&mut self) {
        if let Err(e) = AsyncWriteExt::shutdown(self).await {
            log::debug!("failed to shut down a client connection: {e}");
        }
    }
}

impl UniqueID for LocalStream {
    fn id(&self) -> UniqueIDType {
        self.fd
    }
}

impl Ssl for LocalStream {}

/// HTTP/1 only: nothing peeks at it (Pingora peeks for the h2c preface, and
/// h2c connections are never moved).
#[async_trait]
impl Peek for LocalStream {}

impl GetTimingDigest for LocalStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        vec![Some(TimingDigest {
            established_ts: self.established,
            ..TimingDigest::default()
        })]
    }
}

impl GetProxyDigest for LocalStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for LocalStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.digest.clone()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.digest = Some(Arc::new(digest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use tokio::io::AsyncReadExt;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// A connection accepted on one runtime and attached to another is served
    /// there while the accepting runtime's thread is blocked: its events no
    /// longer go through the accepting reactor. The client's address and the
    /// connection's bytes, both ways, are kept.
    #[test]
    fn a_moved_connection_is_served_while_the_accepting_thread_is_blocked() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = std::net::TcpStream::connect(addr).expect("connect");
        let client_addr = client.local_addr().expect("client addr");

        // Runtime A accepts, as Pingora's accept loop does, then its thread blocks.
        let (to_b, from_a) = mpsc::channel::<Stream>();
        let (release_a, blocked) = mpsc::channel::<()>();
        let accepting = std::thread::spawn(move || {
            current_thread().block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let (tcp, peer) = listener.accept().await.expect("accept");
                let mut l4 = L4Stream::from(tcp);
                let digest = SocketDigest::from_raw_fd(l4.as_raw_fd());
                let _ = digest.peer_addr.set(Some(peer.into()));
                l4.set_socket_digest(digest);
                to_b.send(Box::new(l4)).expect("hand over");
                // Blocks the thread: runtime A's reactor is not polled until released.
                blocked.recv().expect("release");
            });
        });

        let stream = from_a.recv().expect("stream");
        client.write_all(b"ping").expect("client write");
        let detached = detach(stream).expect("a plain TCP stream is detached");
        let served = current_thread().block_on(async move {
            let mut s = detached.attach(L4BufferSettings::new(0, 1460)).expect("attached");
            assert!(s.as_any().is::<LocalStream>());
            let peer = s
                .get_socket_digest()
                .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
            // tokio tries a new socket's first read without waiting for its
            // reactor, so "ping" proves little. The read after it finds
            // nothing, and from then on only a reactor event wakes the reader.
            let mut got = [0u8; 4];
            s.read_exact(&mut got).await.expect("read");
            let mut more = [0u8; 5];
            tokio::select! {
                biased;
                r = s.read(&mut more) => panic!("nothing was sent yet: {r:?}"),
                _ = std::future::ready(()) => {}
            }
            client.write_all(b"again").expect("client write");
            tokio::time::timeout(std::time::Duration::from_secs(20), s.read_exact(&mut more))
                .await
                .expect("a reactor event while the accepting thread is blocked")
                .expect("read");
            s.write_all(b"pong").await.expect("write");
            s.flush().await.expect("flush");
            let mut reply = [0u8; 4];
            client.read_exact(&mut reply).expect("client read");
            (peer, got, more, reply)
        });
        assert_eq!(served, (Some(client_addr), *b"ping", *b"again", *b"pong"));
        release_a.send(()).expect("release");
        accepting.join().expect("accepting thread");
    }

    /// The write buffer exists only while a response is written: a write
    /// creates it, the flush that empties it frees it, and the bytes arrive
    /// whole and in order, a write larger than the buffer included.
    #[test]
    fn the_write_buffer_is_held_only_until_flushed() {
        current_thread().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
                .await
                .expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            let mut w = Writer {
                capacity: 1460,
                state: WriterState::Idle(server),
            };
            let idle = |w: &Writer| matches!(w.state, WriterState::Idle(_));
            w.write_all(b"head").await.expect("write");
            assert!(!idle(&w), "a write takes a buffer");
            w.write_all(&[7u8; 5000]).await.expect("write");
            w.flush().await.expect("flush");
            assert!(idle(&w), "the flush frees it");
            w.write_all(b"next").await.expect("write");
            w.flush().await.expect("flush");
            assert!(idle(&w));
            let mut got = vec![0u8; 5008];
            client.read_exact(&mut got).await.expect("read");
            assert_eq!(&got[..4], b"head");
            assert!(got[4..5004].iter().all(|b| *b == 7));
            assert_eq!(&got[5004..], b"next");
        });
    }

    /// A Unix socket is not detached: it comes back as it was.
    #[test]
    fn other_streams_are_left_alone() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        current_thread().block_on(async move {
            let unix = tokio::net::UnixStream::from_std(a).expect("unix");
            let s = detach(Box::new(L4Stream::from(unix))).expect_err("a Unix socket stays as it is");
            assert!(s.as_any().is::<L4Stream>());
        });
    }
}
