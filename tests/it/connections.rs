//! Client connections between requests: Portico waits for the next request
//! outside Pingora's per-request state (src/serve/http1.rs). A request must
//! arrive whole however it is split, however large its head, and an idle
//! connection must close after `server.keepalive_timeout` and at shutdown.

use crate::support::*;
use std::time::Duration;
use tokio::net::TcpStream;

fn config(up: &Upstream, keepalive: &str) -> String {
    config_with_grace(up, keepalive, "1s")
}

fn config_with_grace(up: &Upstream, keepalive: &str, grace: &str) -> String {
    gateway_config(
        up.addr,
        &format!("  keepalive_timeout: {keepalive}\n  grace_period: {grace}\n  graceful_shutdown_timeout: 2s\n"),
    )
}

/// One route to `addr`, with `server_extra` (indented `server:` lines) added.
/// Two threads without work stealing unless `server_extra` says otherwise:
/// each connection is moved to its serving thread's reactor (src/serve/stream.rs).
fn gateway_config(addr: impl std::fmt::Display, server_extra: &str) -> String {
    let stealing = if server_extra.contains("work_stealing:") {
        ""
    } else {
        "  work_stealing: false\n"
    };
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n{stealing}{server_extra}  \
         access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{}",
        one_upstream(addr, "", "")
    )
}

async fn connect(gw: &Gateway) -> RawConn {
    RawConn {
        stream: TcpStream::connect(("127.0.0.1", gw.port)).await.expect("connect"),
        buf: Vec::new(),
        closed: false,
    }
}

fn echoed_header(resp: &RawResponse, name: &str) -> String {
    resp.json()["headers"][name].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn idle_connection_closes_after_keepalive_timeout() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "1s")).await;

    // After a request: the next one never comes, so the connection closes.
    let mut c = connect(&gw).await;
    c.send(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let resp = c.response().await.expect("first response");
    assert_eq!(resp.status, 200);
    assert!(c.rest_until_close().await.is_empty(), "nothing after the response");

    // A connection that never sends a request closes too.
    let mut silent = connect(&gw).await;
    assert!(silent.rest_until_close().await.is_empty());

    // Half a request head, then nothing: closed too, with nothing sent upstream.
    let hits = up.hits();
    let mut partial = connect(&gw).await;
    partial.send(b"GET /never HTT").await;
    let rest = partial.rest_until_close().await;
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 4"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(up.hits(), hits);

    // A connection in use is not cut: requests within the timeout are served.
    let mut busy = connect(&gw).await;
    for i in 0..20 {
        busy.send(format!("GET /n{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .await;
        assert_eq!(busy.response().await.expect("response").status, 200, "request {i}");
    }
}

/// A connection has one keep-alive timer, armed at its first wait, not one
/// per wait: when it fires while the connection is still in use, the
/// connection is kept and the timer re-armed for the rest of the timeout, and
/// the connection still closes once it has really been idle that long.
#[tokio::test]
async fn a_connection_in_use_past_the_keepalive_timeout_is_kept_then_closed_when_idle() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "2s")).await;
    let mut c = connect(&gw).await;
    let started = std::time::Instant::now();
    let mut served = 0;
    // Requests 300 ms apart for more than twice the timeout.
    while started.elapsed() < Duration::from_secs(5) {
        c.send(format!("GET /n{served} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .await;
        let resp = c.response().await.expect("the connection was kept");
        assert_eq!(resp.status, 200, "request {served}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(served >= 5, "{served} requests");
    let idle = std::time::Instant::now();
    assert!(c.rest_until_close().await.is_empty(), "nothing after the last response");
    // Idle since the last response (300 ms before `idle`): not closed early.
    assert!(
        idle.elapsed() >= Duration::from_secs(1),
        "closed {:?} into a 2 s keep-alive timeout",
        idle.elapsed()
    );
}

#[tokio::test]
async fn request_heads_arrive_whole_however_split_or_large() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "60s")).await;
    let mut c = connect(&gw).await;

    // Heads larger than the idle read (4 KiB) and at its edge, on a new
    // connection and on a reused one.
    let frame = "GET /big HTTP/1.1\r\nHost: t\r\nx-big: \r\n\r\n".len();
    let edge = portico::serve::http1::IDLE_READ - frame;
    let sizes = [9000, 6000, edge + 1, edge, edge - 1, 2048];
    for size in sizes {
        let big = "b".repeat(size);
        c.send(format!("GET /big HTTP/1.1\r\nHost: t\r\nx-big: {big}\r\n\r\n").as_bytes())
            .await;
        let resp = c.response().await.expect("response");
        assert_eq!(resp.status, 200, "head with a {size}-byte header");
        assert_eq!(echoed_header(&resp, "x-big").len(), size);
    }

    // A head written a few bytes at a time.
    let head = b"GET /split HTTP/1.1\r\nHost: t\r\nx-part: whole\r\n\r\n";
    for piece in head.chunks(3) {
        c.send(piece).await;
        tokio::task::yield_now().await;
    }
    let resp = c.response().await.expect("split response");
    assert_eq!(resp.status, 200);
    assert_eq!(echoed_header(&resp, "x-part"), "whole");
    // The client's address survives the move to the serving thread.
    assert_eq!(echoed_header(&resp, "x-forwarded-for"), "127.0.0.1");

    // The body after the head, in a separate write.
    c.send(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        .await;
    tokio::task::yield_now().await;
    c.send(b"hello world").await;
    let resp = c.response().await.expect("post response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["body"], "hello world");

    // Head and body in one write, then another request on the same connection.
    c.send(b"POST /both HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    let resp = c.response().await.expect("post response");
    assert_eq!(resp.json()["body"], "abc");
    c.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let resp = c.response().await.expect("response after a body");
    assert_eq!(resp.json()["path"], "/after");
    assert_eq!(up.hits(), sizes.len() + 4, "every head, the split one, and three more");
}

#[tokio::test]
async fn malformed_heads_get_the_json_400() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "60s")).await;
    let mut c = connect(&gw).await;
    c.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(c.response().await.expect("response").status, 200);
    c.send(b"NOT HTTP AT ALL\r\n\r\n").await;
    let resp = c.response().await.expect("an answer to garbage");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["code"], "bad_request", "{}", resp.head);
    assert_eq!(
        resp.json()["error"]["message"],
        "malformed request: invalid HTTP version"
    );
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.rest_until_close().await.is_empty());

    // On a new connection too, and for a bad header line.
    let mut c = connect(&gw).await;
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n").await;
    let resp = c.response().await.expect("an answer to a bad header");
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["error"]["message"],
        "malformed request: invalid header name"
    );
    assert_eq!(
        resp.json()["error"]["request_id"].as_str().map(String::from),
        resp.header("x-request-id")
    );

    // A URI with a space is Pingora's to repair, as before: it is proxied.
    let mut c = connect(&gw).await;
    c.send(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let resp = c.response().await.expect("an answer to a URI with a space");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/a%20b");
    assert_eq!(up.hits(), 2);
}

