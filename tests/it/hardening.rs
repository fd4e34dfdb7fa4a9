//! Requests an attacker or a careless client sends, refused the way the
//! README's error table says: the JSON error, `x-request-id`, nothing
//! forwarded: a missing or doubled Host, a raw backslash, heads Pingora
//! would refuse without a body, and clients that send too slowly.

use crate::support::*;

/// Sends `request` raw and requires the JSON refusal `status`/`kind`, with a
/// request id, and no request at the upstream.
async fn assert_json_refusal(gw: &Gateway, up: &Upstream, request: &[u8], status: u16, kind: &str) -> String {
    let before = up.hits();
    let (resp, _conn) = raw(gw.port, request).await;
    let what = String::from_utf8_lossy(request).into_owned();
    let resp = resp.unwrap_or_else(|| panic!("{what:?}: no response\n{}", gw.log()));
    assert_eq!(resp.status, status, "{what:?}: {}", resp.head);
    let v = resp.json();
    assert_eq!(v["error"]["code"], kind, "{what:?}: {v}");
    assert_eq!(v["error"]["type"], error_category(status), "{what:?}: {v}");
    let id = resp.header("x-request-id").unwrap_or_default();
    assert!(!id.is_empty(), "{what:?}: no x-request-id in {}", resp.head);
    assert_eq!(v["error"]["request_id"], id.as_str(), "{what:?}: {v}");
    assert_eq!(up.hits(), before, "{what:?} reached the upstream");
    v["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// Sends `request` raw and returns the upstream's echo of it.
async fn forwarded(gw: &Gateway, request: &[u8]) -> serde_json::Value {
    let (resp, _conn) = raw(gw.port, request).await;
    let what = String::from_utf8_lossy(request).into_owned();
    let resp = resp.unwrap_or_else(|| panic!("{what:?}: no response\n{}", gw.log()));
    assert_eq!(resp.status, 200, "{what:?}: {}", resp.head);
    resp.json()
}

#[tokio::test]
async fn http11_host_is_required_and_unambiguous() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let msg = assert_json_refusal(&gw, &up, b"GET /x HTTP/1.1\r\n\r\n", 400, "bad_request").await;
    assert!(msg.contains("Host"), "{msg}");
    let two = b"GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n";
    let msg = assert_json_refusal(&gw, &up, two, 400, "bad_request").await;
    assert!(msg.contains("Host"), "{msg}");
    let same = b"GET /x HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n";
    assert_json_refusal(&gw, &up, same, 400, "bad_request").await;
    // HTTP/1.0 may omit Host.
    let v = forwarded(&gw, b"GET /ten HTTP/1.0\r\n\r\n").await;
    assert_eq!(v["path"], "/ten");
}

#[tokio::test]
async fn a_raw_backslash_is_refused_like_an_encoded_one() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let request = b"GET /public/..\\admin/users HTTP/1.1\r\nHost: a\r\n\r\n";
    let msg = assert_json_refusal(&gw, &up, request, 400, "bad_request").await;
    assert_eq!(msg, "backslash in path");

    // `encoded_slashes: keep` passes it on as it came.
    let server = "server:\n  listeners:\n    - address: 127.0.0.1:${PORT}\n  threads: 2\n  \
                  encoded_slashes: keep\n  access_log: {path: off}\n  \
                  pid_file: ${DIR}/portico.pid\n  upgrade_sock: ${DIR}/upgrade.sock\n";
    let gw = Gateway::start(&format!("{server}{}", one_upstream(up.addr, "", ""))).await;
    let v = forwarded(&gw, b"GET /files/a\\b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(v["path"], "/files/a\\b", "{v}");
}

/// Heads Pingora itself would refuse with an empty 400 get the JSON error
/// and the status of the README's table.
#[tokio::test]
async fn every_refused_head_gets_the_json_error() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /x HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert_json_refusal(&gw, &up, req.as_bytes(), 431, "request_header_too_large").await;
    let many: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /x HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert_json_refusal(&gw, &up, req.as_bytes(), 431, "request_header_too_large").await;
    for cl in ["99999999999999999999", "+5", "0x5"] {
        let req = format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\nhello");
        assert_json_refusal(&gw, &up, req.as_bytes(), 400, "bad_request").await;
    }
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "p".repeat(64 * 1024));
    assert_json_refusal(&gw, &up, req.as_bytes(), 431, "request_header_too_large").await;
    let req = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    assert_json_refusal(&gw, &up, req, 405, "method_not_allowed").await;
    let req = b"GET http://other.example/x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_json_refusal(&gw, &up, req, 400, "bad_request").await;
    // The gateway still serves.
    let v = forwarded(&gw, b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(v["path"], "/after");
}

