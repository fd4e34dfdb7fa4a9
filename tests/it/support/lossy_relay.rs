//! A TCP relay that loses one answer, as a network failing between a
//! database's COMMIT and its reply: bytes pass both ways until a client
//! sends `request` after it sent `after`; the server's reply holding
//! `reply` is then not passed on, and both connections are closed. Once per
//! relay; later connections pass everything.

use super::wait_until;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay, listening on `127.0.0.1:port`.
pub(crate) struct LossyRelay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The last `keep` bytes of `buf`, so a needle split over two reads is found.
fn tail(buf: &[u8], keep: usize) -> Vec<u8> {
    buf[buf.len().saturating_sub(keep)..].to_vec()
}

impl LossyRelay {
    /// Relays to `127.0.0.1:to`.
    pub(crate) async fn start(
        to: u16,
        after: &'static [u8],
        request: &'static [u8],
        reply: &'static [u8],
    ) -> LossyRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let fired = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, fired.clone(), [after, request, reply]));
            }
        });
        LossyRelay { port, cut, task }
    }

    /// Waits until the relay has lost its answer.
    pub(crate) async fn wait_cut(&self) {
        wait_until("the relay loses the answer", Duration::from_secs(30), || async {
            self.cut.load(Ordering::SeqCst)
        })
        .await;
    }
}

async fn relay(client: TcpStream, server: TcpStream, cut: Arc<AtomicBool>, [after, request, reply]: [&[u8]; 3]) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let armed = AtomicBool::new(false);
    let up = async {
        let (mut sent, mut saw_after, mut buf) = (Vec::new(), false, vec![0u8; 64 * 1024]);
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            sent.extend_from_slice(&buf[..n]);
            if !saw_after {
                if let Some(i) = find(&sent, after) {
                    saw_after = true;
                    sent.drain(..i + after.len());
                }
            }
            if saw_after && !cut.load(Ordering::SeqCst) && find(&sent, request).is_some() {
                armed.store(true, Ordering::SeqCst);
            }
            sent = tail(&sent, after.len().max(request.len()));
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let (mut seen, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            if armed.load(Ordering::SeqCst) && find(&seen, reply).is_some() {
                // Applied by the server, never answered to the client.
                cut.store(true, Ordering::SeqCst);
                return;
            }
            seen = tail(&seen, reply.len());
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever ends first ends the relay: both connections close.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
