//! A tiny JSON server run by a closure: stands in for JWKS and
//! token-introspection endpoints.

use super::body_bytes;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

type Handler = dyn Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync;

/// A tiny HTTP server answering every request with `handler(method, path, body)`
/// as JSON; counts requests. Stands in for JWKS and token-introspection endpoints.
pub(crate) struct FnServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FnServer {
    pub(crate) async fn start(
        handler: impl Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> FnServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let h = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (handler, hits) = (handler.clone(), h.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (handler, hits) = (handler.clone(), hits.clone());
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            let method = req.method().to_string();
                            let path = req.uri().to_string();
                            let body = body_bytes(req).await;
                            let (status, text) = handler(&method, &path, &body);
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FnServer { addr, hits, task }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FnServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
