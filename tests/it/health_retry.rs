//! Health and failure handling end to end: active HTTP and TCP checks,
//! retries on connect failure, passive ejection, and the 502/503/504 errors.

use crate::support::*;
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

const ACTIVE_HTTP: &str = "    health_check:
      active:
        type: http
        path: /health
        interval: 200ms
        timeout: 500ms
        healthy_threshold: 1
        unhealthy_threshold: 1
";

/// An upstream `pool` over `addrs` with `extra` lines (indented 4) and a catch-all route.
fn config(extra: &str, addrs: &[String], routes: &str) -> String {
    let mut y = format!("upstreams:\n  pool:\n{extra}    targets:\n");
    for a in addrs {
        y.push_str(&format!("      - address: {a}\n"));
    }
    y.push_str("routes:\n");
    y.push_str(if routes.is_empty() {
        "  - name: all\n    upstream: pool\n"
    } else {
        routes
    });
    y
}

/// An address where nothing listens: connections are refused.
fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// GET; returns status and the serving upstream's name ("" when none).
async fn hit(c: &reqwest::Client, gw: &Gateway, path: &str) -> (u16, String) {
    let r = c.get(gw.url(path)).send().await.expect("request");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, v["upstream"].as_str().unwrap_or_default().to_string())
}

/// `n` sequential GETs; counts by "status upstream".
async fn tally(c: &reqwest::Client, gw: &Gateway, path: &str, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        let (s, u) = hit(c, gw, path).await;
        *m.entry(format!("{s} {u}")).or_default() += 1;
    }
    m
}

async fn get(c: &reqwest::Client, gw: &Gateway, path: &str) -> reqwest::Response {
    c.get(gw.url(path)).send().await.expect("request")
}

/// True when `n` sequential requests all succeed on `name`.
async fn all_on(c: &reqwest::Client, gw: &Gateway, name: &str, n: usize) -> bool {
    let m = tally(c, gw, "/x", n).await;
    m.len() == 1 && m.get(&format!("200 {name}")) == Some(&n)
}

#[tokio::test]
async fn active_http_check_removes_and_restores_a_target() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = Gateway::start(&config(ACTIVE_HTTP, &[a.addr.to_string(), b.addr.to_string()], "")).await;
    let c = client();
    // Both healthy: round robin uses both.
    let m = tally(&c, &gw, "/x", 4).await;
    assert_eq!(m.get("200 a"), Some(&2), "{m:?}\n{}", gw.log());
    assert_eq!(m.get("200 b"), Some(&2), "{m:?}");

    a.set_healthy(false);
    wait_until("all traffic on b", WAIT, || all_on(&c, &gw, "b", 4)).await;
    let before = a.hits();
    assert!(all_on(&c, &gw, "b", 20).await, "an unhealthy target got traffic");
    assert_eq!(a.hits(), before);

    a.set_healthy(true);
    wait_until("a receives traffic again", WAIT, || async {
        tally(&c, &gw, "/x", 4).await.contains_key("200 a")
    })
    .await;
    let m = tally(&c, &gw, "/x", 10).await;
    assert_eq!(m.get("200 a"), Some(&5), "{m:?}");
    assert_eq!(m.get("200 b"), Some(&5), "{m:?}");
}

#[tokio::test]
async fn tcp_check_removes_a_stopped_target_and_restores_it() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    // No retries and no passive ejection: only the TCP check can hide `a`.
    let extra = "    health_check:
      active:
        type: tcp
        interval: 200ms
        timeout: 500ms
        healthy_threshold: 1
        unhealthy_threshold: 1
      passive:
        max_fails: 0