/// A config whose head and body must arrive within one second.
fn impatient(up: &Upstream) -> String {
    let server = "server:\n  listeners:\n    - address: 127.0.0.1:${PORT}\n  threads: 2\n  \
                  admin: 127.0.0.1:${ADMIN}\n  request_head_timeout: 1s\n  request_body_timeout: 1s\n  \
                  access_log: {path: off}\n  pid_file: ${DIR}/portico.pid\n  upgrade_sock: ${DIR}/upgrade.sock\n";
    format!("{server}{}", one_upstream(up.addr, "", ""))
}

/// A client that trickles its head one line at a time is answered 408 once
/// `request_head_timeout` has passed, while other clients are served.
#[tokio::test]
async fn a_trickling_request_head_gets_408_and_others_are_served() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&impatient(&up)).await;
    let mut conn = raw_conn(gw.port).await;
    conn.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n").await;
    let c = client();
    let mut lines = 0;
    let mut fast = 0;
    let started = std::time::Instant::now();
    let resp = loop {
        // Normal clients keep being served beside it.
        let (status, _) = get_json(&c, &gw.url("/fast")).await;
        assert_eq!(status, 200);
        fast += 1;
        if let Some(r) = conn.try_response(std::time::Duration::from_millis(300)).await {
            break r;
        }
        assert!(!conn.closed, "closed without an answer after {lines} lines");
        assert!(started.elapsed() < RAW_DEADLINE, "no 408 after {lines} header lines");
        conn.send(format!("X-Line-{lines}: v\r\n").as_bytes()).await;
        lines += 1;
    };
    assert_eq!(resp.status, 408, "{}", resp.head);
    assert_eq!(resp.json()["error"]["code"], "request_timeout");
    assert!(resp.header("x-request-id").is_some());
    assert_eq!(up.hits(), fast, "the slow request reached the upstream");
    wait_until(
        "the head timeout counted",
        std::time::Duration::from_secs(10),
        || async { gw.metric("portico_client_timeouts_total{phase=\"head\"}").await == Some(1.0) },
    )
    .await;
}

/// A body that stops arriving is answered 408 once `request_body_timeout`
/// has passed.
#[tokio::test]
async fn a_stalled_request_body_gets_408() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&impatient(&up)).await;
    let mut conn = raw_conn(gw.port).await;
    conn.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let resp = conn
        .response()
        .await
        .unwrap_or_else(|| panic!("no answer\n{}", gw.log()));
    assert_eq!(resp.status, 408, "{}", resp.head);
    assert_eq!(resp.json()["error"]["code"], "request_timeout");
    wait_until(
        "the body timeout counted",
        std::time::Duration::from_secs(10),
        || async { gw.metric("portico_client_timeouts_total{phase=\"body\"}").await == Some(1.0) },
    )
    .await;
}

/// An empty or comments-only file is an error, located at its start.
#[test]
fn an_empty_config_is_refused_by_check() {
    let dir = temp_dir("empty");
    for (name, text) in [
        ("empty.yaml", ""),
        ("blank.yaml", "\n  \n"),
        ("comments.yaml", "# nothing yet\n"),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, text).expect("write");
        let (code, stderr) = portico_check(&f);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("{}:1:1: the file is empty", f.display()),
            "{name}"
        );
    }
}