/// Idle connections close when the listener's drain delay ends (at most
/// 2 s), while a request in flight is still being served, not when the
/// process exits at the end of its 10 s grace period.
#[tokio::test]
async fn idle_connections_close_at_graceful_shutdown() {
    let up = Upstream::start("a").await;
    let mut gw = Gateway::start(&config_with_grace(&up, "3600s", "10s")).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut c = connect(&gw).await;
        c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(c.response().await.expect("response").status, 200);
        idle.push(c);
    }
    idle.push(connect(&gw).await);
    let mut slow = connect(&gw).await;
    slow.send(b"GET /delay/6000 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let slow = tokio::spawn(async move { slow.response().await.map(|r| r.status) });
    let up_state = up.state.clone();
    wait_until("the slow request reached the upstream", Duration::from_secs(20), || {
        let st = up_state.clone();
        async move { st.hits.load(std::sync::atomic::Ordering::SeqCst) >= 21 }
    })
    .await;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gw.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    for (i, c) in idle.iter_mut().enumerate() {
        assert!(
            c.rest_until_close().await.is_empty(),
            "connection {i} got bytes instead of a close"
        );
    }
    assert!(
        !slow.is_finished(),
        "idle connections stayed open as long as the request in flight"
    );
    assert_eq!(
        slow.await.expect("slow task"),
        Some(200),
        "the request in flight was served"
    );
    gw.wait_exit(Duration::from_secs(30)).await;
}

