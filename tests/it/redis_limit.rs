//! Cluster-wide rate limits on a real redis-server (Debian's, installed by
//! `make test`): two Portico processes share one limit exactly, and an
//! unreachable Redis fails open or closed as configured.

use crate::support::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    async fn start() -> Redis {
        Redis::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: `make test` installs it (apt-get install redis-server)");
        let redis = Redis { port, child };
        wait_until(
            "redis-server accepts connections",
            Duration::from_secs(20),
            || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() },
        )
        .await;
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(up: std::net::SocketAddr, redis_port: u16, on_error: &str, requests: u32) -> String {
    format!(
        "upstreams:\n  a:\n    targets:\n      - address: {up}\nroutes:\n  - name: shared\n    upstream: a\n    policies:\n      - rate_limit:\n          requests: {requests}\n          per: hour\n          key: header\n          header: x-tenant\n          redis: {{url: 'redis://127.0.0.1:{redis_port}', on_error: {on_error}, timeout: 500ms}}\n"
    )
}

#[tokio::test]
async fn two_gateways_share_one_limit_exactly() {
    let redis = Redis::start().await;
    let up = Upstream::start("a").await;
    let yaml = config(up.addr, redis.port, "deny", 100);
    let (g1, g2) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let c = client();
    let mut accepted = 0;
    for i in 0..200 {
        let gw = if i % 2 == 0 { &g1 } else { &g2 };
        let r = c.get(gw.url("/x")).header("x-tenant", "t1").send().await.unwrap();
        match r.status().as_u16() {
            200 => {
                accepted += 1;
                let remaining: i64 = r.headers()["ratelimit-remaining"].to_str().unwrap().parse().unwrap();
                assert_eq!(remaining, 100 - accepted, "remaining is shared across gateways");
            }
            _ => {
                let (h, _) = expect_error(r, 429, "rate_limited").await;
                assert!(h.contains_key("retry-after"));
            }
        }
    }
    // Within 1% of the limit, at twice the limit, across two processes.
    assert!(
        (99..=101).contains(&accepted),
        "accepted {accepted} with a shared limit of 100"
    );
    // Another tenant is counted apart.
    let r = c.get(g2.url("/x")).header("x-tenant", "t2").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unreachable_redis_fails_open_or_closed_as_configured() {
    let up = Upstream::start("a").await;
    // The port stays taken by a listener that never answers (Redis does not
    // reply: the limiter times out), so no other test's server lands on it
    // before redis-server does.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = silent.local_addr().expect("addr").port();
    let open = Gateway::start(&config(up.addr, dead, "allow", 1)).await;
    let closed = Gateway::start(&config(up.addr, dead, "deny", 1)).await;
    let c = client();
    for _ in 0..3 {
        let r = c.get(open.url("/x")).header("x-tenant", "t").send().await.unwrap();
        assert_eq!(r.status(), 200, "fail open lets requests through");
        let r = c.get(closed.url("/x")).header("x-tenant", "t").send().await.unwrap();
        expect_error(r, 503, "dependency_unavailable").await;
    }

    // Redis appears on that port: limiting resumes without a restart.
    drop(silent);
    let _redis = Redis::start_on(dead).await;
    let closed_ref = &closed;
    let c2 = c.clone();
    wait_until("limiting resumes once Redis is up", Duration::from_secs(20), || {
        let c = c2.clone();
        async move {
            let r = c
                .get(closed_ref.url("/x"))
                .header("x-tenant", "t")
                .send()
                .await
                .unwrap();
            r.status() == 429
        }
    })
    .await;
}

/// With `burst`, the Redis bucket behaves as the local one: a steady
/// overload through two gateways sharing it gets rate × time + burst + 1.
#[tokio::test]
async fn the_redis_bucket_gives_the_rate_and_the_burst_once() {
    let redis = Redis::start().await;
    let up = Upstream::start("a").await;
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\nroutes:\n  - name: shared\n    upstream: a\n    policies:\n      \
         - rate_limit:\n          requests: 20\n          per: second\n          burst: 10\n          key: route\n          \
         redis: {{url: 'redis://127.0.0.1:{}', on_error: deny, timeout: 2s}}\n",
        up.addr, redis.port
    );
    let (g1, g2) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let start = std::time::Instant::now();
    let c = client();
    let (mut accepted, mut last) = (0usize, 0.0f64);
    // Bounded in count and time: alternate the two gateways for 5 s.
    for i in 0..20_000 {
        if start.elapsed().as_secs() >= 5 {
            break;
        }
        let gw = if i % 2 == 0 { &g1 } else { &g2 };
        last = start.elapsed().as_secs_f64();
        let r = c.get(gw.url("/x")).send().await.unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {}
            s => panic!("status {s}: {}", r.text().await.unwrap_or_default()),
        }
    }
    let expected = 20.0 * last + 11.0;
    assert!(
        (accepted as f64 - expected).abs() <= (expected * 0.02).max(3.0),
        "accepted {accepted}, expected {expected:.0} over {last:.2}s"
    );
}