";
    let routes = "  - name: all\n    upstream: pool\n    retries: 0\n";
    let gw = Gateway::start(&config(extra, &[a.addr.to_string(), b.addr.to_string()], routes)).await;
    let c = fresh_client();
    let m = tally(&c, &gw, "/x", 4).await;
    assert_eq!(m.get("200 a"), Some(&2), "{m:?}\n{}", gw.log());

    let addr = a.stop();
    wait_until("all traffic on b", WAIT, || all_on(&c, &gw, "b", 4)).await;
    assert!(all_on(&c, &gw, "b", 20).await, "a stopped target got traffic");

    // Bring `a` back on its old port (the aborted listener is released
    // asynchronously). Requests may reach it on new connections (a2) or on
    // connections pooled before the stop, which the old tasks still serve (a).
    let mut listener = None;
    wait_until("old port free", WAIT, || {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        let l = sock.bind(addr).ok().and_then(|()| sock.listen(64).ok());
        let ok = l.is_some();
        listener = listener.take().or(l);
        async move { ok }
    })
    .await;
    let _a2 = Upstream::serve("a2", listener.unwrap());
    wait_until("the restarted target receives traffic", WAIT, || async {
        let m = tally(&c, &gw, "/x", 4).await;
        m.contains_key("200 a2") || m.contains_key("200 a")
    })
    .await;
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_target() {
    let live = Upstream::start("live").await;
    let routes = "  - name: once
    paths: [/noretry/*]
    retries: 0
    upstream: pool
  - name: all
    upstream: pool
";
    // Passive ejection off, so the dead target stays in rotation and every
    // other request has to be saved by a retry.
    let extra = "    health_check:\n      passive:\n        max_fails: 0\n";
    let gw = Gateway::start(&config(extra, &[dead_addr(), live.addr.to_string()], routes)).await;
    let c = client();
    let m = tally(&c, &gw, "/x", 50).await;
    assert_eq!(m.get("200 live"), Some(&50), "{m:?}\n{}", gw.log());
    assert_eq!(live.hits(), 50);

    // Control: without retries the dead target is visible as 502s.
    let c = fresh_client();
    let mut failures = 0;
    for _ in 0..10 {
        let r = get(&c, &gw, "/noretry/x").await;
        if r.status() != 200 {
            expect_error(r, 502, "upstream_connect_failed").await;
            failures += 1;
        }
    }
    assert_eq!(failures, 5, "round robin over a dead and a live target with retries: 0");
}

#[tokio::test]
async fn passive_ejection_stops_trying_a_dead_target() {
    let live = Upstream::start("live").await;
    let routes = "  - name: retried
    paths: [/a/*]
    upstream: pool
  - name: once
    paths: [/b/*]
    retries: 0
    upstream: pool
";
    let extra = "    health_check:\n      passive:\n        max_fails: 1\n        cooldown: 60s\n";
    let gw = Gateway::start(&config(extra, &[dead_addr(), live.addr.to_string()], routes)).await;
    let c = client();
    // Round robin offers the dead target first within two requests; the retry
    // hides the failure and the failure ejects the target.
    let m = tally(&c, &gw, "/a/x", 10).await;
    assert_eq!(m.get("200 live"), Some(&10), "{m:?}\n{}", gw.log());
    // With no retries, a 502 would show any further attempt on the dead target.
    let m = tally(&c, &gw, "/b/x", 20).await;
    assert_eq!(
        m.get("200 live"),
        Some(&20),
        "dead target tried again after ejection: {m:?}"
    );
    assert_eq!(live.hits(), 30);
}

#[tokio::test]
async fn all_targets_unhealthy_gives_503() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = Gateway::start(&config(ACTIVE_HTTP, &[a.addr.to_string(), b.addr.to_string()], "")).await;
    let c = fresh_client();
    assert_eq!(hit(&c, &gw, "/x").await.0, 200, "{}", gw.log());
    a.set_healthy(false);
    b.set_healthy(false);
    wait_until("503 from the gateway", WAIT, || async {
        hit(&c, &gw, "/x").await.0 == 503
    })
    .await;
    let hits = a.hits() + b.hits();
    for _ in 0..3 {
        expect_error(get(&c, &gw, "/x").await, 503, "no_healthy_upstream").await;
    }
    assert_eq!(a.hits() + b.hits(), hits, "an unhealthy target got traffic");
}

#[tokio::test]
async fn refused_connections_give_502() {
    let routes = "  - name: one
    paths: [/one/*]
    upstream: one
  - name: two
    paths: [/two/*]
    upstream: two
";
    let passive_off = "    health_check:\n      passive:\n        max_fails: 0\n";
    let yaml = format!(
        "upstreams:
  one:
{passive_off}    targets:
      - address: {}
  two:
{passive_off}    targets:
      - address: {}
      - address: {}
routes:
{routes}",
        dead_addr(),
        dead_addr(),
        dead_addr()
    );
    let gw = Gateway::start(&yaml).await;
    let c = fresh_client();
    for path in ["/one/x", "/one/y", "/one/z", "/two/x", "/two/y", "/two/z"] {
        let r = get(&c, &gw, path).await;
        assert_eq!(r.status(), 502, "{path}\n{}", gw.log());
        expect_error(r, 502, "upstream_connect_failed").await;
    }
}

#[tokio::test]
async fn read_timeout_gives_504() {
    let up = Upstream::start("slow").await;
    let routes = "  - name: hasty
    paths: ['/delay/*']
    upstream: pool
    timeouts:
      read: 300ms
  - name: all
    upstream: pool
";
    let extra = "    timeouts:\n      read: 20s\n";
    let gw = Gateway::start(&config(extra, &[up.addr.to_string()], routes)).await;
    let c = fresh_client();
    let r = get(&c, &gw, "/delay/3000").await;
    expect_error(r, 504, "upstream_timeout").await;
    // The same target is fine for a request within the timeout.
    assert_eq!(hit(&c, &gw, "/x").await, (200, "slow".to_string()));
}

#[tokio::test]
async fn route_timeout_overrides_upstream_timeout() {
    let up = Upstream::start("slow").await;
    let routes = "  - name: patient
    hosts: [patient.test]
    upstream: pool
    timeouts:
      read: 20s
  - name: all
    upstream: pool
";
    let extra = "    timeouts:\n      read: 300ms\n";
    let gw = Gateway::start(&config(extra, &[up.addr.to_string()], routes)).await;
    let c = fresh_client();
    let r = c
        .get(gw.url("/delay/1000"))
        .header("host", "patient.test")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(
        status,
        200,
        "route read timeout 20s should override the upstream's 300ms: {body}\n{}",
        gw.log()
    );
    let r = get(&c, &gw, "/delay/3000").await;
    expect_error(r, 504, "upstream_timeout").await;
}

/// Pingora closes the client connection after an error response, so the
/// response must say `Connection: close`; otherwise a keep-alive client sends
/// its next request into a closing connection and sees a transport error.
#[tokio::test]
async fn error_responses_announce_connection_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let extra = "    health_check:\n      passive:\n        max_fails: 0\n";
    let gw = Gateway::start(&config(extra, &[dead_addr()], "")).await;
    // Raw HTTP/1.1 keep-alive: read exactly one response, then reuse the socket.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let req = b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n";
    s.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk))
            .await
            .expect("response within 20s")
            .unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 502"), "{head}");
    let closes = head
        .lines()
        .any(|l| l.starts_with("connection:") && l.contains("close"));
    if !closes {
        // Announced keep-alive: the connection must then serve the next request.
        let _ = s.write_all(req).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
        let text = String::from_utf8_lossy(&rest).to_string();
        let second = text.matches("HTTP/1.1 ").count();
        assert!(
            second >= 1,
            "the 502 response said keep-alive ({head:?}) but the connection was closed \
             without answering the next request"
        );
    }
    // The same through a pooled client: no transport errors after error responses.
    let c = client();
    let mut transport_errors = 0;
    for _ in 0..10 {
        match c.get(gw.url("/x")).send().await {
            Ok(r) => assert_eq!(r.status(), 502),
            Err(_) => transport_errors += 1,
        }
    }
    assert_eq!(transport_errors, 0, "keep-alive requests after a 502 failed");
}

/// A reload keeps the health state of targets it does not change: an unhealthy
/// target stays out (its healthy_threshold is never reached), while a new
/// config starting from scratch would put it back.
#[tokio::test]
async fn health_state_survives_a_reload() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let extra = "    health_check:
      active:
        type: http
        path: /health
        interval: 200ms
        timeout: 500ms
        healthy_threshold: 1000
        unhealthy_threshold: 1
";
    let addrs = [a.addr.to_string(), b.addr.to_string()];
    let gw = Gateway::start(&config(extra, &addrs, "")).await;
    let c = fresh_client();
    a.set_healthy(false);
    wait_until("a out of rotation", WAIT, || all_on(&c, &gw, "b", 4)).await;
    // `a` answers its checks again, but would need 1000 in a row to return.
    a.set_healthy(true);
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let reloaded = text.replace("  - name: all\n", "  - name: all-reloaded\n");
    std::fs::write(gw.config_path(), reloaded).unwrap();
    let out = std::process::Command::new(portico_bin())
        .args(["reload", "-c", gw.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for_reloads(&gw, "ok", 1).await;
    assert!(
        all_on(&c, &gw, "b", 20).await,
        "a came back after the reload:\n{}",
        gw.log()
    );
}
