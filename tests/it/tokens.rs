//! Bearer-token auth end to end: JWTs with static keys and a JWKS endpoint,
//! every refusal a JSON 401, and OAuth2 token introspection with caching.

use crate::support::*;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::{Arc, Mutex};

const SECRET: &str = "a-very-long-shared-secret-for-hs256-tests";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// An ES256 key pair: (signing key, public PEM, JWK).
fn es256_key(kid: &str) -> (EncodingKey, String, serde_json::Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let enc = EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap();
    let raw = kp.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                     "x": b64(&raw[1..33]), "y": b64(&raw[33..65])});
    (enc, kp.public_key_pem(), jwk)
}

fn es256(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.to_string());
    encode(&h, &claims, key).unwrap()
}

async fn status_of(gw: &Gateway, token: &str) -> (u16, serde_json::Value) {
    let r = client().get(gw.url("/x")).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 401 {
        let (h, v) = expect_error(r, 401, "unauthorized").await;
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        return (401, v);
    }
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn jwt_with_static_keys_and_every_refusal() {
    let up = Upstream::start("a").await;
    let secrets = temp_dir("jwt");
    std::fs::write(secrets.join("hs.secret"), SECRET).unwrap();
    let (es_key, es_pem, _) = es256_key("k1");
    std::fs::write(secrets.join("es.pem"), &es_pem).unwrap();
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
consumers:\n  - name: alice\n    credentials:\n      subjects: [user-1]\n\
routes:\n  - name: r\n    upstream: a\n    policies:\n      - jwt:\n          keys:\n            - {{alg: HS256, secret: {{file: {}}}}}\n            - {{kid: k1, alg: ES256, public_key_file: {}}}\n          issuers: [https://idp.example]\n          audiences: [portico]\n          leeway: 5s\n",
        up.addr,
        secrets.join("hs.secret").display(),
        secrets.join("es.pem").display()
    );
    let gw = Gateway::start(&yaml).await;
    let good = json!({"sub": "user-1", "iss": "https://idp.example", "aud": "portico", "exp": now() + 300});

    // Valid tokens: the subject maps to alice; the token is not passed on.
    let (s, v) = status_of(&gw, &hs256(good.clone())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["headers"]["x-consumer"], "alice");
    assert!(v["headers"].get("authorization").is_none());
    let (s, v) = status_of(&gw, &es256(&es_key, "k1", good.clone())).await;
    assert_eq!(s, 200, "{v}");
    // A subject with no consumer is still an identity.
    let mut other = good.clone();
    other["sub"] = json!("someone");
    let (_, v) = status_of(&gw, &hs256(other)).await;
    assert_eq!(v["headers"]["x-consumer"], "someone");

    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        hs256(c)
    };
    let refusals = [
        (with("exp", json!(now() - 60)), "expired"),
        (with("nbf", json!(now() + 600)), "not yet valid"),
        (with("aud", json!("other")), "audience"),
        (with("iss", json!("https://evil.example")), "issuer"),
        ("garbage".to_string(), "malformed"),
        ("a.b.c".to_string(), "malformed"),
        (format!("{}x", hs256(good.clone())), "signature"),
        ("x".repeat(10_000), "too large"),
    ];
    for (token, want) in refusals {
        let (s, v) = status_of(&gw, &token).await;
        assert_eq!(s, 401);
        let msg = v["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(want), "want {want:?} in {msg:?}");
    }
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(status_of(&gw, &hs256(no_exp)).await.0, 401);

    // alg=none, with and without a signature.
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(good.to_string().as_bytes());
    assert_eq!(status_of(&gw, &format!("{header}.{payload}.")).await.0, 401);
    assert_eq!(status_of(&gw, &format!("{header}.{payload}.c2ln")).await.0, 401);
    // Key confusion: HS256 signed with the ES256 public key as the secret, naming kid k1.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let forged = encode(&h, &good, &EncodingKey::from_secret(es_pem.as_bytes())).unwrap();
    assert_eq!(status_of(&gw, &forged).await.0, 401);
    // An unknown kid.
    assert_eq!(status_of(&gw, &es256(&es_key, "k9", good.clone())).await.0, 401);
    // No token, and a token in a non-Bearer scheme.
    expect_error(client().get(gw.url("/x")).send().await.unwrap(), 401, "unauthorized").await;
    let r = client()
        .get(gw.url("/x"))
        .header("authorization", "Token abc")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    assert_eq!(up.hits(), 3, "only the three valid tokens reached the upstream");
}

#[tokio::test]
async fn jwks_keys_are_fetched_refetched_on_unknown_kid_and_rate_limited() {
    let up = Upstream::start("a").await;
    let (k1, _, jwk1) = es256_key("k1");
    let (k2, _, jwk2) = es256_key("k2");
    let doc = Arc::new(Mutex::new(json!({"keys": [jwk1]}).to_string()));
    let d = doc.clone();
    let jwks = FnServer::start(move |_, _, _| (200, d.lock().unwrap().clone())).await;
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
routes:\n  - name: r\n    upstream: a\n    policies:\n      - jwt: {{jwks_url: 'http://{}/jwks.json', jwks_min_refresh: 1s, require_exp: false}}\n",
        up.addr, jwks.addr
    );
    let gw = Gateway::start(&yaml).await;
    let claims = json!({"sub": "svc"});
    assert_eq!(status_of(&gw, &es256(&k1, "k1", claims.clone())).await.0, 200);
    assert_eq!(jwks.hits(), 1);
    assert_eq!(status_of(&gw, &es256(&k1, "k1", claims.clone())).await.0, 200);
    assert_eq!(jwks.hits(), 1, "keys are cached");
    // The IdP rotates to k2: an unknown kid refetches, at most once a second.
    *doc.lock().unwrap() = json!({"keys": [jwk2]}).to_string();
    let token = es256(&k2, "k2", claims.clone());
    let gw_ref = &gw;
    wait_until("rotated key accepted", std::time::Duration::from_secs(15), || {
        let token = token.clone();
        async move { status_of(gw_ref, &token).await.0 == 200 }
    })
    .await;
    assert_eq!(jwks.hits(), 2, "one refetch picked up the new key");
    // A burst of unknown kids does not hammer the IdP: at most one more fetch.
    for i in 0..20 {
        let (k, _, _) = es256_key("x");
        assert_eq!(
            status_of(&gw, &es256(&k, &format!("unknown-{i}"), claims.clone()))
                .await
                .0,
            401
        );
    }
    assert!(jwks.hits() <= 3, "{} fetches", jwks.hits());
    // The old key is gone after the rotation.
    assert_eq!(status_of(&gw, &es256(&k1, "k1", claims.clone())).await.0, 401);
}

