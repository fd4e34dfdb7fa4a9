//! Services, applications and subscriptions on the data plane: a service
//! with `subscription: manual` lets an application through only with an
//! approved subscription, and every refusal says why in the JSON error
//! shape (`not_subscribed`, `subscription_pending`, `credential_expired`).

use crate::support::*;
use sha2::Digest;

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Upstream `a`; service `pay` (manual) with route `/pay`, service `open`
/// (none) with route `/open`; applications of team shop in every state.
fn services_config(addr: std::net::SocketAddr) -> String {
    let key = |k: &str| sha256_hex(k);
    format!(
        "upstreams:\n  a:\n    targets:\n      - address: {addr}\n\
services:\n  - name: pay\n    team: payments\n    subscription: manual\n  - name: open\n    team: payments\n\
routes:\n  - name: pay\n    service: pay\n    paths: [/pay]\n    upstream: a\n    policies:\n      - key_auth: {{}}\n\
\x20 - name: open\n    service: open\n    paths: [/open]\n    upstream: a\n    policies:\n      - key_auth: {{}}\n\
consumers:\n\
\x20 - name: shop\n    team: shop\n    credentials:\n      api_keys:\n        - {{id: main, sha256: {}}}\n\
\x20       - {{id: old, sha256: {}, expires_at: '2020-01-01T00:00:00Z'}}\n        - {{id: next, sha256: {}, expires_at: '2099-01-01T00:00:00Z'}}\n\
\x20 - name: waiting\n    team: shop\n    credentials:\n      api_keys:\n        - sha256: {}\n\
\x20 - name: refused\n    team: shop\n    credentials:\n      api_keys:\n        - sha256: {}\n\
\x20 - name: stranger\n    credentials:\n      api_keys:\n        - sha256: {}\n\
subscriptions:\n\
\x20 - {{application: shop, service: pay, status: approved, requested_by: ann, decided_by: bob}}\n\
\x20 - {{application: waiting, service: pay, status: pending, reason: 'month-end reports'}}\n\
\x20 - {{application: refused, service: pay, status: rejected}}\n",
        key("k-shop"),
        key("k-old"),
        key("k-next"),
        key("k-wait"),
        key("k-refused"),
        key("k-stranger"),
    )
}

#[tokio::test]
async fn a_manual_service_serves_only_approved_subscribers_and_says_why() {
    let up = Upstream::start("pay").await;
    let gw = Gateway::start(&services_config(up.addr)).await;
    let c = client();
    let call = |path: &str, key: Option<&str>| {
        let mut r = c.get(gw.url(path));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.send()
    };
    for key in ["k-shop", "k-next"] {
        let r = call("/pay", Some(key)).await.unwrap();
        assert_eq!(r.status(), 200, "{key}: {}", gw.log());
    }
    let (_, v) = expect_error(call("/pay", Some("k-wait")).await.unwrap(), 403, "subscription_pending").await;
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("\"waiting\"") && m.contains("\"pay\""), "{m}");
    for (key, word) in [("k-refused", "rejected"), ("k-stranger", "not subscribed")] {
        let (_, v) = expect_error(call("/pay", Some(key)).await.unwrap(), 403, "not_subscribed").await;
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(word) && m.contains("\"pay\""), "{m}");
    }
    let (_, v) = expect_error(call("/pay", Some("k-old")).await.unwrap(), 401, "credential_expired").await;
    assert!(v["error"]["message"].as_str().unwrap().contains("2020-01-01"), "{v}");
    // The expired key is refused on every route, subscription or not.
    expect_error(call("/open", Some("k-old")).await.unwrap(), 401, "credential_expired").await;
    expect_error(call("/pay", None).await.unwrap(), 401, "unauthorized").await;
    // A service without a subscription rule serves every identified caller.
    for key in ["k-stranger", "k-wait", "k-refused"] {
        assert_eq!(call("/open", Some(key)).await.unwrap().status(), 200, "{key}");
    }
    assert_eq!(up.hits(), 5, "refused calls never reached the upstream");
}

#[tokio::test]
async fn services_and_subscriptions_that_do_not_resolve_are_refused_with_their_place() {
    let dir = temp_dir("services-check");
    let file = dir.join("p.yaml");
    let text = "upstreams:\n  a:\n    targets:\n      - address: 127.0.0.1:1\n\
services:\n  - name: pay\n    subscription: manual\n  - name: pay\n  - name: 'bad name'\n\
routes:\n  - name: r\n    service: pay\n    upstream: a\n  - name: s\n    service: nope\n    upstream: a\n\
consumers:\n  - name: c\n    credentials:\n      api_keys:\n        - {sha256: 00, expires_at: soon}\n\
subscriptions:\n  - {application: ghost, service: pay}\n  - {application: c, service: gone, requested_at: yesterday}\n";
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(portico_bin())
        .args(["check", "-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for expected in [
        "services[1].name: a second service named \"pay\"",
        "services[2].name: use 1 to 128",
        "routes[0].service: service \"pay\" needs a subscription, so this route needs an auth policy",
        "routes[1].service: no service named \"nope\"",
        "subscriptions[0].application: no consumer (application) named \"ghost\"",
        "subscriptions[1].service: no service named \"gone\"",
        "subscriptions[1].requested_at: \"yesterday\" is not an RFC 3339 time",
        "consumers[0].credentials.api_keys[0].expires_at: \"soon\" is not an RFC 3339 time",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
