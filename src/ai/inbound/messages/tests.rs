use super::*;
use crate::ai::inbound::Encoder as _;
use serde_json::json;

#[test]
fn a_messages_request_as_chat() {
    let req = json!({
        "model": "m", "max_tokens": 100, "stop_sequences": ["X"], "top_k": 5,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "tools": [{"name": "w", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": true},
                {"type": "text", "text": "and now?"}]}]});
    let chat = to_chat(&req).unwrap();
    assert_eq!(chat["max_tokens"], 100);
    assert_eq!(chat["stop"], json!(["X"]));
    assert!(chat.get("top_k").is_none());
    assert_eq!(chat["reasoning_effort"], "medium");
    assert_eq!(chat["tool_choice"], "required");
    assert_eq!(chat["parallel_tool_calls"], false);
    assert_eq!(chat["tools"][0]["function"]["name"], "w");
    let m = chat["messages"].as_array().unwrap();
    assert_eq!(
        m[0],
        json!({"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]})
    );
    assert_eq!(m[1], json!({"role": "user", "content": "hi"}));
    assert_eq!(m[2]["content"], "Let me look.");
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "t1", "content": "sunny"}));
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "t2", "content": "Error: boom"})
    );
    assert_eq!(
        m[5],
        json!({"role": "user", "content": [{"type": "text", "text": "and now?"}]})
    );
}

#[test]
fn bad_requests_are_named() {
    assert!(
        to_chat(&json!({"model": "m", "messages": []})).is_err(),
        "no max_tokens"
    );
    let e = to_chat(&json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}));
    assert!(e.unwrap_err().to_string().contains("messages[0].role"));
    let req = json!({"model": "m", "max_tokens": 1, "messages": [],
                     "tools": [{"type": "web_search_20250305", "name": "web_search"}], "container": "c"});
    let why = untranslatable(&req).unwrap();
    assert!(
        why.contains("web_search_20250305") && why.contains("container"),
        "{why}"
    );
    assert!(untranslatable(&json!({"tools": [{"name": "w", "input_schema": {}}]})).is_none());
    // Blocks only Anthropic knows go natively as they are, and are named for any other provider.
    let req = json!({"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": "news?"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "s1", "content": []},
            {"type": "text", "text": "Here."}]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}},
                                      {"type": "text", "text": "and?"}]}]});
    let chat = to_chat(&req).unwrap();
    assert_eq!(chat["messages"][1], json!({"role": "assistant", "content": "Here."}));
    let why = untranslatable(&req).unwrap();
    for named in ["server_tool_use", "web_search_tool_result", "image source `file`"] {
        assert!(why.contains(named), "{why}");
    }
}

#[test]
fn a_chat_answer_as_a_message() {
    let answer = json!({"model": "gpt-4o", "choices": [{"finish_reason": "tool_calls", "message": {
        "content": "Looking.", "tool_calls": [{"id": "c1", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}});
    let m = from_chat(&answer, "r1");
    assert_eq!(m["id"], "msg_r1");
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(m["content"][0], json!({"type": "text", "text": "Looking."}));
    assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(m["usage"]["input_tokens"], 7);
    assert_eq!(m["usage"]["cache_read_input_tokens"], 4);
}

fn events(out: &[Bytes]) -> Vec<(String, Value)> {
    out.iter()
        .map(|b| {
            let s = std::str::from_utf8(b).unwrap();
            let (name, data) = s.trim_end().split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (name.strip_prefix("event: ").unwrap().to_string(), data)
        })
        .collect()
}

#[test]
fn chat_chunks_as_anthropic_events() {
    let mut enc = Encoder::new("r1", "gpt-4o");
    let mut out = Vec::new();
    for chunk in [
        json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
        json!({"choices": [{"delta": {"content": "Hi"}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "w", "arguments": ""}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
    ] {
        enc.chunk(&chunk, &mut out);
    }
    let usage = Usage {
        prompt_tokens: 11,
        completion_tokens: 5,
        ..Usage::default()
    };
    enc.finish(&usage, &mut out);
    let ev = events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[3].1["delta"], json!({"type": "text_delta", "text": "Hi"}));
    assert_eq!(ev[5].1["index"], 1);
    assert_eq!(ev[5].1["content_block"]["type"], "tool_use");
    assert_eq!(ev[8].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev[8].1["usage"]["output_tokens"], 5);
}

#[test]
fn a_failed_stream_and_errors_are_anthropics_shape() {
    let mut out = Vec::new();
    Encoder::new("r", "m").fail("provider p: cut", &mut out);
    let ev = events(&out);
    assert_eq!(ev[0].0, "error");
    assert_eq!(ev[0].1["error"]["type"], "api_error");
    let b: Value = serde_json::from_slice(&error_body(GatewayError::RateLimited, "slow down", "r9")).unwrap();
    assert_eq!(
        b,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}, "request_id": "r9"})
    );
}

#[test]
fn a_native_stream_is_read_for_usage_and_text() {
    let mut s = sniffer();
    let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":4}}}\n\n\
                  event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
                  event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}}\n\n";
    for piece in stream.as_bytes().chunks(7) {
        s.push(piece);
    }
    assert_eq!(
        (
            s.usage().prompt_tokens,
            s.usage().cached_tokens,
            s.usage().completion_tokens
        ),
        (11, 4, 5)
    );
    assert_eq!(s.text().as_str(), "Hello");
    assert!(!s.finished() && !s.failed(), "no message_stop yet");
    s.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    assert!(s.finished() && !s.failed());
    let mut failed = sniffer();
    failed.push(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n");
    assert!(failed.failed() && !failed.finished());
    assert_eq!(
        usage_of(br#"{"usage":{"input_tokens":3,"output_tokens":2}}"#).total(),
        5
    );
}