/// A live config truncated to nothing, or cut short before its routes, does
/// not turn every route into a 404: the reload is refused and the old config
/// keeps serving. A file that writes `routes: []` removes them on purpose.
#[tokio::test]
async fn a_reload_that_would_remove_every_route_needs_routes_written_empty() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let c = client();
    let original = std::fs::read_to_string(gw.config_path()).expect("config");
    std::fs::write(gw.config_path(), "").expect("truncate");
    gw.hup();
    wait_for_reloads(&gw, "error", 1).await;
    let (status, _) = get_json(&c, &gw.url("/still")).await;
    assert_eq!(status, 200, "the old routes keep serving");

    // Only the server block: the save was cut short before the routes.
    std::fs::write(gw.config_path(), &original).expect("restore");
    rewrite_config(&gw, "upstreams:\n  a:\n    targets:\n      - address: 127.0.0.1:9\n");
    gw.hup();
    wait_for_reloads(&gw, "error", 2).await;
    assert!(gw.log().contains("routes: []"), "{}", gw.log());
    let (status, _) = get_json(&c, &gw.url("/still")).await;
    assert_eq!(status, 200, "the old routes keep serving");

    rewrite_config(&gw, "routes: []\n");
    reload_and_wait(&gw, 1).await;
    let (status, v) = get_json(&c, &gw.url("/gone")).await;
    assert_eq!(status, 404, "{v}");
}

/// A request its client abandoned is logged and counted as 499
/// `client_closed`; an upstream that hangs up mid-response is named.
#[tokio::test]
async fn aborted_requests_are_499_and_upstream_hangups_are_named() {
    let up = Upstream::start("a").await;
    // An upstream that sends a head promising 100 bytes, 3 of them, and hangs up.
    let cut = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cut_addr = cut.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = cut.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc").await;
        }
    });
    let more = format!("  cut:\n    targets:\n      - address: {cut_addr}\n");
    let yaml = one_upstream(up.addr, "", "").replace(
        "routes:\n",
        &format!("{more}routes:\n  - name: cut\n    paths: [\"/cut/*\"]\n    upstream: cut\n"),
    );
    let gw = Gateway::start(&yaml).await;

    let mut conn = raw_conn(gw.port).await;
    conn.send(b"GET /delay/1500 HTTP/1.1\r\nHost: a\r\nX-Request-Id: gone-early\r\n\r\n")
        .await;
    // Gone once the upstream has the request.
    wait_until("the request upstream", std::time::Duration::from_secs(10), || async {
        up.hits() == 1
    })
    .await;
    drop(conn);
    let v = gw.access_log_line("gone-early").await;
    assert_eq!(v["status"], 499, "{v}");
    assert_eq!(v["error"], "client_closed", "{v}");
    wait_until("the 499 counted", std::time::Duration::from_secs(10), || async {
        gw.metric("portico_requests_total{method=\"GET\",route=\"api\",status=\"499\"}")
            .await
            == Some(1.0)
    })
    .await;

    let r = client()
        .get(gw.url("/cut/x"))
        .header("x-request-id", "cut-short")
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.bytes().await.is_err(), "the body was cut short");
    }
    let v = gw.access_log_line("cut-short").await;
    assert_eq!(v["error"], "upstream_reset", "{v}");
    assert_eq!(v["status"], 200, "{v}");
}

