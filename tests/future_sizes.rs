//! Every request allocates each hook's future (async-trait boxes them), and
//! the task moves it into place: a hook that holds a rare path's state inline
//! (an AI call, a policy's network check) costs every plain request a large
//! allocation and copy. These tests keep the per-request futures small.

use arc_swap::ArcSwap;
use pingora_proxy::{ProxyHttp, Session};
use portico::proxy::Gateway;
use portico::runtime::Snapshot;
use std::sync::Arc;

const CONFIG: &str = r#"
server:
  listeners: [{address: "127.0.0.1:0"}]
upstreams:
  u: {targets: [{address: "127.0.0.1:9"}]}
routes:
  - {name: r, paths: ["/"], upstream: u}
"#;

async fn session() -> Session {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    std::mem::forget(client);
    Session::new_h1(Box::new(pingora_core::protocols::l4::stream::Stream::from(server)))
}

#[tokio::test]
async fn request_hook_futures_stay_small() {
    let loaded = portico::config::parse_str(CONFIG, "test.yaml").unwrap();
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
/// it (src/connection.rs): an idle keep-alive connection would otherwise hold
/// it. Should Pingora shrink it, that wait stops paying for itself.
#[tokio::test]
async fn pingora_request_future_is_what_idle_connections_avoid() {
    use pingora_core::apps::HttpServerApp;
    let loaded = portico::config::parse_str(CONFIG, "test.yaml").unwrap();
    let snapshot = Snapshot::build(&loaded, None).unwrap();
    let gw = Gateway::new(Arc::new(ArcSwap::from_pointee(snapshot)), None);
    let conf = Arc::new(pingora_core::server::configuration::ServerConf::default());
    let proxy = Arc::new(pingora_proxy::http_proxy(&conf, gw));
    let s = session().await;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let session = s.downstream_session;
    let fut = proxy.process_new_http(*session, &rx);
    let size = std::mem::size_of_val(&*fut);
    println!("process_new_http future: {size} bytes");
    assert!(
        size > 4 * portico::connection::IDLE_READ,
        "Pingora's request future is only {size} bytes"
    );
}
