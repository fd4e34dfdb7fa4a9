//! Bare Pingora: a `ProxyHttp` whose only hook picks the one upstream, set up
//! as Portico's benchmark runs it (one thread, work stealing off, an upstream
//! keepalive pool of 256, mimalloc). What Pingora's HTTP/1 proxy path costs
//! per request before any gateway work; `floor` is the same proxy on bare
//! tokio. Serves 127.0.0.1:19000 → 127.0.0.1:19080 and ignores its arguments.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use async_trait::async_trait;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

struct Bare;

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new("127.0.0.1:19080", false, String::new())))
    }
}

fn main() {
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        upstream_keepalive_pool_size: 256,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, Bare);
    service.add_tcp("127.0.0.1:19000");
    server.add_service(service);
    server.run_forever();
}
