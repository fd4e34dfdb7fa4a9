//! HTTP protocol handling: forwarding headers, request ids, hop-by-hop
//! removal, Host, h2c, and malformed or smuggling-shaped HTTP/1.1 requests
//! sent as raw bytes.

use crate::support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

async fn echo_gateway(up: &Upstream) -> Gateway {
    Gateway::start(&format!(
        "upstreams:
  a:
    targets:
      - address: {0}
  internal:
    host_header: backend.internal
    targets:
      - address: {0}
routes:
  - name: internal
    paths: [\"/internal/*\"]
    upstream: internal
  - name: all
    upstream: a
",
        up.addr
    ))
    .await
}

/// GETs `path` with extra headers; returns the response's x-request-id and
/// the upstream's echo.
async fn get_with(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (String, serde_json::Value) {
    let mut rb = client().get(gw.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("request");
    assert_eq!(r.status(), 200, "{path}");
    let id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (id, r.json().await.expect("json"))
}

#[tokio::test]
async fn forwarding_headers_and_host() {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;

    let hs = [("host", "client.example:8443"), ("x-forwarded-for", "1.2.3.4")];
    let (_, v) = get_with(&gw, "/fwd", &hs).await;
    let h = &v["headers"];
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1", "{v}");
    assert_eq!(h["x-forwarded-proto"], "http", "{v}");
    assert_eq!(h["x-forwarded-host"], "client.example:8443", "{v}");
    assert_eq!(
        h["host"], "client.example:8443",
        "the client's Host passes through: {v}"
    );

    // Without a client value, X-Forwarded-For is just the client address.
    let (_, v) = get_with(&gw, "/fwd", &[]).await;
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1", "{v}");
    assert_eq!(v["headers"]["host"], format!("127.0.0.1:{}", gw.port), "{v}");

    // host_header replaces Host upstream; X-Forwarded-Host keeps the client's.
    let (_, v) = get_with(&gw, "/internal/x", &[("host", "client.example")]).await;
    assert_eq!(v["path"], "/internal/x");
    assert_eq!(v["headers"]["host"], "backend.internal", "{v}");
    assert_eq!(v["headers"]["x-forwarded-host"], "client.example", "{v}");
}

#[tokio::test]
async fn request_id_kept_when_sane_replaced_when_not() {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;

    let (id, v) = get_with(&gw, "/id", &[("x-request-id", "abc-123_x.y")]).await;
    assert_eq!(id, "abc-123_x.y", "a sane id is echoed");
    assert_eq!(
        v["headers"]["x-request-id"], "abc-123_x.y",
        "a sane id reaches the upstream"
    );

    let long = "a".repeat(300);
    for bad in ["has spaces in it", long.as_str()] {
        let (id, v) = get_with(&gw, "/id", &[("x-request-id", bad)]).await;
        assert!(!id.is_empty() && id != bad, "{bad:?} must be replaced, got {id:?}");
        let plain = id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        assert!(id.len() <= 128 && plain, "generated id looks odd: {id:?}");
        assert_eq!(
            v["headers"]["x-request-id"],
            id.as_str(),
            "upstream and client see the same id"
        );
    }

    // No id sent: one is generated, and each request gets its own.
    let (a, _) = get_with(&gw, "/id", &[]).await;
    let (b, _) = get_with(&gw, "/id", &[]).await;
    assert!(!a.is_empty() && !b.is_empty() && a != b, "{a:?} {b:?}");
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;
    let req = "GET /hop HTTP/1.1\r\nHost: client.example\r\nConnection: x-secret\r\nX-Secret: 1\r\n\
               Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n";
    let (resp, _c) = raw(gw.port, req.as_bytes()).await;
    let resp = resp.expect("a response");
    assert_eq!(resp.status, 200, "{}", resp.head);
    let v = resp.json();
    let h = v["headers"].as_object().expect("headers").clone();
    for name in ["connection", "x-secret", "keep-alive", "proxy-connection"] {
        assert!(!h.contains_key(name), "{name} reached the upstream: {v}");
    }
    assert_eq!(h.get("x-kept").and_then(|v| v.as_str()), Some("yes"), "{v}");

    // Several tokens, odd case and spacing.
    let req = "GET /hop HTTP/1.1\r\nHost: c\r\nConnection: keep-alive , X-One,x-two\r\nX-One: 1\r\nX-Two: 2\r\n\r\n";
    let (resp, _c) = raw(gw.port, req.as_bytes()).await;
    let v = resp.expect("a response").json();
    for name in ["connection", "x-one", "x-two"] {
        assert!(v["headers"].get(name).is_none(), "{name} reached the upstream: {v}");
    }
}

#[tokio::test]
async fn h2c_listener_serves_http2_prior_knowledge() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        "server:
  listeners:
    - address: 127.0.0.1:${{PORT}}
      h2c: true
  threads: 2
  pid_file: ${{DIR}}/portico.pid
  upgrade_sock: ${{DIR}}/upgrade.sock
upstreams:
  a:
    targets:
      - address: {}
routes:
  - name: all
    upstream: a
",
        up.addr
    ))
    .await;
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .expect("client");
    let r = c
        .get(gw.url("/h2?x=1"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", gw.log()));
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert!(r.headers().contains_key("x-request-id"));
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["query"], "x=1");
    assert_eq!(v["headers"]["x-forwarded-proto"], "http", "{v}");
    // The client's :authority becomes the Host the upstream sees.
    assert_eq!(v["headers"]["host"], format!("127.0.0.1:{}", gw.port), "{v}");

    // The same listener still speaks HTTP/1.1.
    let (status, v) = get_json(&client(), &gw.url("/h1")).await;
    assert_eq!(status, 200);
    assert_eq!(v["path"], "/h1");
}

/// Sends a malformed request and requires a 4xx or a close without any 2xx,
/// and that the upstream never saw a request.
async fn assert_rejected(what: &str, request: &[u8]) {
    assert_rejected_with(what, request, false).await
}

/// As [`assert_rejected`]; with `head_may_arrive`, the upstream may have seen the
/// request head (Pingora streams bodies, so a body framing error is found after
/// the head went out; the upstream then sees an aborted request, never a
/// complete one: `invalid_chunk_never_reaches_the_upstream_as_a_complete_request`).
async fn assert_rejected_with(what: &str, request: &[u8], head_may_arrive: bool) {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;
    let (resp, mut conn) = raw(gw.port, request).await;
    let seen = match &resp {
        Some(r) => format!("{}{}", r.head, String::from_utf8_lossy(&r.body)),
        None => format!("connection closed; bytes: {:?}", String::from_utf8_lossy(&conn.buf)),
    };
    if let Some(r) = &resp {
        assert!((400..500).contains(&r.status), "{what}: expected a 4xx, got:\n{seen}");
    } else {
        assert!(!conn.buf.starts_with(b"HTTP/1.1 2"), "{what}: {seen}");
    }
    // Portico closes the connection after a framing error.
    let rest = conn.rest_until_close().await;
    assert!(
        find(&rest, b"HTTP/1.1 2").is_none(),
        "{what}: a 2xx followed: {:?}",
        String::from_utf8_lossy(&rest)
    );
    // A request sent after it on a new connection is answered, so anything
    // forwarded for the malformed one would have been counted by now.
    let (status, _) = get_json(&client(), &gw.url("/after")).await;
    assert_eq!(status, 200);
    let expected = if head_may_arrive { up.hits().clamp(1, 2) } else { 1 };
    assert_eq!(
        up.hits(),
        expected,
        "{what}: the upstream received the malformed request; client saw:\n{seen}"
    );
}

#[tokio::test]
async fn bad_request_line_is_rejected() {
    assert_rejected("bad request line", b"GET /x HTTP/1.1 extra\x01junk\r\nHost: a\r\n\r\n").await;
    assert_rejected("garbage request line", b"\x16\x03\x01 not http at all\r\n\r\n").await;
}

#[tokio::test]
async fn oversized_headers_are_rejected() {
    let mut req = b"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 200 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    assert_rejected("200 KiB header", &req).await;
}

/// The classic CL.TE smuggling shape: by Content-Length the body is "0\r\n\r"
/// (4 bytes); by chunked it ends after "0\r\n\r\n" and a second request follows.
const CL_TE: &[u8] = b"POST /smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\
    Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

#[tokio::test]
async fn content_length_with_chunked_is_rejected() {
    assert_rejected("Content-Length and Transfer-Encoding: chunked", CL_TE).await;
}

/// Whatever Portico does with both Content-Length and chunked, the two
/// framings must never both reach the upstream, the bytes after the chunked
/// body must never be served as a second request, and the connection closes.
#[tokio::test]
async fn content_length_with_chunked_never_desyncs() {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;
    let (resp, mut conn) = raw(gw.port, CL_TE).await;
    let mut forwarded = 0;
    if let Some(r) = resp.as_ref().filter(|r| r.header("x-upstream").is_some()) {
        forwarded = 1;
        let v = r.json();
        assert_eq!(v["path"], "/smuggle", "{v}");
        let h = &v["headers"];
        assert!(
            h.get("content-length").is_none() || h.get("transfer-encoding").is_none(),
            "upstream got both framings: {v}"
        );
        assert_eq!(v["body"], "", "by chunked framing the body is empty: {v}");
    }
    let rest = conn.rest_until_close().await;
    assert!(
        find(&rest, b"HTTP/1.1").is_none(),
        "a second response followed: {:?}",
        String::from_utf8_lossy(&rest)
    );
    let (status, _) = get_json(&client(), &gw.url("/after")).await;
    assert_eq!(status, 200);
    assert_eq!(
        up.hits(),
        1 + forwarded,
        "the smuggled GET /smuggled reached the upstream"
    );
}

/// A raw upstream that never answers; yields what each connection sent
/// before the peer closed it. Its tasks end with the test's runtime.
async fn recording_upstream() -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let closed = Arc::new(Mutex::new(Vec::new()));
    let rec = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let rec = rec.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got).await;
                rec.lock().unwrap().push(got);
            });
        }
    });
    (addr, closed)
}