#[tokio::test]
async fn oauth2_introspection_identifies_and_caches() {
    let up = Upstream::start("a").await;
    let endpoint = FnServer::start(|method, _, body| {
        let body = String::from_utf8_lossy(body);
        if method != "POST" {
            return (405, "{}".into());
        }
        if body.contains("token=good") {
            (
                200,
                json!({"active": true, "sub": "user-1", "exp": now() + 600}).to_string(),
            )
        } else if body.contains("token=broken") {
            (200, "not json".into())
        } else {
            (200, json!({"active": false}).to_string())
        }
    })
    .await;
    let secrets = temp_dir("introspect");
    std::fs::write(secrets.join("client.secret"), "s3cret").unwrap();
    let yaml = format!(
        "upstreams:\n  a:\n    targets:\n      - address: {}\n\
consumers:\n  - name: alice\n    credentials:\n      subjects: [user-1]\n\
routes:\n  - name: r\n    upstream: a\n    policies:\n      - oauth2_introspection:\n          endpoint: http://{}/introspect\n          client_id: portico\n          client_secret: {{file: {}}}\n",
        up.addr,
        endpoint.addr,
        secrets.join("client.secret").display()
    );
    let gw = Gateway::start(&yaml).await;
    for _ in 0..3 {
        let (s, v) = status_of(&gw, "good").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["headers"]["x-consumer"], "alice");
    }
    assert_eq!(endpoint.hits(), 1, "an active token is cached");
    let (s, v) = status_of(&gw, "revoked").await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("not active"), "{v}");
    // The endpoint answering garbage is the IdP's failure: 503, not a panic or a pass.
    let r = client().get(gw.url("/x")).bearer_auth("broken").send().await.unwrap();
    expect_error(r, 503, "dependency_unavailable").await;
    assert_eq!(up.hits(), 3);
}
