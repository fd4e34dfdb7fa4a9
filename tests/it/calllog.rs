//! The call log end to end, in store mode (where it is on by default):
//! every proxied, refused, unrouted and AI call appears once with its
//! fields; captured headers and bodies are redacted; no secret reaches the
//! database file; the admin API's queries, exports and analytics answer
//! from it, and a team's token sees only its team's calls.

use crate::management::{store_gateway, token_for, Admin};
use crate::support::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

const APP_KEY: &str = "shop-secret-key-0001";
const PROVIDER_KEY: &str = "sk-provider-secret-0002";
const PASSWORD: &str = "hunter2-secret-0003";

async fn provider() -> FnServer {
    FnServer::start(|_, _, body| {
        if String::from_utf8_lossy(body).contains(r#""stream":true"#) {
            let chunk = |delta: Value, usage: Value| {
                let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}], "usage": usage});
                format!("data: {c}\n\n")
            };
            let usage = json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9});
            let text =
                chunk(json!({"content": "streamed hi"}), Value::Null) + &chunk(json!({}), usage) + "data: [DONE]\n\n";
            return (200, text);
        }
        (200, chat_completion("m-2025-01-01", 10, 5))
    })
    .await
}

/// Payments owns `pay` (captured, `password` redacted); shop owns
/// `shop-app` (one key); an AI route for anyone with a key.
fn config(upstream: std::net::SocketAddr, provider: &FnServer, key_file: &std::path::Path) -> Value {
    let digest = hex::encode(Sha256::digest(APP_KEY.as_bytes()));
    json!({
        "upstreams": {"a": {"targets": [{"address": upstream.to_string()}]}},
        "services": [{"name": "pay", "team": "payments", "call_log": {
            "capture": {"max_body": "1KiB", "redact_fields": ["password"]}}}],
        "consumers": [{"name": "shop-app", "team": "shop",
            "credentials": {"api_keys": [{"id": "shop-key-1", "sha256": digest}]}}],
        "ai": {"providers": {"oai": {"kind": "openai", "base_url": format!("http://{}/v1", provider.addr),
                "keys": [{"file": key_file.display().to_string()}]}},
               "prices": {"oai/m": {"input": 1.0, "output": 2.0}}},
        "routes": [
            {"name": "pay", "service": "pay", "paths": ["/pay/*"], "upstream": "a",
             "policies": [{"key_auth": {}}]},
            {"name": "llm", "paths": ["/v1/*"], "ai": {}, "policies": [{"key_auth": {}}],
             "call_log": {"capture": {"headers": false}}}
        ]
    })
}

async fn send(gw: &Gateway, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = client().request(m, gw.url(path));
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let _ = resp.bytes().await;
    (status, id)
}

