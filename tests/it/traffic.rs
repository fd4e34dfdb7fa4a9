//! Traffic policies end to end: IP rules and trusted proxies, local rate
//! limits and concurrency limits, size limits, CORS, header transforms and
//! the response cache.

use crate::support::*;
use std::time::Duration;

fn routes(addr: std::net::SocketAddr, server_extra: &str, routes: &str) -> String {
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  threads: 2\n  admin: 127.0.0.1:${{ADMIN}}\n  \
         access_log: {{path: off}}\n  pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n{server_extra}\
         upstreams:\n  a:\n    targets:\n      - address: {addr}\nroutes:\n{routes}"
    )
}

#[tokio::test]
async fn ip_rules_and_trusted_proxies() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "  trusted_proxies: [127.0.0.1]\n",
        "  - name: internal\n    paths: [/internal/*]\n    upstream: a\n    policies:\n      - ip: {allow: [10.0.0.0/8, '2001:db8::/32'], deny: [10.9.0.0/16]}\n\
\x20 - name: direct\n    paths: [/*]\n    upstream: a\n    policies:\n      - ip: {deny: [127.0.0.0/8]}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let get = |xff: &'static str| c.get(gw.url("/internal/x")).header("x-forwarded-for", xff).send();
    // The peer (127.0.0.1) is trusted, so the rightmost untrusted hop is the client.
    assert_eq!(get("10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(get("2001:db8::7").await.unwrap().status(), 200);
    assert_eq!(get("8.8.8.8, 10.1.2.3").await.unwrap().status(), 200);
    expect_error(get("10.1.2.3, 8.8.8.8").await.unwrap(), 403, "forbidden").await;
    expect_error(get("10.9.0.1").await.unwrap(), 403, "forbidden").await;
    expect_error(get("garbage").await.unwrap(), 403, "forbidden").await;
    expect_error(c.get(gw.url("/internal/x")).send().await.unwrap(), 403, "forbidden").await;
    // No XFF at all on the other route: the peer itself is denied.
    expect_error(c.get(gw.url("/x")).send().await.unwrap(), 403, "forbidden").await;
}

#[tokio::test]
async fn local_rate_limit_accepts_the_limit_at_twice_the_rate() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: limited\n    paths: [/limited/*]\n    upstream: a\n    policies:\n      - rate_limit: {requests: 50, per: hour, key: header, header: x-user}\n\
\x20 - name: burst\n    paths: [/burst/*]\n    upstream: a\n    policies:\n      - rate_limit: {requests: 5, burst: 3, per: minute, key: route}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let mut accepted = 0;
    let mut last_ok_remaining = None;
    for i in 0..100 {
        let r = c.get(gw.url("/limited/x")).header("x-user", "u1").send().await.unwrap();
        assert_eq!(r.headers()["ratelimit-limit"], "50");
        if r.status() == 200 {
            accepted += 1;
            last_ok_remaining = Some(r.headers()["ratelimit-remaining"].to_str().unwrap().to_string());
        } else {
            let (h, v) = expect_error(r, 429, "rate_limited").await;
            let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=3600).contains(&retry), "retry-after {retry}");
            assert_eq!(h["ratelimit-remaining"], "0");
            assert!(v["error"]["message"].as_str().unwrap().contains("50 requests"), "{v}");
            assert!(i >= 45, "refused too early, at request {i}");
        }
    }
    // Within 10% of the limit (a count-min sketch may only over-count).
    assert!(
        (45..=50).contains(&accepted),
        "accepted {accepted} of 100 with a limit of 50"
    );
    assert_eq!(last_ok_remaining.as_deref(), Some("0"));
    // Another key has its own budget.
    let r = c.get(gw.url("/limited/x")).header("x-user", "u2").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.metric("portico_rate_limited_total{route=\"limited\"}").await,
        Some((100 - accepted) as f64)
    );
    // With `burst`, a token bucket: burst + 1 at once from idle (the rate
    // refills one every 12 s), and RateLimit-Remaining counts down from the
    // first request.
    let mut ok = 0;
    let mut remaining = Vec::new();
    for _ in 0..12 {
        let r = c.get(gw.url("/burst/x")).send().await.unwrap();
        if r.status() == 200 {
            ok += 1;
            remaining.push(r.headers()["ratelimit-remaining"].to_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(ok, 4);
    assert_eq!(remaining, ["3", "2", "1", "0"]);
}

/// Sends requests from `tasks` clients for `secs` seconds as fast as they
/// can; returns (accepted, seconds from the first request to the last).
async fn overload(url: String, tasks: usize, secs: u64) -> (usize, f64) {
    let start = std::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let c = client();
            let (mut ok, mut last) = (0, 0.0);
            // Bounded in count and time.
            for _ in 0..20_000 {
                if start.elapsed().as_secs() >= secs {
                    break;
                }
                let sent = start.elapsed().as_secs_f64();
                if c.get(&url).send().await.map(|r| r.status() == 200).unwrap_or(false) {
                    ok += 1;
                }
                last = sent;
            }
            (ok, last)
        }));
    }
    let mut accepted = 0;
    let mut elapsed: f64 = 0.0;
    for h in handles {
        let (ok, last) = h.await.unwrap();
        accepted += ok;
        elapsed = elapsed.max(last);
    }
    (accepted, elapsed)
}

/// A steady overload gets the rate and the burst once: rate × time + burst
/// + 1, within 2%.
#[tokio::test]
async fn a_steady_overload_gets_the_rate_plus_the_burst_once() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: bucket\n    upstream: a\n    policies:\n      - rate_limit: {requests: 20, per: second, burst: 10, key: route}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let (accepted, elapsed) = overload(gw.url("/x"), 4, 10).await;
    let expected = 20.0 * elapsed + 11.0;
    assert!(
        (accepted as f64 - expected).abs() <= (expected * 0.02).max(3.0),
        "accepted {accepted}, expected {expected:.0} over {elapsed:.2}s"
    );
}

#[tokio::test]
async fn concurrency_limit_counts_requests_in_flight() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: slow\n    upstream: a\n    policies:\n      - concurrency: {max: 2}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = fresh_client();
    // Two slow requests hold both slots...
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            let url = gw.url("/delay/1500");
            tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let up_ref = &up;
    wait_until("both slow requests upstream", Duration::from_secs(10), || async move {
        up_ref.hits() == 2
    })
    .await;
    // ...so a third is refused.
    let (h, _) = expect_error(c.get(gw.url("/x")).send().await.unwrap(), 429, "rate_limited").await;
    assert_eq!(h["retry-after"], "1");
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    // The slots are given back when the requests end.
    assert_eq!(c.get(gw.url("/x")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn size_limits_refuse_large_bodies_and_heads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: small\n    upstream: a\n    policies:\n      - size_limit: {body: 1KiB, headers: 2KiB}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = fresh_client();
    let r = c.post(gw.url("/x")).body(vec![b'a'; 1024]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = expect_error(
        c.post(gw.url("/x")).body(vec![b'a'; 1025]).send().await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("1024"), "{v}");
    expect_error(
        c.get(gw.url("/x"))
            .header("x-big", "b".repeat(3000))
            .send()
            .await
            .unwrap(),
        431,
        "request_header_too_large",
    )
    .await;

    // A chunked body with no declared length is stopped while it streams.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 600, "c".repeat(600));
    for _ in 0..4 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    // The upstream never received an oversized body in full.
    assert_eq!(up.state.max_body.load(std::sync::atomic::Ordering::SeqCst), 1024);
}

#[tokio::test]
async fn cors_preflight_and_response_headers() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: api\n    methods: [GET, POST, PUT]\n    upstream: a\n    policies:\n      - key_auth: {}\n      - cors:\n          allow_origins: ['https://app.example.com', 'https://*.example.org']\n          allow_methods: [GET, POST]\n          allow_headers: [x-api-key, content-type]\n          expose_headers: [x-upstream]\n          allow_credentials: true\n          max_age: 10m\n\
consumers:\n  - name: web\n    credentials:\n      api_keys: [{sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}]\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        c.request(reqwest::Method::OPTIONS, gw.url("/x"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };
    // Answered at the gateway, before key_auth, though the route has no OPTIONS.
    let r = preflight("https://app.example.com", "POST", "x-api-key").await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h.get("x-request-id").is_some());
    assert_eq!(
        preflight("https://a.b.example.org", "GET", "content-type")
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        preflight("https://evil.com", "GET", "").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(
        preflight("https://example.org", "GET", "").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(
        preflight("https://app.example.com", "PUT", "").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    // A method the route does not take at all is a plain 405.
    expect_error(
        preflight("https://app.example.com", "DELETE", "").await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    expect_error(
        preflight("https://app.example.com", "GET", "x-other").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(up.hits(), 0);

    // Actual requests: headers for allowed origins only, errors included.
    let r = c
        .get(gw.url("/x"))
        .header("origin", "https://app.example.com")
        .header("x-api-key", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(r.headers()["access-control-expose-headers"], "x-upstream");
    let r = c
        .get(gw.url("/x"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    expect_error(r, 401, "unauthorized").await;
    let r = c
        .get(gw.url("/x"))
        .header("origin", "https://evil.com")
        .header("x-api-key", "test")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn header_transforms_and_regex_path_rewrite() {
    let up = Upstream::start("a").await;
    let yaml = routes(
        up.addr,
        "",
        "  - name: t\n    paths: [/api/*]\n    upstream: a\n    policies:\n      - transform:\n          request:\n            rename: {x-old: x-new}\n            remove: [x-secret]\n            set: {x-env: prod}\n            add: {x-tag: portico}\n            path: {regex: '^/api/v1/(?P<rest>.*)$', replace: '/v2/${rest}'}\n          response:\n            remove: [x-upstream]\n            set: {x-served-by: portico}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let r = client()
        .get(gw.url("/api/v1/users/7?q=1"))
        .header("x-old", "o")
        .header("x-secret", "s")
        .header("x-env", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-upstream").is_none());
    assert_eq!(r.headers()["x-served-by"], "portico");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/v2/users/7");
    assert_eq!(v["query"], "q=1");
    let h = &v["headers"];
    assert_eq!(h["x-new"], "o");
    assert!(h.get("x-old").is_none() && h.get("x-secret").is_none());
    assert_eq!(h["x-env"], "prod");
    assert_eq!(h["x-tag"], "portico");
    // No match: the path is left alone.
    let (_, v) = get_json(&client(), &gw.url("/api/other")).await;
    assert_eq!(v["path"], "/api/other");
}

#[tokio::test]
async fn response_cache_hits_misses_and_reload() {
    let up = Upstream::start("a").await;
    let route = "  - name: cached\n    upstream: a\n    policies:\n      - cache: {ttl: 5m}\n";
    let yaml = routes(up.addr, "", route);
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let get = |path: &'static str| c.get(gw.url(path)).send();
    let r = get("/page?a=1").await.unwrap();
    assert_eq!(r.headers()["x-cache"], "MISS");
    let first: serde_json::Value = r.json().await.unwrap();
    let r = get("/page?a=1").await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert!(r.headers().get("age").is_some());
    assert!(r.headers().get("x-request-id").is_some());
    let second: serde_json::Value = r.json().await.unwrap();
    assert_eq!(first, second, "a hit returns the stored body");
    assert_eq!(up.hits(), 1);
    // HEAD is served from the GET entry.
    let r = c.head(gw.url("/page?a=1")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    // A different query is a different entry; POST is never cached.
    assert_eq!(get("/page?a=2").await.unwrap().headers()["x-cache"], "MISS");
    let r = c.post(gw.url("/page?a=1")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "BYPASS");
    assert_eq!(up.hits(), 3);
    // Error statuses outside the cacheable list are not stored.
    get("/status/500").await.unwrap();
    assert_eq!(get("/status/500").await.unwrap().headers()["x-cache"], "MISS");
    assert_eq!(up.hits(), 5);

    // A reload that leaves the route alone keeps its entries...
    rewrite_config(&gw, &format!("upstreams:\n  a:\n    targets:\n      - address: {}\nroutes:\n{route}  - name: other\n    paths: [/other]\n    upstream: a\n", up.addr));
    reload_and_wait(&gw, 1).await;
    assert_eq!(get("/page?a=1").await.unwrap().headers()["x-cache"], "HIT");
    // ...one that changes it starts empty.
    let changed = route.replace("ttl: 5m", "ttl: 4m");
    rewrite_config(
        &gw,
        &format!(
            "upstreams:\n  a:\n    targets:\n      - address: {}\nroutes:\n{changed}",
            up.addr
        ),
    );
    reload_and_wait(&gw, 2).await;
    assert_eq!(get("/page?a=1").await.unwrap().headers()["x-cache"], "MISS");
}