/// `portico check -c file`: its exit code and what it printed.
fn portico_check(file: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(portico_bin())
        .args(["check", "-c"])
        .arg(file)
        .env_remove("RUST_LOG")
        .output()
        .expect("run portico check");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `portico check` on `yaml`, written to a file named `name`.
fn check_text(name: &str, yaml: &str) -> (Option<i32>, String) {
    let f = temp_dir("check-all").join(name);
    std::fs::write(&f, yaml).expect("write");
    portico_check(&f)
}

/// `portico check` reports every error it can find in one pass, not the first.
#[test]
fn check_reports_every_error_not_the_first() {
    let (code, err) = check_text(
        "two-routes.yaml",
        "upstreams:\n  a:\n    targets: [{address: \"127.0.0.1:1\"}]\nroutes:\n  - name: one\n    paths: 5\n    upstream: a\n\
         \x20 - name: two\n    retries: lots\n    upstream: a\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("routes[0]"), "{err}");
    assert!(
        err.contains("routes[1]") && err.contains("lots"),
        "the second error is hidden: {err}"
    );

    let (code, err) = check_text(
        "two-cidrs.yaml",
        "server:\n  trusted_proxies: [nope, 300.1.1.1]\nupstreams:\n  a:\n    targets: [{address: \"127.0.0.1:1\"}]\n\
         routes:\n  - name: one\n    upstream: a\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nope") && err.contains("300.1.1.1"), "{err}");

    let (code, err) = check_text(
        "two-ports.yaml",
        "server:\n  listeners:\n    - address: 127.0.0.1:99999\nupstreams:\n  a:\n    targets: [{address: \"127.0.0.1:99998\"}]\n\
         routes:\n  - name: one\n    upstream: a\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("server.listeners[0].address"), "{err}");
    assert!(
        err.contains("upstreams.a.targets[0].address"),
        "the target's error is hidden: {err}"
    );

    let missing = temp_dir("check-missing").join("missing.yaml");
    let (code, err) = portico_check(&missing);
    assert_eq!(code, Some(1));
    assert_eq!(err.trim(), format!("{}: no such file", missing.display()));
}

/// A target that resets real requests but passes its health checks, and
/// at how many checks answered each real request arrived.
struct Flaky {
    addr: std::net::SocketAddr,
    requests_at: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

async fn flaky() -> Flaky {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests_at = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, r) = (checks.clone(), requests_at.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            if buf[..n].starts_with(b"GET /health ") {
                c.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .await;
            } else if n > 0 {
                r.lock().expect("lock").push(c.load(Ordering::SeqCst));
                // Dropped unanswered: a reset for the gateway.
            }
        }
    });
    Flaky { addr, requests_at }
}

/// A passively ejected target stays out for its cooldown unless the active
/// check has since seen `healthy_threshold` successes; then it returns.
#[tokio::test]
async fn an_ejected_target_returns_after_enough_checks_since_the_ejection() {
    let live = Upstream::start("live").await;
    let bad = flaky().await;
    let yaml = format!(
        "upstreams:\n  pool:\n    health_check:\n      active:\n        type: http\n        path: /health\n        \
         interval: 100ms\n        timeout: 1s\n        healthy_threshold: 5\n        unhealthy_threshold: 1\n      \
         passive:\n        max_fails: 1\n        cooldown: 120s\n    targets:\n      - address: {}\n      - address: {}\n\
         routes:\n  - name: all\n    upstream: pool\n",
        live.addr, bad.addr
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let real = || bad.requests_at.lock().expect("lock").clone();
    // Until the flaky target has had a real request, and so been ejected.
    // (A reset after the request went out is not retried: that request is a 502.)
    wait_until("the flaky target tried", std::time::Duration::from_secs(20), || async {
        let (status, _) = get_json(&c, &gw.url("/x")).await;
        assert!(status == 200 || status == 502, "{status}");
        !real().is_empty()
    })
    .await;
    // Its checks keep passing; after enough of them it gets traffic again,
    // long before the 120 s cooldown.
    wait_until("the flaky target back", std::time::Duration::from_secs(20), || async {
        let (status, _) = get_json(&c, &gw.url("/x")).await;
        assert!(status == 200 || status == 502, "{status}");
        real().len() >= 2
    })
    .await;
    // `at` holds the check count when each real request arrived; the
    // ejection comes a moment after the first, and a check already in flight
    // then completes after it and counts: 4 checks between the requests is
    // the least that satisfies a threshold of 5.
    let at = real();
    assert!(
        at[1] >= at[0] + 4,
        "back after {} checks since its ejection, not 5: {at:?}",
        at[1] - at[0]
    );
}