/// Every call of the log, by request id, once every id in `ids` is there.
async fn logged(admin: &Admin, ids: &[String]) -> BTreeMap<String, Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = admin.expect("GET", "/logs?limit=1000", None, 200).await;
        let mut out = BTreeMap::new();
        for item in v["items"].as_array().unwrap() {
            let id = item["request_id"].as_str().unwrap().to_string();
            assert!(
                out.insert(id.clone(), item.clone()).is_none(),
                "{id} is in the log twice"
            );
        }
        if ids.iter().all(|id| out.contains_key(id)) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every call reached the log: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_call_is_recorded_once_with_its_fields_and_no_secret() {
    let upstream = Upstream::start("a").await;
    let provider = provider().await;
    let (gw, token, dir) = store_gateway().await;
    let key_file = dir.join("provider.key");
    std::fs::write(&key_file, PROVIDER_KEY).unwrap();
    let admin = Admin::new(&gw, &token);
    for team in ["payments", "shop"] {
        admin
            .expect("PUT", &format!("/teams/{team}"), Some(json!({})), 200)
            .await;
    }
    admin
        .expect(
            "POST",
            "/config",
            Some(config(upstream.addr, &provider, &key_file)),
            200,
        )
        .await;

    let mut ids = Vec::new();
    let mut expect = |got: (u16, String), status: u16| {
        assert_eq!(got.0, status);
        ids.push(got.1.clone());
        got.1
    };
    for _ in 0..5 {
        expect(send(&gw, "GET", "/pay/charges", Some(APP_KEY), None).await, 200);
    }
    let login_body = json!({"user": "ann", "password": PASSWORD});
    let login = expect(
        send(&gw, "POST", "/pay/login", Some(APP_KEY), Some(login_body)).await,
        200,
    );
    let refused = expect(send(&gw, "GET", "/pay/charges", Some("wrong-key"), None).await, 401);
    expect(send(&gw, "GET", "/pay/charges", None, None).await, 401);
    let unrouted = expect(send(&gw, "GET", "/nowhere", None, None).await, 404);
    let chat = json!({"model": "oai/m", "messages": [{"role": "user", "content": "hello"}]});
    let ai = expect(
        send(&gw, "POST", "/v1/chat/completions", Some(APP_KEY), Some(chat.clone())).await,
        200,
    );
    expect(
        send(&gw, "POST", "/v1/chat/completions", Some(APP_KEY), Some(chat)).await,
        200,
    );
    let streamed = json!({"model": "oai/m", "stream": true, "messages": [{"role": "user", "content": "hello"}]});
    let stream = expect(
        send(&gw, "POST", "/v1/chat/completions", Some(APP_KEY), Some(streamed)).await,
        200,
    );

    let log = logged(&admin, &ids).await;
    assert_eq!(log.len(), ids.len(), "only these calls were made: {log:?}");

    let pay = &log[&ids[0]];
    for (field, want) in [
        ("method", json!("GET")),
        ("path", json!("/pay/charges")),
        ("route", json!("pay")),
        ("service", json!("pay")),
        ("service_team", json!("payments")),
        ("application", json!("shop-app")),
        ("team", json!("shop")),
        ("credential", json!("shop-key-1")),
        ("upstream", json!("a")),
        ("target", json!(upstream.addr.to_string())),
        ("status", json!(200)),
        ("client_ip", json!("127.0.0.1")),
        ("retries", json!(0)),
    ] {
        assert_eq!(pay[field], want, "{field}: {pay}");
    }
    assert!(pay["bytes_out"].as_i64().unwrap() > 0);
    assert!(pay["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(pay["upstream_ms"].as_f64().is_some());

    let no = &log[&refused];
    assert_eq!(
        (no["status"].clone(), no["error"].clone()),
        (json!(401), json!("unauthorized"))
    );
    assert_eq!(no["application"], Value::Null);
    let lost = &log[&unrouted];
    assert_eq!((lost["status"].clone(), lost["route"].clone()), (json!(404), json!("")));

    let call = &log[&ai];
    assert_eq!(call["provider"], "oai");
    assert_eq!(call["model"], "oai/m");
    assert_eq!(call["model_answered"], "m");
    assert_eq!(
        (call["input_tokens"].clone(), call["output_tokens"].clone()),
        (json!(10), json!(5))
    );
    assert!(
        (call["cost_usd"].as_f64().unwrap() - (10.0 * 1.0 + 5.0 * 2.0) / 1e6).abs() < 1e-12,
        "{call}"
    );
    assert_eq!(call["usage_estimated"], false);

    // The captured login: its key header and its password are redacted.
    let detail = admin.expect("GET", &format!("/logs/{login}"), None, 200).await;
    let captured = &detail["detail"];
    let body = captured["request_body"].as_str().unwrap();
    assert!(
        body.contains(r#""user":"ann""#) && body.contains("[REDACTED]"),
        "{body}"
    );
    let headers = captured["request_headers"].to_string();
    assert!(headers.contains("x-api-key") && !headers.contains(APP_KEY), "{headers}");
    assert!(captured["response_body"].as_str().is_some(), "{captured}");
    // An AI route captures the prompt as sent and the answer as written
    // (here without headers).
    let prompt = admin.expect("GET", &format!("/logs/{ai}"), None, 200).await;
    let body = prompt["detail"]["request_body"].as_str().unwrap();
    assert!(body.contains("hello") && body.contains("oai/m"), "{prompt}");
    let answer = prompt["detail"]["response_body"].as_str().unwrap();
    assert!(
        answer.contains("chat.completion") && answer.contains(r#""content":"hi""#),
        "{prompt}"
    );
    let streamed = admin.expect("GET", &format!("/logs/{stream}"), None, 200).await;
    let events = streamed["detail"]["response_body"].as_str().unwrap();
    assert!(
        events.starts_with("data: ") && events.contains("streamed hi"),
        "{streamed}"
    );
    assert_eq!(
        (streamed["input_tokens"].clone(), streamed["output_tokens"].clone()),
        (json!(7), json!(2))
    );
    assert!(prompt["detail"].get("request_headers").is_none(), "{prompt}");
    // Unrouted calls capture nothing.
    let plain = admin.expect("GET", &format!("/logs/{unrouted}"), None, 200).await;
    assert!(plain.get("detail").is_none(), "{plain}");
    admin.expect("GET", "/logs/no-such-request", None, 404).await;

    // No secret reaches the database, its WAL included.
    for file in ["calls.db", "calls.db-wal"] {
        let bytes = std::fs::read(dir.join("state").join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [APP_KEY, PROVIDER_KEY, PASSWORD] {
            assert!(!text.contains(secret), "{secret} is in {file}");
        }
    }
    let metric = gw.metric("portico_call_log_dropped_total").await;
    assert_eq!(metric, Some(0.0));

    exports_and_analytics(&admin, &ids).await;
    teams_see_their_own(&admin, &log).await;
}

async fn exports_and_analytics(admin: &Admin, ids: &[String]) {
    let csv = admin.raw("/logs?format=csv&limit=1000").await;
    assert_eq!(csv.headers()["content-type"], "text/csv");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("time,request_id,"), "{text}");
    assert_eq!(text.lines().count(), ids.len() + 1);
    let nd = admin.raw("/logs?format=ndjson&limit=3").await;
    assert!(nd.headers().contains_key("x-next-cursor"));
    let text = nd.text().await.unwrap();
    assert_eq!(text.lines().count(), 3);
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    let filtered = admin.expect("GET", "/logs?class=4xx", None, 200).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 3);
    admin.expect("GET", "/logs?class=9xx", None, 400).await;
    admin.expect("GET", "/logs?from=yesterday", None, 400).await;
    admin.expect("GET", "/logs?cursor=nope", None, 400).await;

    // The rollups count every call.
    let total = ids.len() as i64;
    wait_until("the rollups", Duration::from_secs(10), || async {
        admin.expect("GET", "/analytics/summary", None, 200).await["requests"] == json!(total)
    })
    .await;
    let s = admin.expect("GET", "/analytics/summary", None, 200).await;
    assert_eq!((s["status_4xx"].clone(), s["status_2xx"].clone()), (json!(3), json!(9)));
    assert_eq!(
        (s["input_tokens"].clone(), s["output_tokens"].clone()),
        (json!(27), json!(12))
    );
    let top = admin
        .expect("GET", "/analytics/top?by=route&metric=requests", None, 200)
        .await;
    assert_eq!(top["items"][0]["name"], "pay");
    assert_eq!(top["items"][0]["requests"], 8);
    let series = admin.expect("GET", "/analytics/timeseries", None, 200).await;
    let sum: i64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, total);
    let usage = admin.expect("GET", "/analytics/usage?period=month", None, 200).await;
    let shop = usage
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["application"] == "shop-app")
        .unwrap()
        .clone();
    assert_eq!(
        (shop["requests"].clone(), shop["input_tokens"].clone()),
        (json!(9), json!(27))
    );
    let csv = admin
        .raw("/analytics/usage?group=team&format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("period,application,team,requests,"), "{csv}");
    assert!(csv.lines().any(|l| l.contains(",shop,9,27,0,12,")), "{csv}");
    admin.expect("GET", "/analytics/top?by=colour", None, 400).await;
}

/// A payments developer sees the calls to its service only, shop's the
/// calls of its application; analytics are scoped the same way.
async fn teams_see_their_own(admin: &Admin, log: &BTreeMap<String, Value>) {
    for (team, field) in [("payments", "service_team"), ("shop", "team")] {
        let token = token_for(admin, json!({"role": "developer", "team": team})).await;
        let dev = admin.with_token(&token);
        let seen = dev.expect("GET", "/logs?limit=1000", None, 200).await;
        let items = seen["items"].as_array().unwrap();
        let want = log.values().filter(|c| c[field] == team).count();
        assert!(want > 0);
        assert_eq!(items.len(), want, "{team}");
        assert!(items.iter().all(|c| c[field] == team || c["service_team"] == team));
        let s = dev.expect("GET", "/analytics/summary", None, 200).await;
        assert_eq!(s["requests"], json!(want), "{team}");
    }
}