/// `server.client_write_buffer` only changes how a response is split into
/// sends: unbuffered, Pingora's default and a buffer larger than the body
/// all deliver every response whole, on one kept-alive connection, whether
/// the connection stays on Pingora's stream (work stealing) or is moved to
/// the serving thread (with or without a read buffer).
#[tokio::test]
async fn responses_arrive_whole_whatever_the_client_write_buffer() {
    let up = FnServer::start(|_, path, _| {
        let n: usize = path.trim_start_matches('/').parse().unwrap_or(0);
        (200, "x".repeat(n))
    })
    .await;
    let settings = [
        ("0", "0", "false"),
        ("1460", "0", "false"),
        ("32KiB", "64KiB", "false"),
        ("1460", "0", "true"),
        ("0", "16KiB", "true"),
    ];
    for (buffer, read, stealing) in settings {
        let extra =
            format!("  client_write_buffer: {buffer}\n  client_read_buffer: {read}\n  work_stealing: {stealing}\n");
        let gw = Gateway::start(&gateway_config(up.addr, &extra)).await;
        let mut c = connect(&gw).await;
        for size in [0, 12, 1400, 1461, 16 * 1024, 40 * 1024, 200 * 1024] {
            c.send(format!("GET /{size} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                .await;
            let resp = c.response().await.expect("response");
            assert_eq!(resp.status, 200, "buffer {buffer}, body {size}");
            assert_eq!(resp.body.len(), size, "buffer {buffer}, body {size}");
            assert!(resp.body.iter().all(|b| *b == b'x'), "buffer {buffer}, body {size}");
        }
    }
    assert_eq!(up.hits(), 35);
}

/// Moving a connection to its serving thread duplicates its descriptor for a
/// moment. Once 100 clients have come and gone (every tenth hanging up before
/// its response), the gateway holds no more descriptors than before, give or
/// take a pooled upstream connection per thread.
#[tokio::test]
async fn moved_connections_leave_no_descriptor_behind() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(&up, "60s")).await;
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", gw.pid())).map_or(0, |d| d.count());
    let mut c = connect(&gw).await;
    c.send(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(c.response().await.expect("warm-up").status, 200);
    drop(c);
    let before = fds();
    for i in 0..100 {
        let mut c = connect(&gw).await;
        c.send(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n").await;
        if i % 10 == 9 {
            continue; // hangs up without waiting
        }
        assert_eq!(c.response().await.expect("first").status, 200, "client {i}");
        c.send(b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(c.response().await.expect("second").status, 200, "client {i}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fds() > before + 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fds() <= before + 2,
        "{} descriptors open, {before} before the clients",
        fds()
    );
    // The hung-up clients' requests may or may not have reached the upstream.
    assert!(
        up.hits() > 90 * 2,
        "{} upstream hits: the warm-up and two for each client that waited",
        up.hits()
    );
}

/// Each plain HTTP/1 connection is served on the thread with the fewest open
/// ones (src/serve/workers.rs): six keep-alive connections on three threads are two
/// on each, as `portico_worker_connections` shows; a new one fills the place
/// of one that closed; none are left once they close.
#[tokio::test]
async fn connections_spread_evenly_over_the_serving_threads() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 3\n  admin: 127.0.0.1:${{ADMIN}}\n  \
         access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{}",
        one_upstream(up.addr, "", "")
    ))
    .await;
    let none = vec![Some(0.0); 3];
    // The start-up probe's connection is counted before a connection accepted
    // after it has its response; then both end.
    let mut first = connect(&gw).await;
    first.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(first.response().await.expect("response").status, 200);
    drop(first);
    wait_until("no connection open", Duration::from_secs(20), || async {
        worker_connections(&gw, 3).await == none
    })
    .await;

    let mut conns = Vec::new();
    for i in 0..6 {
        let mut c = connect(&gw).await;
        c.send(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await;
        assert_eq!(c.response().await.expect("response").status, 200);
        conns.push(c);
    }
    assert_eq!(worker_connections(&gw, 3).await, vec![Some(2.0); 3]);
    // One closes; the next connection takes its place, wherever that was.
    drop(conns.remove(1));
    wait_until("one connection to close", Duration::from_secs(20), || async {
        worker_connections(&gw, 3).await.iter().flatten().sum::<f64>() == 5.0
    })
    .await;
    let mut c = connect(&gw).await;
    c.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(c.response().await.expect("response").status, 200);
    conns.push(c);
    assert_eq!(worker_connections(&gw, 3).await, vec![Some(2.0); 3]);
    drop(conns);
    wait_until("the connections to close", Duration::from_secs(20), || async {
        worker_connections(&gw, 3).await == none
    })
    .await;
}

/// `portico_worker_connections` of serving threads 0 to n - 1, from one scrape.
async fn worker_connections(gw: &Gateway, n: usize) -> Vec<Option<f64>> {
    let (_, text) = gw.admin("/metrics").await;
    (0..n)
        .map(|i| {
            let series = format!("portico_worker_connections{{worker=\"{i}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}
