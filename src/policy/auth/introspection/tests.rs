//! Tests for `introspection`, against a real HTTP introspection server on 127.0.0.1:0.

use super::*;
use crate::config::IntrospectionConfig;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

const CLIENT_ID: &str = "gateway";
const CLIENT_SECRET: &str = "s3cret:with/odd chars";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// What the test endpoint answers for a token: status, body, and a delay before answering.
type Handler = Arc<dyn Fn(&str) -> (u16, String, Duration) + Send + Sync>;

struct Endpoint {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Endpoint {
    /// Checks what RFC 7662 requires of the request (POST, form body, Basic auth) and answers
    /// 400/401 when it is wrong, so every test also checks the request format.
    async fn start(handler: Handler) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, counter) = (handler.clone(), counter.clone());
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (handler, counter) = (handler.clone(), counter.clone());
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let (status, body, delay) = answer(req, &*handler).await;
                        tokio::time::sleep(delay).await;
                        let mut resp = Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
            }
        });
        Endpoint { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(
    req: Request<Incoming>,
    handler: &(dyn Fn(&str) -> (u16, String, Duration) + Send + Sync),
) -> (u16, String, Duration) {
    let expected_auth = format!("Basic {}", STANDARD.encode("gateway:s3cret%3Awith%2Fodd+chars"));
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let form = req
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let post = req.method() == hyper::Method::POST;
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if auth.as_deref() != Some(expected_auth.as_str()) {
        return (401, r#"{"error":"invalid_client"}"#.into(), Duration::ZERO);
    }
    if !post || form.as_deref() != Some("application/x-www-form-urlencoded") {
        return (400, "bad request".into(), Duration::ZERO);
    }
    let params: HashMap<&str, &str> = std::str::from_utf8(&body)
        .unwrap()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .collect();
    if params.get("token_type_hint") != Some(&"access_token") {
        return (400, "no hint".into(), Duration::ZERO);
    }
    handler(params.get("token").copied().unwrap_or(""))
}

fn ok(body: Value) -> (u16, String, Duration) {
    (200, body.to_string(), Duration::ZERO)
}

/// Answers by token: "good" is active, "bob-client" is active with only `client_id`,
/// "short" expires in a second (each time it is asked), anything else is inactive.
fn standard_handler() -> Handler {
    Arc::new(|token| match token {
        "good" => ok(json!({"active": true, "sub": "alice", "scope": "read", "exp": now() + 3600.0})),
        "bob-client" => ok(json!({"active": true, "client_id": "bob"})),
        "short" => ok(json!({"active": true, "sub": "s", "exp": now() + 1.0})),
        "stale" => ok(json!({"active": true, "sub": "s", "exp": now() - 10.0})),
        _ => ok(json!({"active": false})),
    })
}

fn config(url: &str, extra: Value) -> IntrospectionConfig {
    std::env::set_var("PORTICO_TEST_INTROSPECT_SECRET", CLIENT_SECRET);
    let mut cfg = json!({
        "endpoint": url,
        "client_id": CLIENT_ID,
        "client_secret": {"env": "PORTICO_TEST_INTROSPECT_SECRET"},
    });
    cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(cfg).unwrap()
}

fn introspector(url: &str, extra: Value) -> Introspector {
    Introspector::new(&config(url, extra), Path::new(".")).unwrap()
}

#[test]
fn config_defaults_and_errors() {
    let cfg = config("https://idp/introspect", json!({}));
    assert_eq!(cfg.timeout.0, Duration::from_secs(3));
    assert_eq!(cfg.cache_ttl.0, Duration::from_secs(300));
    assert_eq!(cfg.negative_cache_ttl.0, Duration::from_secs(10));
    assert_eq!((cfg.cache_entries, cfg.max_token_bytes), (10_000, 8192));
    assert_eq!(
        (cfg.consumer_claim.as_str(), cfg.header.as_str()),
        ("sub", "authorization")
    );
    let bad = json!({"endpoint": "x", "client_id": "c", "client_secret": {"env": "X"}, "cache_size": 1});
    assert!(serde_json::from_value::<IntrospectionConfig>(bad).is_err());
    let err = |c: IntrospectionConfig| Introspector::new(&c, Path::new(".")).unwrap_err();
    assert!(err(config("not a url", json!({}))).starts_with("endpoint:"));
    assert!(err(config("ftp://idp/x", json!({}))).starts_with("endpoint:"));
    let mut c = config("https://idp/x", json!({}));
    c.client_secret.env = Some("PORTICO_TEST_INTROSPECT_UNSET".into());
    assert!(err(c).starts_with("client_secret:"));
    assert!(err(config("https://idp/x", json!({"cache_entries": 0}))).starts_with("cache_entries:"));
    assert!(err(config("https://idp/x", json!({"cache_ttl": "2days"}))).starts_with("cache_ttl"));
}

#[test]
fn debug_output_has_no_secret() {
    let i = introspector("https://idp/introspect", json!({}));
    let rendered = format!("{i:?}");
    assert!(
        !rendered.contains("s3cret") && !rendered.contains("Basic"),
        "{rendered}"
    );
}

#[test]
fn extract_bearer_and_custom_header() {
    let i = introspector("https://idp/x", json!({"max_token_bytes": 8}));
    assert_eq!(i.header_name(), "authorization");
    assert_eq!(i.extract(Some(b"Bearer abc")), Ok(Some("abc")));
    assert_eq!(i.extract(Some(b" bearer\tabc ")), Ok(Some("abc")));
    assert_eq!(i.extract(Some(b"Basic abc")), Ok(None));
    assert_eq!(i.extract(Some(b"Bearer")), Ok(None));
    assert_eq!(i.extract(Some(b"Bearer  ")), Ok(None));
    assert_eq!(i.extract(None), Ok(None));
    assert_eq!(i.extract(Some(b"Bearer 123456789")), Err(IntrospectError::TooLarge));
    assert_eq!(i.extract(Some(b"Bearer \xff")), Err(IntrospectError::Inactive));
    let i = introspector("https://idp/x", json!({"header": "X-Token"}));
    assert_eq!(i.header_name(), "x-token");
    assert_eq!(i.extract(Some(b" Bearer abc")), Ok(Some("Bearer abc")));
}

#[tokio::test]
async fn active_token_is_cached() {
    let ep = Endpoint::start(standard_handler()).await;
    let i = introspector(&ep.url, json!({}));
    let claims = i.introspect("good").await.unwrap();
    assert_eq!(claims["scope"], "read");
    assert_eq!(i.consumer_of(&claims), Some("alice"));
    assert_eq!(ep.hits(), 1);
    let again = i.introspect("good").await.unwrap();
    assert_eq!(again, claims);
    assert_eq!(ep.hits(), 1, "second lookup served from the cache");
}

#[tokio::test]
async fn consumer_falls_back_to_username_then_client_id() {
    let ep = Endpoint::start(standard_handler()).await;
    let i = introspector(&ep.url, json!({"consumer_claim": "email"}));
    let claims = i.introspect("bob-client").await.unwrap();
    assert_eq!(i.consumer_of(&claims), Some("bob"));
    let c = json!({"username": "u", "client_id": "c"});
    assert_eq!(i.consumer_of(c.as_object().unwrap()), Some("u"));
    let c = json!({"email": "e@x", "username": "u"});
    assert_eq!(i.consumer_of(c.as_object().unwrap()), Some("e@x"));
}

#[tokio::test]
async fn inactive_tokens_are_negatively_cached() {
    let ep = Endpoint::start(standard_handler()).await;
    let i = introspector(&ep.url, json!({"negative_cache_ttl": "1m"}));
    assert_eq!(i.introspect("revoked").await, Err(IntrospectError::Inactive));
    assert_eq!(i.introspect("revoked").await, Err(IntrospectError::Inactive));
    assert_eq!(ep.hits(), 1);
    assert_eq!(IntrospectError::Inactive.to_string(), "token is not active");
    // `active: true` with an `exp` already past is inactive too.
    assert_eq!(i.introspect("stale").await, Err(IntrospectError::Inactive));
}

#[tokio::test]
async fn expired_token_is_introspected_again() {
    let ep = Endpoint::start(standard_handler()).await;
    let i = introspector(&ep.url, json!({"cache_ttl": "1h"}));
    assert!(i.introspect("short").await.is_ok());
    assert_eq!(ep.hits(), 1);
    // The entry lives until the token's `exp` (about 1s), not for `cache_ttl`.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ep.hits() < 2 {
        assert!(Instant::now() < deadline, "the cached entry outlived the token's exp");
        assert!(i.introspect("short").await.is_ok());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn concurrent_lookups_share_one_request() {
    let handler: Handler = Arc::new(|_| {
        (
            200,
            json!({"active": true, "sub": "a"}).to_string(),
            Duration::from_millis(200),
        )
    });
    let ep = Endpoint::start(handler).await;
    let i = Arc::new(introspector(&ep.url, json!({})));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let i = i.clone();
            tokio::spawn(async move { i.introspect("same").await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(ep.hits(), 1);
}

#[tokio::test]
async fn endpoint_down_is_unavailable_and_not_cached() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let i = introspector(&url, json!({}));
    let err = i.introspect("good").await.unwrap_err();
    assert_eq!(err, IntrospectError::Unavailable("endpoint unreachable".into()));
    assert_eq!(err.to_string(), "token introspection unavailable: endpoint unreachable");
}

#[tokio::test]
async fn bad_responses_are_unavailable() {
    let handler: Handler = Arc::new(|token| match token {
        "garbage" => (200, "<html>oops</html>".into(), Duration::ZERO),
        "no-active" => ok(json!({"sub": "x"})),
        "array" => ok(json!([1, 2])),
        "error" => (500, "{}".into(), Duration::ZERO),
        "slow" => (200, json!({"active": true}).to_string(), Duration::from_secs(5)),
        _ => ok(json!({"active": true})),
    });
    let ep = Endpoint::start(handler).await;
    let i = introspector(&ep.url, json!({"timeout": "300ms"}));
    let invalid = IntrospectError::Unavailable("endpoint returned an invalid response".into());
    assert_eq!(i.introspect("garbage").await, Err(invalid.clone()));
    assert_eq!(i.introspect("no-active").await, Err(invalid.clone()));
    assert_eq!(i.introspect("array").await, Err(invalid));
    assert_eq!(
        i.introspect("error").await,
        Err(IntrospectError::Unavailable("endpoint returned HTTP 500".into()))
    );
    assert_eq!(
        i.introspect("slow").await,
        Err(IntrospectError::Unavailable("endpoint timed out".into()))
    );
    // Failures are not cached: the garbage token is asked about again.
    let before = ep.hits();
    let _ = i.introspect("garbage").await;
    assert_eq!(ep.hits(), before + 1);
}

#[tokio::test]
async fn wrong_client_secret_is_rejected_by_the_endpoint() {
    let ep = Endpoint::start(standard_handler()).await;
    std::env::set_var("PORTICO_TEST_INTROSPECT_WRONG", "not-the-secret");
    let mut cfg = config(&ep.url, json!({}));
    cfg.client_secret.env = Some("PORTICO_TEST_INTROSPECT_WRONG".into());
    let i = Introspector::new(&cfg, Path::new(".")).unwrap();
    let err = i.introspect("good").await.unwrap_err();
    assert_eq!(err, IntrospectError::Unavailable("endpoint returned HTTP 401".into()));
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn oversized_tokens_never_reach_the_endpoint() {
    let ep = Endpoint::start(standard_handler()).await;
    let i = introspector(&ep.url, json!({"max_token_bytes": 4}));
    assert_eq!(i.introspect("toolong").await, Err(IntrospectError::TooLarge));
    assert_eq!(ep.hits(), 0);
}

#[test]
fn form_encoding() {
    let mut s = String::new();
    form_encode("a b+c/d=é*-._~", &mut s);
    assert_eq!(s, "a+b%2Bc%2Fd%3D%C3%A9*-._%7E");
}

#[test]
fn introspector_is_send_sync_and_introspect_is_send() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let i = introspector("https://idp/x", json!({}));
    assert_send_sync(&i);
    assert_send(&i.introspect("t"));
}
