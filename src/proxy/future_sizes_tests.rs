//! Every request allocates each hook's future (async-trait boxes them), and
//! the task moves it into place: a hook that holds a rare path's state inline
//! (an AI call, a policy's network check) costs every plain request a large
//! allocation and copy. These tests keep the per-request futures small.

use super::Gateway;
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use pingora_proxy::{ProxyHttp, Session};
use std::sync::Arc;

const CONFIG: &str = r#"
server:
  listeners: [{address: "127.0.0.1:0"}]
upstreams:
  u: {targets: [{address: "127.0.0.1:9"}]}
routes:
  - {name: r, paths: ["/"], upstream: u}
"#;

async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

async fn session() -> Session {
    let (client, server) = tcp_pair().await;
    std::mem::forget(client);
    Session::new_h1(Box::new(pingora_core::protocols::l4::stream::Stream::from(server)))
}

#[tokio::test]
async fn request_hook_futures_stay_small() {
    let loaded = crate::config::parse_str(CONFIG, "test.yaml").unwrap();
    let snapshot = Snapshot::build(&loaded, None).unwrap();
    let gw = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot)), None);
    let mut s = session().await;
    let mut ctx = gw.new_ctx();
    let mut sizes = Vec::new();
    sizes.push((
        "early_request_filter",
        std::mem::size_of_val(&*gw.early_request_filter(&mut s, &mut ctx)),
    ));
    sizes.push((
        "request_filter",
        std::mem::size_of_val(&*gw.request_filter(&mut s, &mut ctx)),
    ));
    sizes.push((
        "upstream_peer",
        std::mem::size_of_val(&*gw.upstream_peer(&mut s, &mut ctx)),
    ));
    let mut req = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
    sizes.push((
        "upstream_request_filter",
        std::mem::size_of_val(&*gw.upstream_request_filter(&mut s, &mut req, &mut ctx)),
    ));
    let mut resp = pingora_http::ResponseHeader::build(200, None).unwrap();
    sizes.push((
        "upstream_response_filter",
        std::mem::size_of_val(&*gw.upstream_response_filter(&mut s, &mut resp, &mut ctx)),
    ));
    sizes.push((
        "response_filter",
        std::mem::size_of_val(&*gw.response_filter(&mut s, &mut resp, &mut ctx)),
    ));
    let mut body = None;
    sizes.push((
        "request_body_filter",
        std::mem::size_of_val(&*gw.request_body_filter(&mut s, &mut body, true, &mut ctx)),
    ));
    let err = pingora_core::Error::new(pingora_core::ErrorType::ConnectTimedout);
    sizes.push((
        "fail_to_proxy",
        std::mem::size_of_val(&*gw.fail_to_proxy(&mut s, &err, &mut ctx)),
    ));
    sizes.push(("logging", std::mem::size_of_val(&*gw.logging(&mut s, None, &mut ctx))));
    println!("{sizes:?}");
    for (hook, size) in sizes {
        assert!(size <= 1024, "{hook}'s future is {size} bytes");
    }
}

/// Pingora's per-request future is why Portico waits for a request outside
/// it (src/serve/http1.rs): an idle keep-alive connection would otherwise hold
/// it. The connection's own future, in which it waits, must stay a small
/// fraction of it; the idle read's buffer lives on the stack, not in there.
#[tokio::test]
async fn an_idle_connection_holds_far_less_than_pingoras_request_future() {
    use pingora_core::apps::{HttpServerApp, ServerApp};
    let loaded = crate::config::parse_str(CONFIG, "test.yaml").unwrap();
    let snapshot = Snapshot::build(&loaded, None).unwrap();
    let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
    let gw = || Gateway::new(snapshot.clone(), None);
    let conf = Arc::new(pingora_core::server::configuration::ServerConf::default());
    let proxy = Arc::new(pingora_proxy::http_proxy(&conf, gw()));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let session = session().await.downstream_session;
    let request = std::mem::size_of_val(&*proxy.process_new_http(*session, &rx));

    let app = Arc::new(crate::serve::acceptor::Acceptor::new(
        pingora_proxy::http_proxy(&conf, gw()),
        std::time::Duration::from_secs(1),
        crate::serve::http1::ConnectionRules {
            keepalive: std::time::Duration::from_secs(60),
            head: crate::serve::head::HeadRules {
                timeout: std::time::Duration::from_secs(60),
                max_bytes: 64 * 1024,
                idle: std::time::Duration::from_secs(60),
            },
            body_timeout: std::time::Duration::from_secs(60),
        },
    ));
    let (_client, server) = tcp_pair().await;
    let server: pingora_core::protocols::Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(server));
    let conn = std::mem::size_of_val(&*app.process_new(server, &rx));
    println!("process_new_http future: {request} bytes; connection future: {conn} bytes");
    assert!(request > 8 * 1024, "Pingora's request future is only {request} bytes");
    assert!(
        conn < request / 8 && conn < crate::serve::http1::IDLE_READ,
        "an idle connection's future is {conn} bytes"
    );
}
