//! Draining: how a process that is about to stop serving lets its clients go
//! without failing their requests.
//!
//! Once draining (after handing its sockets to a successor, or when shutdown
//! begins) every response carries `Connection: close`, so keep-alive clients
//! reconnect, to the new process, instead of sending a request on a
//! connection that is about to close.
//!
//! Pingora ends a listening service by stopping its accept loop and then
//! calling the app's `cleanup`, which aborts every connection still waiting for
//! a request, including one accepted an instant earlier whose request is on
//! its way. [`DrainingApp`] wraps the proxy and holds that `cleanup` back for
//! a short delay, so such requests are still read and answered. Then it
//! closes the keep-alive connections that wait for a request, both those in
//! Portico's idle wait ([`crate::connection`]) and those in Pingora's.

use crate::workers::Workers;
use crate::{connection, transport};
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::listeners::L4BufferSettings;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

static DRAINING: AtomicBool = AtomicBool::new(false);

/// True once this process drains.
pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

pub fn start_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// Undoes [`start_draining`] when a handover fails before it began.
pub fn stop_draining() {
    DRAINING.store(false, Ordering::Relaxed);
}

/// A server app whose cleanup waits `delay` after the accept loop ended.
pub struct DrainingApp<A> {
    inner: Arc<A>,
    delay: Duration,
    /// How long a client connection may wait between requests.
    keepalive: Duration,
    /// Turns true when idle keep-alive connections must close.
    closing: watch::Sender<bool>,
    /// Portico's serving threads and the client buffers, when plain HTTP/1
    /// connections are served there ([`crate::workers`]).
    workers: Option<(Arc<Workers>, L4BufferSettings)>,
}

impl<A> DrainingApp<A> {
    pub fn new(inner: A, delay: Duration, keepalive: Duration) -> Self {
        DrainingApp {
            inner: Arc::new(inner),
            delay,
            keepalive,
            closing: watch::Sender::new(false),
            workers: None,
        }
    }

    /// Serves each plain HTTP/1 connection on the least-loaded of `workers`,
    /// with the listeners' client buffers (see [`crate::workers`]).
    pub fn serving_on(mut self, workers: Arc<Workers>, buffers: L4BufferSettings) -> Self {
        self.workers = Some((workers, buffers));
        self
    }
}

impl<A: HttpServerApp + ServerApp + Send + Sync + 'static> DrainingApp<A> {
    /// Portico's HTTP/1 loop on `stream`, closed with the others when draining.
    async fn serve_http1(&self, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let closing = self.closing.subscribe();
        connection::serve_http1(&self.inner, stream, shutdown, self.keepalive, closing).await
    }
}

#[async_trait]
impl<A: HttpServerApp + ServerApp + Send + Sync + 'static> ServerApp for DrainingApp<A> {
    async fn process_new(self: &Arc<Self>, session: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        if connection::is_http1(self.inner.as_ref(), &session) {
            let session = match &self.workers {
                Some((workers, buffers)) => match transport::detach(session) {
                    Ok(moving) => {
                        let (app, buffers, shutdown) = (self.clone(), *buffers, shutdown.clone());
                        workers.serve(async move {
                            if let Some(stream) = moving.attach(buffers) {
                                app.serve_http1(stream, &shutdown).await;
                            }
                        });
                        return None;
                    }
                    Err(session) => session,
                },
                None => session,
            };
            self.serve_http1(session, shutdown).await
        } else {
            ServerApp::process_new(&self.inner, session, shutdown).await
        }
    }

    async fn cleanup(&self) {
        start_draining();
        tokio::time::sleep(self.delay).await;
        self.closing.send_replace(true);
        ServerApp::cleanup(self.inner.as_ref()).await;
    }
}
