//! Auth policies end to end: API keys, Basic, consumer groups (acl), the
//! consumer header, credential hiding, and revocation by reload.

use crate::support::*;
use sha2::Digest;

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Upstream `a`, consumers alice (admins, key from a file) and bob (users,
/// key given as a digest), and routes guarded by key_auth (+ acl).
fn key_config(addr: std::net::SocketAddr, key_file: &std::path::Path) -> String {
    format!(
        "upstreams:\n  a:\n    targets:\n      - address: {addr}\n\
consumers:\n\
\x20 - name: alice\n    groups: [admins]\n    credentials:\n      api_keys:\n        - file: {}\n\
\x20 - name: bob\n    groups: [users]\n    credentials:\n      api_keys:\n        - sha256: {}\n\
routes:\n\
\x20 - name: admin\n    paths: [/admin/*]\n    upstream: a\n    policies:\n      - key_auth: {{query: api_key}}\n      - acl: {{allow: [admins]}}\n\
\x20 - name: keyed\n    paths: [/keyed/*]\n    upstream: a\n    policies:\n      - key_auth: {{query: api_key, hide_credentials: false}}\n\
\x20 - name: open\n    paths: [/*]\n    upstream: a\n",
        key_file.display(),
        sha256_hex("bob-key")
    )
}

#[tokio::test]
async fn api_keys_identify_consumers_and_acl_checks_groups() {
    let up = Upstream::start("a").await;
    let keys = temp_dir("keys");
    let key_file = keys.join("alice.key");
    std::fs::write(&key_file, "alice-key\n").unwrap();
    let gw = Gateway::start(&key_config(up.addr, &key_file)).await;
    let c = client();

    // Missing, wrong, duplicated and ambiguous keys: 401 JSON.
    expect_error(c.get(gw.url("/admin/x")).send().await.unwrap(), 401, "unauthorized").await;
    let (_, v) = expect_error(
        c.get(gw.url("/admin/x"))
            .header("x-api-key", "nope")
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(v["error"]["message"], "invalid API key");
    let (_, v) = expect_error(
        c.get(gw.url("/admin/x?api_key=alice-key"))
            .header("x-api-key", "alice-key")
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("both header and query"),
        "{v}"
    );
    expect_error(
        c.get(gw.url("/admin/x?api_key=alice-key&api_key=alice-key"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(up.hits(), 0, "no refused request reached the upstream");

    // alice (admins) passes; the key is removed and the consumer named upstream.
    let r = c.get(gw.url("/admin/x?api_key=alice-key&y=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["query"], "y=1", "the key is stripped from the query: {v}");
    assert_eq!(v["headers"]["x-consumer"], "alice");
    let r = c
        .get(gw.url("/admin/x"))
        .header("x-api-key", "alice-key")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["headers"].get("x-api-key").is_none(), "header key hidden: {v}");

    // bob is identified but not an admin: 403.
    let (_, v) = expect_error(
        c.get(gw.url("/admin/x"))
            .header("x-api-key", "bob-key")
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("bob"), "{v}");

    // hide_credentials: false passes the key on.
    let r = c
        .get(gw.url("/keyed/x"))
        .header("x-api-key", "bob-key")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-api-key"], "bob-key");
    assert_eq!(v["headers"]["x-consumer"], "bob");

    // A client cannot name itself: its x-consumer is removed everywhere.
    let r = c
        .get(gw.url("/open"))
        .header("x-consumer", "alice")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["headers"].get("x-consumer").is_none(), "{v}");
    let r = c
        .get(gw.url("/keyed/x"))
        .header("x-api-key", "bob-key")
        .header("x-consumer", "alice")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-consumer"], "bob", "{v}");

    // The access log names the consumer.
    let log_path = gw.dir.join("access.log");
    wait_until("access log has alice", std::time::Duration::from_secs(10), || {
        let p = log_path.clone();
        async move {
            std::fs::read_to_string(&p)
                .unwrap_or_default()
                .contains("\"consumer\":\"alice\"")
        }
    })
    .await;
}

#[tokio::test]
async fn a_key_rotated_in_its_file_is_revoked_by_reload() {
    let up = Upstream::start("a").await;
    let keys = temp_dir("keys");
    let key_file = keys.join("alice.key");
    std::fs::write(&key_file, "old-key").unwrap();
    let gw = Gateway::start(&key_config(up.addr, &key_file)).await;
    let c = client();
    let get = |key: &'static str| c.get(gw.url("/admin/x")).header("x-api-key", key).send();
    assert_eq!(get("old-key").await.unwrap().status(), 200);
    std::fs::write(&key_file, "new-key").unwrap();
    reload_and_wait(&gw, 1).await;
    expect_error(get("old-key").await.unwrap(), 401, "unauthorized").await;
    assert_eq!(get("new-key").await.unwrap().status(), 200);
}

#[tokio::test]
async fn basic_auth_with_bcrypt_and_argon2() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let up = Upstream::start("a").await;
    let bcrypt_hash = bcrypt::hash("pw-carol", 4).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let argon_hash = argon2::Argon2::default()
        .hash_password(b"pw-dave", &salt)
        .unwrap()
        .to_string();
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
consumers:\n\
\x20 - name: carol\n    credentials:\n      basic: {{password_hash: '{bcrypt_hash}'}}\n\
\x20 - name: dave\n    credentials:\n      basic: {{username: d, password_hash: '{argon_hash}'}}\n\
routes:\n  - name: basic\n    upstream: a\n    policies:\n      - basic_auth: {{realm: shop}}\n",
        up.addr
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let (h, _) = expect_error(c.get(gw.url("/x")).send().await.unwrap(), 401, "unauthorized").await;
    assert_eq!(h["www-authenticate"], "Basic realm=\"shop\"");
    for _ in 0..2 {
        // The second round is served from the verified-login cache.
        let r = c
            .get(gw.url("/x"))
            .basic_auth("carol", Some("pw-carol"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["headers"]["x-consumer"], "carol");
        assert!(v["headers"].get("authorization").is_none(), "credentials hidden: {v}");
    }
    let r = c
        .get(gw.url("/x"))
        .basic_auth("d", Some("pw-dave"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-consumer"], "dave");
    for (user, pw) in [("carol", "wrong"), ("d", "pw-carol"), ("nobody", "x")] {
        let r = c.get(gw.url("/x")).basic_auth(user, Some(pw)).send().await.unwrap();
        expect_error(r, 401, "unauthorized").await;
    }
    for garbage in ["Basic !!!", "Basic", "Basic bm9jb2xvbg==", "Bearer x"] {
        let r = c
            .get(gw.url("/x"))
            .header("authorization", garbage)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "unauthorized").await;
    }
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn optional_key_then_acl_needs_someone() {
    let up = Upstream::start("a").await;
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
consumers:\n  - name: erin\n    groups: [staff]\n    credentials:\n      api_keys: [{{sha256: {}}}]\n\
routes:\n  - name: r\n    upstream: a\n    policies:\n      - key_auth: {{optional: true}}\n      - acl: {{deny: [blocked]}}\n",
        up.addr,
        sha256_hex("erin-key")
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    expect_error(c.get(gw.url("/x")).send().await.unwrap(), 401, "unauthorized").await;
    expect_error(
        c.get(gw.url("/x")).header("x-api-key", "bad").send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let r = c
        .get(gw.url("/x"))
        .header("x-api-key", "erin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `key_auth: {scheme: bearer}` takes `Authorization: Bearer KEY`, the scheme
/// in any case (RFC 6750), as the OpenAI SDK sends `api_key`; the header is
/// removed before proxying.
#[tokio::test]
async fn key_auth_with_the_bearer_scheme() {
    let up = Upstream::start("a").await;
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\nconsumers:\n  - name: bob\n    credentials:\n      \
         api_keys:\n        - sha256: {}\nroutes:\n  - name: r\n    upstream: a\n    policies:\n      \
         - key_auth: {{scheme: bearer}}\n",
        up.addr,
        sha256_hex("bob-key")
    );
    let gw = Gateway::start(&yaml).await;
    let c = client();
    for value in ["Bearer bob-key", "bearer bob-key", "BEARER  bob-key "] {
        let r = c.get(gw.url("/x")).header("authorization", value).send().await.unwrap();
        assert_eq!(r.status(), 200, "{value:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["headers"].get("authorization").is_none(),
            "the key was forwarded: {v}"
        );
    }
    // Another scheme, and a key of nobody's.
    for value in ["Basic bob-key", "Bearer alice-key"] {
        let r = c.get(gw.url("/x")).header("authorization", value).send().await.unwrap();
        expect_error(r, 401, "unauthorized").await;
    }
    let r = c.get(gw.url("/x")).header("x-api-key", "bob-key").send().await.unwrap();
    expect_error(r, 401, "unauthorized").await;
}
