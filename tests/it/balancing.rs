//! Load balancing end to end: round robin, weighted, random, consistent hash
//! (header, cookie, path; stability when a target is removed) and least_conn.

use crate::support::*;
use std::collections::HashMap;
use std::time::Duration;

/// Starts `n` echo upstreams named t0, t1, ...
async fn start_targets(n: usize) -> Vec<Upstream> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Upstream::start(&format!("t{i}")).await);
    }
    v
}

/// A config with one upstream `pool` over `targets` (address, weight) and one catch-all route.
fn pool_config(extra: &str, targets: &[(&Upstream, usize)]) -> String {
    let mut y = format!("upstreams:\n  pool:\n{extra}    targets:\n");
    for (u, w) in targets {
        y.push_str(&format!("      - address: {}\n        weight: {w}\n", u.addr));
    }
    y.push_str("routes:\n  - name: all\n    upstream: pool\n");
    y
}

/// Sends one GET (with optional extra header) and returns the target that served it.
async fn target_of(c: &reqwest::Client, gw: &Gateway, path: &str, header: Option<(&str, &str)>) -> String {
    let mut rb = c.get(gw.url(path));
    if let Some((k, v)) = header {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{path}: {v}\n{}", gw.log());
    v["upstream"].as_str().expect("upstream name").to_string()
}

async fn counts(c: &reqwest::Client, gw: &Gateway, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in 0..n {
        *m.entry(target_of(c, gw, &format!("/r/{i}"), None).await).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn round_robin_is_exactly_even_and_ignores_weights() {
    let t = start_targets(3).await;
    let gw = Gateway::start(&pool_config(
        "    algorithm: round_robin\n",
        &[(&t[0], 5), (&t[1], 1), (&t[2], 1)],
    ))
    .await;
    let m = counts(&client(), &gw, 30).await;
    for name in ["t0", "t1", "t2"] {
        assert_eq!(m.get(name).copied().unwrap_or(0), 10, "{name}: {m:?}");
    }
    assert_eq!(t.iter().map(|u| u.hits()).sum::<usize>(), 30);
}

#[tokio::test]
async fn weighted_follows_the_weights() {
    let t = start_targets(2).await;
    let gw = Gateway::start(&pool_config("    algorithm: weighted\n", &[(&t[0], 3), (&t[1], 1)])).await;
    let m = counts(&client(), &gw, 400).await;
    let (a, b) = (m.get("t0").copied().unwrap_or(0), m.get("t1").copied().unwrap_or(0));
    assert_eq!(a + b, 400, "{m:?}");
    assert!(b > 0, "{m:?}");
    let ratio = a as f64 / b as f64;
    assert!((2.7..=3.3).contains(&ratio), "ratio {ratio} not within 10% of 3: {m:?}");
}

#[tokio::test]
async fn random_is_roughly_proportional_to_weights() {
    let t = start_targets(2).await;
    let gw = Gateway::start(&pool_config("    algorithm: random\n", &[(&t[0], 3), (&t[1], 1)])).await;
    let m = counts(&client(), &gw, 400).await;
    let a = m.get("t0").copied().unwrap_or(0);
    let b = m.get("t1").copied().unwrap_or(0);
    assert_eq!(a + b, 400, "{m:?}");
    // Expected share 0.75 (standard deviation about 0.02); 0.5 would mean weights are ignored.
    let share = a as f64 / 400.0;
    assert!((0.62..=0.88).contains(&share), "t0 share {share}: {m:?}");
    assert!(b > 0, "{m:?}");
}

const HASH_HEADER: &str = "    algorithm: consistent_hash\n    hash_on: header\n    hash_key: x-user\n";

/// Target of each of `keys` hashed on the x-user header.
async fn by_user(c: &reqwest::Client, gw: &Gateway, keys: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for k in keys {
        out.push(target_of(c, gw, "/h", Some(("x-user", k))).await);
    }
    out
}

#[tokio::test]
async fn consistent_hash_on_header_is_sticky_and_minimally_disrupted() {
    let t = start_targets(4).await;
    let all: Vec<(&Upstream, usize)> = t.iter().map(|u| (u, 1)).collect();
    let gw4 = Gateway::start(&pool_config(HASH_HEADER, &all)).await;
    let c = client();
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let first = by_user(&c, &gw4, &keys).await;
    for round in 0..2 {
        let again = by_user(&c, &gw4, &keys).await;
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(first[i], again[i], "key {k} moved in round {round}");
        }
    }
    let mut per: HashMap<&str, usize> = HashMap::new();
    for f in &first {
        *per.entry(f.as_str()).or_default() += 1;
    }
    assert_eq!(per.len(), 4, "200 keys should reach all 4 targets: {per:?}");

    // The same pool without t3: only t3's keys may move.
    let gw3 = Gateway::start(&pool_config(HASH_HEADER, &all[..3])).await;
    let after = by_user(&c, &gw3, &keys).await;
    let mut moved = 0;
    for (i, k) in keys.iter().enumerate() {
        if first[i] == "t3" {
            assert_ne!(after[i], "t3");
            moved += 1;
        } else {
            assert_eq!(
                after[i], first[i],
                "key {k} moved although its target {} remains",
                first[i]
            );
        }
    }
    let frac = moved as f64 / keys.len() as f64;
    assert!((0.1..=0.45).contains(&frac), "moved fraction {frac}: {per:?}");
}

#[tokio::test]
async fn consistent_hash_on_cookie() {
    let t = start_targets(3).await;
    let all: Vec<(&Upstream, usize)> = t.iter().map(|u| (u, 1)).collect();
    let gw = Gateway::start(&pool_config(
        "    algorithm: consistent_hash\n    hash_on: cookie\n    hash_key: sid\n",
        &all,
    ))
    .await;
    let c = client();
    let mut seen = HashMap::new();
    for i in 0..60 {
        let cookie = format!("theme=dark; sid=session-{i}; lang=en");
        let first = target_of(&c, &gw, "/c", Some(("cookie", &cookie))).await;
        for _ in 0..2 {
            // Other cookies and the path do not matter; only `sid` does.
            let other = format!("sid=session-{i}; theme=light");
            assert_eq!(
                target_of(&c, &gw, &format!("/c/{i}"), Some(("cookie", &other))).await,
                first,
                "sid {i}"
            );
        }
        *seen.entry(first).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "60 sessions should reach all 3 targets: {seen:?}");
}

#[tokio::test]
async fn consistent_hash_on_path() {
    let t = start_targets(3).await;
    let all: Vec<(&Upstream, usize)> = t.iter().map(|u| (u, 1)).collect();
    let gw = Gateway::start(&pool_config(
        "    algorithm: consistent_hash\n    hash_on: path\n",
        &all,
    ))
    .await;
    let c = client();
    let mut seen = HashMap::new();
    for i in 0..60 {
        let path = format!("/objects/{i}");
        let first = target_of(&c, &gw, &path, None).await;
        for q in 0..2 {
            // The query string is not part of the path key.
            assert_eq!(
                target_of(&c, &gw, &format!("{path}?v={q}"), None).await,
                first,
                "{path}"
            );
        }
        *seen.entry(first).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "60 paths should reach all 3 targets: {seen:?}");
}

/// Behind a trusted load balancer, `hash_on: client_ip` hashes the client the
/// balancer forwarded for, not the balancer itself, and the access log of a
/// route without policies names the same client.
#[tokio::test]
async fn consistent_hash_on_client_ip_hashes_the_forwarded_client() {
    let t = start_targets(4).await;
    let all: Vec<(&Upstream, usize)> = t.iter().map(|u| (u, 1)).collect();
    let server = "server:\n  listeners:\n    - address: 127.0.0.1:${PORT}\n  threads: 2\n  \
                  trusted_proxies: [127.0.0.1]\n  access_log: {path: ${DIR}/access.log}\n  \
                  pid_file: ${DIR}/portico.pid\n  upgrade_sock: ${DIR}/upgrade.sock\n";
    let gw = Gateway::start(&format!(
        "{server}{}",
        pool_config("    algorithm: consistent_hash\n", &all)
    ))
    .await;
    let c = client();
    let clients: Vec<String> = (0..120).map(|i| format!("10.0.{}.{}", i / 200, i % 200 + 1)).collect();
    let mut first = Vec::new();
    for ip in &clients {
        first.push(target_of(&c, &gw, "/h", Some(("x-forwarded-for", ip))).await);
    }
    for (ip, target) in clients.iter().zip(&first).take(30) {
        assert_eq!(
            &target_of(&c, &gw, "/h", Some(("x-forwarded-for", ip))).await,
            target,
            "{ip} moved"
        );
    }
    let spread: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(
        spread.len(),
        4,
        "120 forwarded clients should reach all 4 targets: {first:?}"
    );

    let r = c
        .get(gw.url("/h"))
        .header("x-forwarded-for", "10.9.8.7")
        .header("x-request-id", "client-address-check")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let v = gw.access_log_line("client-address-check").await;
    assert_eq!(v["client_ip"], "10.9.8.7", "{v}");
}

#[tokio::test]
async fn least_conn_prefers_the_target_with_fewer_requests_in_flight() {
    let t = start_targets(2).await;
    let gw = Gateway::start(&pool_config("    algorithm: least_conn\n", &[(&t[0], 1), (&t[1], 1)])).await;
    // Five slow requests held open; an odd count means the split is never even.
    let mut slow = Vec::new();
    for _ in 0..5 {
        let url = gw.url("/delay/15000");
        slow.push(tokio::spawn(async move {
            client().get(url).send().await.map(|r| r.status())
        }));
    }
    wait_until(
        "5 slow requests reached the targets",
        Duration::from_secs(15),
        || async { t[0].hits() + t[1].hits() == 5 },
    )
    .await;
    let (slow0, slow1) = (t[0].hits(), t[1].hits());
    let (busy, idle) = if slow0 > slow1 { ("t0", "t1") } else { ("t1", "t0") };
    // Quick sequential requests all go to the target with fewer in flight.
    let c = client();
    let mut m: HashMap<String, usize> = HashMap::new();
    for i in 0..10 {
        *m.entry(target_of(&c, &gw, &format!("/quick/{i}"), None).await)
            .or_default() += 1;
    }
    assert_eq!(
        m.get(idle).copied().unwrap_or(0),
        10,
        "slow split t0={slow0} t1={slow1}, quick: {m:?}"
    );
    assert_eq!(m.get(busy).copied().unwrap_or(0), 0);
    for h in slow {
        h.abort();
    }
}
