//! The connection acceptor: every new client connection of a listening
//! service arrives here, and goes to Portico's HTTP/1 loop ([`super::http1`]),
//! on one of Portico's serving threads when they are used
//! ([`super::workers`]), or to Pingora's own handling (TLS, HTTP/2).
//!
//! It is also how a stopping process lets its clients go without failing
//! their requests ([`super::drain`]). Pingora ends a listening service by stopping its accept loop and then
//! calling the app's `cleanup`, which aborts every connection still waiting for
//! a request, including one accepted an instant earlier whose request is on
//! its way. [`Acceptor`] wraps the proxy and holds that `cleanup` back for
//! a short delay, so such requests are still read and answered. Then it
//! closes the keep-alive connections that wait for a request, both those in
//! Portico's idle wait ([`crate::serve::http1`]) and those in Pingora's.

use super::drain::start_draining;
use super::http1::ConnectionRules;
use super::{http1 as connection, stream as transport};
use crate::serve::workers::Workers;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::listeners::L4BufferSettings;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A server app whose cleanup waits `delay` after the accept loop ended.
pub(crate) struct Acceptor<A> {
    inner: Arc<A>,
    delay: Duration,
    /// How client connections are kept and their heads read.
    rules: ConnectionRules,
    /// Turns true when idle keep-alive connections must close.
    closing: watch::Sender<bool>,
    /// Portico's serving threads and the client buffers, when plain HTTP/1
    /// connections are served there ([`crate::serve::workers`]).
    workers: Option<(Arc<Workers>, L4BufferSettings)>,
}

impl<A> Acceptor<A> {
    pub(crate) fn new(inner: A, delay: Duration, rules: ConnectionRules) -> Self {
        Acceptor {
            inner: Arc::new(inner),
            delay,
            rules,
            closing: watch::Sender::new(false),
            workers: None,
        }
    }

    /// Serves each plain HTTP/1 connection on the least-loaded of `workers`,
    /// with the listeners' client buffers (see [`crate::serve::workers`]).
    pub(crate) fn serving_on(mut self, workers: Arc<Workers>, buffers: L4BufferSettings) -> Self {
        self.workers = Some((workers, buffers));
        self
    }
}

impl<A: HttpServerApp + ServerApp + Send + Sync + 'static> Acceptor<A> {
    /// Portico's HTTP/1 loop on `stream`, closed with the others when draining.
    async fn serve_http1(&self, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let closing = self.closing.subscribe();
        connection::serve_http1(&self.inner, stream, shutdown, self.rules, closing).await
    }
}

#[async_trait]
impl<A: HttpServerApp + ServerApp + Send + Sync + 'static> ServerApp for Acceptor<A> {
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
