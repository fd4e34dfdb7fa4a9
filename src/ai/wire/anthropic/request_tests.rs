//! The request parameters of issue 17, item 12: reasoning, prompt caching, files, refusals.

use super::*;
use serde_json::json;

fn body(req: Value) -> Value {
    chat_request(&req, "claude-sonnet-4-5").unwrap().body
}

fn refused(req: Value) -> String {
    match chat_request(&req, "m") {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

fn with(extra: Value) -> Value {
    let mut req = json!({"messages": [{"role": "user", "content": "x"}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        req[k] = v.clone();
    }
    req
}

#[test]
fn reasoning_effort_turns_on_thinking_within_max_tokens() {
    let b = body(with(json!({"reasoning_effort": "low"})));
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert_eq!(b["max_tokens"], json!(2048 + DEFAULT_MAX_TOKENS));
    let b = body(with(
        json!({"reasoning_effort": "minimal", "max_completion_tokens": 5000}),
    ));
    assert_eq!(b["thinking"]["budget_tokens"], 1024);
    assert_eq!(b["max_tokens"], 5000);
    // a limit the budget would use up leaves the answer that limit
    let b = body(with(json!({"reasoning_effort": "high", "max_tokens": 300})));
    assert_eq!(
        (b["thinking"]["budget_tokens"].clone(), b["max_tokens"].clone()),
        (json!(24576), json!(24876))
    );
    let b = body(with(json!({"reasoning_effort": "none"})));
    assert!(b.get("thinking").is_none());
    assert_eq!(b["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    let b = body(with(
        json!({"reasoning_effort": "medium", "temperature": 1, "top_p": 0.95, "tool_choice": "auto",
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    ));
    assert_eq!(b["thinking"]["budget_tokens"], 8192);
    for (extra, named) in [
        (json!({"temperature": 0.2}), "`temperature`"),
        (json!({"top_p": 0.5}), "`top_p`"),
        (json!({"tool_choice": "required"}), "`tool_choice`"),
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "f"}}}),
            "`tool_choice`",
        ),
        (json!({"reasoning_effort": "extreme"}), "`reasoning_effort`"),
    ] {
        let mut req =
            with(json!({"reasoning_effort": "low", "tools": [{"type": "function", "function": {"name": "f"}}]}));
        for (k, v) in extra.as_object().into_iter().flatten() {
            req[k] = v.clone();
        }
        let m = refused(req);
        assert!(m.contains(named), "{named}: {m}");
    }
    // without reasoning, sampling is the client's
    assert_eq!(body(with(json!({"temperature": 0.2})))["temperature"], json!(0.2));
}

#[test]
fn parameters_without_an_equivalent_are_refused_by_name() {
    for (key, value) in [
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("logit_bias", json!({"50256": -100})),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        ("modalities", json!(["text", "audio"])),
        ("prediction", json!({"type": "content", "content": "x"})),
        ("web_search_options", json!({})),
        ("functions", json!([{"name": "f"}])),
        ("verbosity", json!("high")),
        ("frequency_penalty", json!(0.5)),
        ("presence_penalty", json!(-1)),
        ("n", json!(3)),
    ] {
        let m = refused(with(json!({ key: value })));
        assert!(m.contains(&format!("`{key}`")) && m.contains("Anthropic"), "{key}: {m}");
    }
    let b = body(with(json!({
        "logprobs": false, "frequency_penalty": 0, "presence_penalty": 0.0, "modalities": ["text"], "logit_bias": {},
        "seed": 7, "store": true, "metadata": {"tag": "a"}, "service_tier": "auto", "prompt_cache_key": "k",
        "parallel_tool_calls": true, "safety_identifier": "hashed-user", "verbosity": "medium",
    })));
    let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["max_tokens", "messages", "metadata", "model"]);
    assert_eq!(b["metadata"], json!({"user_id": "hashed-user"}));
}

#[test]
fn cache_control_stays_on_the_blocks_it_marks() {
    let eph = json!({"type": "ephemeral"});
    let b = body(json!({
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "Long rules."},
                {"type": "text", "text": "Longer manual.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ]},
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:", "cache_control": eph},
                {"type": "image_url", "image_url": {"url": "https://a/b.png"}, "cache_control": eph},
            ]},
            {"role": "assistant", "content": "Seen.", "cache_control": eph},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "sunny", "cache_control": eph}]},
        ],
        "tools": [{"type": "function", "function": {"name": "w"}, "cache_control": eph}],
    }));
    assert_eq!(
        b["system"],
        json!([
            {"type": "text", "text": "Long rules."},
            {"type": "text", "text": "Longer manual.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "Be brief."},
        ])
    );
    let m = &b["messages"];
    assert_eq!(m[0]["content"][0]["cache_control"], eph);
    assert_eq!(m[0]["content"][1]["cache_control"], eph);
    assert_eq!(
        m[1]["content"],
        json!([{"type": "text", "text": "Seen.", "cache_control": eph}])
    );
    assert_eq!(
        m[4]["content"],
        json!([{"type": "tool_result", "tool_use_id": "c1", "content": "sunny", "cache_control": eph}])
    );
    assert_eq!(b["tools"][0]["cache_control"], eph);
    let m = refused(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "forever"}}]}]}));
    assert!(m.contains("cache_control"), "{m}");
}

#[test]
fn pdf_files_become_document_blocks() {
    let file = |file: Value| {
        json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise"}, {"type": "file", "file": file}]}]})
    };
    let b = body(file(
        json!({"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "report.pdf"}),
    ));
    assert_eq!(
        b["messages"][0]["content"][1],
        json!({"type": "document", "title": "report.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}})
    );
    let b = body(file(json!({"file_data": "data:image/png;base64,iVBO"})));
    assert_eq!(b["messages"][0]["content"][1]["type"], "image");
    assert!(refused(file(json!({"file_id": "file-abc123"}))).contains("`file_id`"));
    assert!(refused(file(json!({"file_data": "data:text/csv;base64,YSxi"}))).contains("text/csv"));
    assert!(refused(file(json!({"file_data": "JVBERi0x"}))).contains("data URL"));
}