/// A chunked body that turns invalid midway: the upstream may have seen the
/// head and valid chunks, but never a terminating chunk that would make the
/// truncated request look complete.
#[tokio::test]
async fn invalid_chunk_never_reaches_the_upstream_as_a_complete_request() {
    let (up_addr, closed) = recording_upstream().await;
    let gw = Gateway::start(&one_upstream(up_addr, "", "")).await;
    let req =
        b"POST /chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n";
    let (resp, mut conn) = raw(gw.port, req).await;
    if let Some(r) = &resp {
        assert!((400..500).contains(&r.status), "{}", r.head);
    }
    conn.rest_until_close().await;
    // Portico drops its upstream connection once the request failed.
    wait_until("upstream connection closed", RAW_DEADLINE, || {
        let n = closed.lock().unwrap().len();
        async move { n > 0 }
    })
    .await;
    for got in closed.lock().unwrap().iter() {
        let text = String::from_utf8_lossy(got);
        assert!(
            !got.ends_with(b"0\r\n\r\n"),
            "the upstream got a complete chunked request: {text:?}"
        );
        assert!(
            find(got, b"world").is_none(),
            "bytes after the bad chunk were forwarded: {text:?}"
        );
    }
}

/// A response after which Portico closes the connection says so.
#[tokio::test]
async fn framing_error_response_says_connection_close() {
    let up = Upstream::start("a").await;
    let gw = echo_gateway(&up).await;
    let req = b"POST /chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let (resp, mut conn) = raw(gw.port, req).await;
    conn.rest_until_close().await;
    if let Some(r) = resp {
        let connection = r.header("connection").unwrap_or_default().to_ascii_lowercase();
        assert!(
            !connection.contains("keep-alive"),
            "closed after advertising keep-alive:\n{}",
            r.head
        );
    }
}

#[tokio::test]
async fn invalid_chunk_size_is_rejected() {
    let req = b"POST /chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    assert_rejected_with("invalid chunk size", req, true).await;
}

#[tokio::test]
async fn conflicting_content_lengths_are_rejected() {
    let req = b"POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_rejected("two different Content-Length values", req).await;
    let req = b"POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!";
    assert_rejected("a Content-Length list with different values", req).await;
}
