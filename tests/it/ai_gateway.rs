//! The AI gateway end to end against mock providers that speak each real
//! wire format (tests/ai/mock_providers.py, a real HTTP server): fallback and
//! key cool-down, budgets, prompt APIs, bad input, and provider keys kept out
//! of logs, errors and metrics. The official OpenAI SDK is exercised by
//! tests/ai/test_sdk.py (run by `make test`).

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "sk-mock-secret-7f3a";

fn config(mock: &Mock, extra_ai: &str, tail: &str) -> String {
    let m = mock.port;
    format!(
        "consumers:\n  - name: team-a\n    credentials:\n      api_keys: [{{sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}}]\n\
ai:\n  key_cooldown: 1h\n  providers:\n\
\x20   oai: {{kind: openai, base_url: 'http://127.0.0.1:{m}/v1', keys: [{{env: PORTICO_TEST_AI_KEY}}]}}\n\
\x20   claude: {{kind: anthropic, base_url: 'http://127.0.0.1:{m}', keys: [{{file: ${{DIR}}/bad.key}}, {{env: PORTICO_TEST_AI_KEY}}]}}\n\
\x20   gem: {{kind: gemini, base_url: 'http://127.0.0.1:{m}', keys: [{{env: PORTICO_TEST_AI_KEY}}]}}\n\
\x20 models:\n\
\x20   claude-sonnet: {{targets: [{{provider: claude, model: claude-sonnet-4}}]}}\n\
\x20   resilient: {{targets: [{{provider: oai, model: fail-429}}, {{provider: gem, model: fail-500}}, {{provider: claude, model: claude-sonnet-4}}]}}\n\
{extra_ai}\
routes:\n  - name: llm\n    paths: [/v1/*]\n    ai: {{}}\n    policies:\n      - key_auth: {{}}\n{tail}"
    )
}

async fn start(mock: &Mock, extra_ai: &str, tail: &str) -> Gateway {
    std::env::set_var("PORTICO_TEST_AI_KEY", KEY);
    // The gateway's ${DIR} is made by Gateway::start, so the bad key goes in via a pre-made dir.
    let yaml = config(mock, extra_ai, tail);
    let dir = temp_dir("aikeys");
    std::fs::write(dir.join("bad.key"), "sk-revoked-key").unwrap();
    Gateway::start(&yaml.replace("${DIR}/bad.key", &dir.join("bad.key").display().to_string())).await
}

async fn chat(gw: &Gateway, body: Value) -> (u16, Value) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "test")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn fallback_key_cooldown_usage_and_secrecy() {
    let mock = Mock::start(KEY).await;
    let gw = start(&mock, "", "").await;

    // Through the 429 and the 500 to Claude; the revoked key (401) is skipped for the good one.
    let (s, v) = chat(&gw, hello("resilient")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from anthropic claude-sonnet-4"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    let reqs = mock.requests().await;
    let anthropic: Vec<&Value> = reqs.iter().filter(|r| r["path"] == "/v1/messages").collect();
    assert_eq!(anthropic.len(), 2, "revoked key, then the good one: {reqs:?}");
    assert_eq!(anthropic[1]["headers"]["x-api-key"], KEY);
    assert_eq!(anthropic[1]["body"]["system"], "Be brief.");
    assert!(anthropic[1]["headers"].get("authorization").is_none());
    // The client's own credential never reaches a provider.
    assert!(reqs.iter().all(|r| r["headers"]["x-api-key"] != "test"));

    // The revoked key cools down: the next call goes straight to the good key.
    let (s, _) = chat(&gw, hello("claude-sonnet")).await;
    assert_eq!(s, 200);
    let after: Vec<Value> = mock.requests().await.into_iter().skip(reqs.len()).collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["headers"]["x-api-key"], KEY);

    // Usage and cost per consumer: 2 calls of 11 + 5 tokens.
    let gw_ref = &gw;
    wait_until("metrics counted", Duration::from_secs(10), || async move {
        gw_ref
            .metric("portico_ai_tokens_total{consumer=\"team-a\",kind=\"prompt\",model=\"claude-sonnet\"}")
            .await
            == Some(11.0)
    })
    .await;
    let cost = gw
        .metric("portico_ai_cost_usd_total{consumer=\"team-a\",model=\"resilient\"}")
        .await
        .unwrap();
    assert!(
        (cost - 0.0000972).abs() < 1e-9,
        "claude-sonnet-4 at 3/15/0.3 USD per M: {cost}"
    );
    let log_path = gw.dir.join("access.log");
    wait_until("access log has AI fields", Duration::from_secs(10), || {
        let p = log_path.clone();
        async move {
            std::fs::read_to_string(&p)
                .unwrap_or_default()
                .contains("\"provider\":\"claude\"")
        }
    })
    .await;

    // Every target failing: the last provider's reason, in OpenAI's error shape.
    let (s, v) = chat(&gw, hello("gem/fail-500")).await;
    assert_eq!(s, 502);
    assert_eq!(v["error"]["code"], "provider_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("provider gem"), "{v}");
    // Only 429s: the client gets a 429 with the provider's Retry-After.
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "test")
        .json(&hello("oai/fail-429"))
        .send()
        .await
        .unwrap();
    let (h, v) = expect_error(r, 429, "rate_limited").await;
    assert_eq!(h["retry-after"], "1");
    // Either the provider's own 429, or its only key still cooling from the first call's 429.
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("rate limited by mock") || msg.contains("cooling down"),
        "{v}"
    );

    // No provider key in the access log, the process log, or the metrics.
    let (_, metrics) = gw.admin("/metrics").await;
    let logs = std::fs::read_to_string(gw.dir.join("access.log")).unwrap() + &gw.log() + &metrics;
    assert!(
        !logs.contains(KEY) && !logs.contains("sk-revoked-key"),
        "a provider key leaked"
    );
}

