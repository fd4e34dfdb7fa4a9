//! Tests for `jwt::keys`: JWKS parsing, and fetch/refresh behaviour against a real
//! HTTP server on 127.0.0.1:0. Keys and token helpers come from `jwt::tests`.

use super::super::tests::*;
use super::super::{JwtError, JwtVerifier};
use super::*;

use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use serde_json::json;

#[test]
fn jwks_parsing_skips_bad_keys() {
    let doc = json!({"keys": [
        {"kty": "RSA", "kid": "r", "n": RSA_N, "e": RSA_E},
        {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": RSA_N, "e": RSA_E},
        {"kty": "EC", "kid": "e", "crv": "P-256", "x": EC_X, "y": EC_Y},
        {"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": ED_X},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": RSA_E},
        {"kty": "RSA", "kid": "confused", "alg": "HS256", "n": RSA_N, "e": RSA_E},
        {"kty": "RSA", "kid": "short", "n": "AQAB", "e": RSA_E},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": EC_X, "y": EC_Y},
        {"kty": "EC", "kid": "wrongcrv", "crv": "P-384", "x": EC_X, "y": EC_Y},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": "x", "crv": "X25519", "x": ED_X},
        {"kty": "RSA", "kid": "no-e", "n": RSA_N},
        "not an object",
    ]});
    let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
    let got: Vec<_> = keys.iter().map(|k| (k.kid.as_deref().unwrap(), k.alg)).collect();
    assert_eq!(
        got,
        [
            ("r", Algorithm::RS256),
            ("ps", Algorithm::PS256),
            ("e", Algorithm::ES256),
            ("o", Algorithm::EdDSA)
        ]
    );
    assert!(parse_jwks(b"{\"keys\": []}").is_err());
    assert!(parse_jwks(b"<html>").is_err());
}

/// A real HTTP server on 127.0.0.1:0 serving whatever `body` holds, counting requests.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
}

impl JwksServer {
    async fn start(body: Value) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body.to_string()));
        let (h, b) = (hits.clone(), body.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (h, b) = (h.clone(), b.clone());
                let svc = service_fn(move |_req: Request<Incoming>| {
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = b.lock().unwrap().clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
            }
        });
        JwksServer { url, hits, body }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn set(&self, body: Value) {
        *self.body.lock().unwrap() = body.to_string();
    }
}

fn rsa_jwk(kid: Option<&str>) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": RSA_N, "e": RSA_E})
}

fn ec_jwk(kid: &str) -> Value {
    json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": EC_X, "y": EC_Y})
}

fn jwks_verifier(url: &str, extra: Value) -> JwtVerifier {
    let mut cfg = json!({"jwks_url": url, "jwks_min_refresh": "1m"});
    cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    verifier(cfg)
}

#[tokio::test]
async fn jwks_keys_verify_and_unknown_kid_refetches_once() {
    let server =
        JwksServer::start(json!({"keys": [rsa_jwk(Some("k1")), {"kty": "OKP", "crv": "Ed25519", "x": ED_X}]})).await;
    let v = jwks_verifier(&server.url, json!({}));
    assert_eq!(v.jwks_url(), Some(server.url.as_str()));
    v.refresh_jwks().await.unwrap();
    assert_eq!(server.hits(), 1);
    assert!(v
        .verify(&sign(Algorithm::RS256, Some("k1"), &rsa(), &claims()))
        .await
        .is_ok());
    assert!(v.verify(&sign(Algorithm::RS256, None, &rsa(), &claims())).await.is_ok());
    // A JWKS key without a kid serves only tokens without a kid.
    assert!(v.verify(&sign(Algorithm::EdDSA, None, &ed(), &claims())).await.is_ok());
    assert_eq!(server.hits(), 1, "known keys need no fetch");

    let unknown = sign(Algorithm::EdDSA, Some("k9"), &ed(), &claims());
    assert_eq!(v.verify(&unknown).await, Err(JwtError::UnknownKid));
    assert_eq!(server.hits(), 2, "an unknown kid refetches");
    assert_eq!(v.verify(&unknown).await, Err(JwtError::UnknownKid));
    assert_eq!(server.hits(), 2, "but only once per jwks_min_refresh");
}

