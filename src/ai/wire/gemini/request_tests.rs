//! The request parameters of issue 17, item 12: reasoning, files, refusals, cache marks.

use super::*;
use serde_json::json;

fn with(extra: Value) -> Value {
    let mut req = json!({"messages": [{"role": "user", "content": "x"}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        req[k] = v.clone();
    }
    req
}

fn refused(req: Value) -> String {
    match chat_request(&req, "gemini-2.5-flash") {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

fn body(req: Value) -> Value {
    chat_request(&req, "gemini-2.5-flash").unwrap().body
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    let b = body(with(json!({"reasoning_effort": "medium", "temperature": 0.3})));
    assert_eq!(
        b["generationConfig"],
        json!({"temperature": 0.3, "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": false}})
    );
    let b = body(with(json!({"reasoning_effort": "none"})));
    assert_eq!(b["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0);
    assert!(body(with(json!({"reasoning_effort": null})))
        .get("generationConfig")
        .is_none());
    assert!(refused(with(json!({"reasoning_effort": 3}))).contains("`reasoning_effort`"));
}

#[test]
fn parameters_without_an_equivalent_are_refused_by_name() {
    for (key, value) in [
        ("logprobs", json!(true)),
        ("top_logprobs", json!(5)),
        ("logit_bias", json!({"1": 5})),
        ("audio", json!({"voice": "alloy", "format": "mp3"})),
        ("modalities", json!(["audio"])),
        ("prediction", json!({"type": "content", "content": "x"})),
        ("web_search_options", json!({"search_context_size": "low"})),
        ("function_call", json!("auto")),
        ("verbosity", json!("low")),
    ] {
        let m = refused(with(json!({ key: value })));
        assert!(m.contains(&format!("`{key}`")) && m.contains("Gemini"), "{key}: {m}");
    }
    let b = body(with(
        json!({"logprobs": false, "store": true, "metadata": {"a": "b"}, "service_tier": "auto",
        "user": "u", "safety_identifier": "s", "prompt_cache_key": "k", "parallel_tool_calls": false}),
    ));
    assert_eq!(b, json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}));
}

#[test]
fn files_are_inline_data_and_cache_marks_are_dropped() {
    let b = body(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise", "cache_control": {"type": "ephemeral"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "r.pdf"}},
    ]}]}));
    assert_eq!(
        b["contents"][0]["parts"],
        json!([{"text": "Summarise"}, {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}])
    );
    let file = |file: Value| json!({"messages": [{"role": "user", "content": [{"type": "file", "file": file}]}]});
    assert!(refused(file(json!({"file_id": "file-abc"}))).contains("`file_id`"));
    assert!(refused(file(json!({"file_data": "JVBERi0x"}))).contains("file_data"));
}