#[tokio::test]
async fn bad_requests_get_openai_shaped_errors() {
    let mock = Mock::start(KEY).await;
    let gw = start(&mock, "", "").await;
    let c = client();
    let post = |body: &'static str| {
        c.post(gw.url("/v1/chat/completions"))
            .header("x-api-key", "test")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (_, v) = expect_error(post("{not json").await.unwrap(), 400, "bad_request").await;
    assert!(v["error"]["message"].as_str().unwrap().contains("not valid JSON"));
    expect_error(post("[1,2]").await.unwrap(), 400, "bad_request").await;
    let (_, v) = expect_error(
        post(r#"{"model":"claude-sonnet","messages":[]}"#).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("messages"));
    expect_error(
        post(r#"{"messages":[{"role":"user","content":"x"}]}"#).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    let (_, v) = expect_error(
        post(r#"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
        404,
        "model_not_found",
    )
    .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
    // A message role Anthropic cannot take is the client's error, not the provider's.
    expect_error(
        post(r#"{"model":"claude-sonnet","messages":[{"role":"wizard","content":"x"}]}"#)
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    // A provider answering garbage: 502.
    expect_error(
        post(r#"{"model":"oai/garbage","messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
        502,
        "provider_error",
    )
    .await;
    // Anthropic has no embeddings.
    let r = c
        .post(gw.url("/v1/embeddings"))
        .header("x-api-key", "test")
        .json(&json!({"model": "claude-sonnet", "input": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "unsupported_for_provider").await;
    // Unknown endpoint under the AI route.
    let r = c
        .get(gw.url("/v1/files"))
        .header("x-api-key", "test")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "route_not_found").await;
    // No key: key_auth refuses before anything reaches a provider.
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&hello("claude-sonnet"))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;

    // A stream the provider cuts: the chunks so far, then an error event, no [DONE].
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", "test")
        .json(&json!({"model": "claude/cut", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"content\":\"Hello\""), "{text}");
    assert!(text.contains("\"code\":\"provider_error\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn budgets_refuse_once_spent() {
    let mock = Mock::start(KEY).await;
    let budgets = "\x20 budgets:\n    - {consumer: team-a, model: claude-sonnet, tokens_per_minute: 40}\n    - {consumer: team-a, usd_per_day: 0.0002}\n";
    let gw = start(&mock, budgets, "").await;
    // 16 tokens a call: two calls reach 32, a third reaches 48, the fourth is refused.
    for _ in 0..3 {
        assert_eq!(chat(&gw, hello("claude-sonnet")).await.0, 200);
    }
    let (s, v) = chat(&gw, hello("claude-sonnet")).await;
    assert_eq!(s, 429);
    assert_eq!(
        v["error"]["message"],
        "token budget of 40 tokens per minute for consumer \"team-a\" on model \"claude-sonnet\" is spent"
    );
    // The daily USD budget covers every model: 3 calls cost $0.0002916 > $0.0002.
    let (s, v) = chat(&gw, hello("gem/gemini-2.0-flash")).await;
    assert_eq!(s, 429, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("daily budget of $0.00"),
        "{v}"
    );
}

#[tokio::test]
async fn prompt_apis_validate_variables_and_answer_json() {
    let mock = Mock::start(KEY).await;
    let apis = "prompt_apis:\n\
\x20 - name: sentiment\n    path: /apis/sentiment\n    model: claude/json\n    description: Classify a text\n    template: 'Classify ({{lang}}): {{text}}'\n    variables:\n      text: {required: true, description: the text}\n      lang: {default: en}\n    output_schema: {type: object, required: [label], properties: {label: {type: string}, score: {type: number}}}\n    policies: [{key_auth: {}}]\n\
\x20 - name: greet\n    path: /apis/greet\n    model: claude-sonnet\n    template: 'Say hello to {{name}}'\n    variables: {name: {required: true}}\n";
    let gw = start(&mock, "", apis).await;
    let c = client();
    let call = |path: &'static str, body: Value| c.post(gw.url(path)).header("x-api-key", "test").json(&body).send();
    let r = call("/apis/sentiment", json!({"text": "I love it"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"label": "positive", "score": 0.9}));
    let sent = mock.requests().await;
    let last = sent.last().unwrap();
    assert_eq!(
        last["body"]["messages"][0]["content"][0]["text"],
        "Classify (en): I love it"
    );
    assert!(last["body"]["system"].as_str().unwrap().contains("JSON Schema"));

    let (_, v) = expect_error(call("/apis/sentiment", json!({})).await.unwrap(), 400, "bad_request").await;
    assert_eq!(v["error"]["message"], "missing variable \"text\"");
    let (_, v) = expect_error(
        call("/apis/sentiment", json!({"text": "x", "mood": 1})).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_eq!(v["error"]["message"], "unknown variable \"mood\"");
    // The schema's answer check: `greet` has no schema and answers text.
    let r = call("/apis/greet", json!({"name": "Ada"})).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "Hello from anthropic claude-sonnet-4");
    // The prompt API's own policies: no key, no call.
    let r = c
        .post(gw.url("/apis/sentiment"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;

    let (_, doc) = get_json(&c, &gw.url("/apis/openapi.json")).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let op = &doc["paths"]["/apis/sentiment"]["post"];
    assert_eq!(op["summary"], "Classify a text");
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["text"])
    );
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["required"],
        json!(["label"])
    );
    assert!(doc["paths"]["/apis/greet"]["post"].is_object());
}