#[tokio::test]
async fn burst_of_unknown_kids_fetches_at_most_once() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let v = Arc::new(jwks_verifier(&server.url, json!({})));
    v.refresh_jwks().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let v = v.clone();
        let token = sign(Algorithm::RS256, Some(&format!("nope-{i}")), &rsa(), &claims());
        tasks.push(tokio::spawn(async move { v.verify(&token).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(JwtError::UnknownKid));
    }
    assert_eq!(server.hits(), 2, "startup fetch + one refetch for the whole burst");
}

#[tokio::test]
async fn first_use_fetches_lazily_and_concurrent_callers_share_it() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let v = Arc::new(jwks_verifier(&server.url, json!({})));
    let token = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (v, token) = (v.clone(), token.clone());
        tasks.push(tokio::spawn(async move { v.verify(&token).await }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn rotated_key_is_picked_up() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let v = jwks_verifier(&server.url, json!({}));
    v.refresh_jwks().await.unwrap();
    server.set(json!({"keys": [rsa_jwk(Some("k1")), ec_jwk("k2")]}));
    assert!(v
        .verify(&sign(Algorithm::ES256, Some("k2"), &ec(), &claims()))
        .await
        .is_ok());
    assert_eq!(server.hits(), 2);
    // k1 retired: tokens with it now fail, and the bad document below keeps the old keys.
    server.set(json!({"keys": [ec_jwk("k2")]}));
    v.refresh_jwks().await.unwrap();
    let k1 = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims());
    assert_eq!(v.verify(&k1).await, Err(JwtError::UnknownKid));
    server.set(json!({"oops": true}));
    assert!(v.refresh_jwks().await.is_err());
    assert!(v
        .verify(&sign(Algorithm::ES256, Some("k2"), &ec(), &claims()))
        .await
        .is_ok());
}

#[tokio::test]
async fn stale_keys_refresh_in_the_background() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let v = jwks_verifier(
        &server.url,
        json!({"jwks_refresh": "200ms", "jwks_min_refresh": "50ms"}),
    );
    v.refresh_jwks().await.unwrap();
    let token = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits() < 2 {
        assert!(Instant::now() < deadline, "no background refresh");
        // Requests keep succeeding with the current keys meanwhile.
        assert!(v.verify(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn jwks_server_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let v = jwks_verifier(&url, json!({}));
    assert!(v.refresh_jwks().await.is_err());
    let token = sign(Algorithm::RS256, Some("k1"), &rsa(), &claims());
    assert_eq!(v.verify(&token).await, Err(JwtError::KeysUnavailable));
    assert_eq!(v.verify(&token).await, Err(JwtError::KeysUnavailable));

    // Keys fetched once stay usable after the server goes away; unknown kids are just unknown.
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let v = jwks_verifier(&server.url, json!({"jwks_min_refresh": "1ms"}));
    v.refresh_jwks().await.unwrap();
    let moved = jwks_verifier(&url, json!({"jwks_min_refresh": "1ms"}));
    let fetched = v.jwks.as_ref().unwrap().keys.load_full();
    moved.jwks.as_ref().unwrap().keys.store(fetched);
    assert!(moved.verify(&token).await.is_ok());
    let unknown = sign(Algorithm::RS256, Some("k2"), &rsa(), &claims());
    assert_eq!(moved.verify(&unknown).await, Err(JwtError::UnknownKid));
}

#[tokio::test]
async fn inherit_keeps_keys_only_for_the_same_url() {
    let server = JwksServer::start(json!({"keys": [rsa_jwk(Some("k1"))]})).await;
    let old = jwks_verifier(&server.url, json!({}));
    old.refresh_jwks().await.unwrap();
    let new = jwks_verifier(&server.url, json!({"leeway": "1s"}));
    new.inherit(&old);
    assert!(new
        .verify(&sign(Algorithm::RS256, Some("k1"), &rsa(), &claims()))
        .await
        .is_ok());
    assert_eq!(server.hits(), 1, "no refetch after a reload");
    let other = jwks_verifier(&format!("{}?v=2", server.url), json!({}));
    other.inherit(&old);
    assert!(other.jwks.as_ref().unwrap().keys.load().fetched_at.is_none());
}
