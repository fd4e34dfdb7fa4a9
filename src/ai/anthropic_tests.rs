use super::super::SSE_DONE;
use super::*;
use serde_json::json;

fn bad_request(r: Result<ProviderCall, TranslateError>) -> String {
    match r {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

fn body(req: Value) -> Value {
    chat_request(&req, "claude-sonnet-4-5").unwrap().body
}

// ---------------------------------------------------------------- request

#[test]
fn minimal_request() {
    let call = chat_request(
        &json!({"model": "x", "messages": [{"role": "user", "content": "Hi"}]}),
        "claude-3",
    )
    .unwrap();
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.headers, vec![("anthropic-version", "2023-06-01".to_string())]);
    assert_eq!(
        call.body,
        json!({
            "model": "claude-3",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        })
    );
}

#[test]
fn system_and_developer_joined() {
    let b = body(json!({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}, {"type": "text", "text": "No emoji."}]},
        {"role": "user", "content": "Hello"},
        {"role": "system", "content": "Late rule."},
    ]}));
    assert_eq!(
        b["system"],
        "You are terse.\n\nAnswer in French.\nNo emoji.\n\nLate rule."
    );
    assert_eq!(b["messages"].as_array().unwrap().len(), 1);
    let e = bad_request(chat_request(
        &json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://a/b.png"}}]}, {"role": "user", "content": "x"}]}),
        "m",
    ));
    assert!(e.contains("messages[0]"), "{e}");
}

#[test]
fn multi_turn_merges_consecutive_roles() {
    let b = body(json!({"messages": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
        {"role": "user", "content": "five"},
        {"role": "assistant", "content": ""},
    ]}));
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
            {"role": "user", "content": [{"type": "text", "text": "five"}]},
        ])
    );
}

#[test]
fn image_parts() {
    let b = body(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]}]}));
    assert_eq!(
        b["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ])
    );
    for url in [
        "data:image/png,rawdata",
        "data:text/plain;base64,aGk=",
        "data:image/png;base64",
        "ftp://x/y.png",
        "",
    ] {
        let req =
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
        bad_request(chat_request(&req, "m"));
    }
    let req = json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]});
    assert!(bad_request(chat_request(&req, "m")).contains("input_audio"));
}

#[test]
fn tool_calls_and_tool_results() {
    let b = body(json!({"messages": [
        {"role": "user", "content": "Weather in Paris and time in Tokyo?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "09:00"}]},
        {"role": "user", "content": "Thanks, summarise."},
    ]}));
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and time in Tokyo?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "09:00"},
                {"type": "text", "text": "Thanks, summarise."},
            ]},
        ])
    );
}

#[test]
fn invalid_tool_arguments() {
    let call = |args: Value| {
        json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}]},
        ]})
    };
    assert!(bad_request(chat_request(&call(json!("{not json")), "m")).contains("invalid JSON"));
    assert!(bad_request(chat_request(&call(json!("[1,2]")), "m")).contains("JSON object"));
    bad_request(chat_request(&call(json!({"a": 1})), "m"));
    let req = json!({"messages": [{"role": "tool", "content": "x"}]});
    assert!(bad_request(chat_request(&req, "m")).contains("tool_call_id"));
}

#[test]
fn tools_and_tool_choice() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "now"}},
    ]);
    let with = |choice: Value| {
        body(json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice}))
    };
    let b = with(Value::Null);
    assert_eq!(
        b["tools"],
        json!([
            {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert!(b.get("tool_choice").is_none());
    assert_eq!(with(json!("auto"))["tool_choice"], json!({"type": "auto"}));
    assert_eq!(with(json!("required"))["tool_choice"], json!({"type": "any"}));
    assert_eq!(with(json!("none"))["tool_choice"], json!({"type": "none"}));
    assert_eq!(
        with(json!({"type": "function", "function": {"name": "now"}}))["tool_choice"],
        json!({"type": "tool", "name": "now"})
    );
    bad_request(chat_request(
        &json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": "sometimes"}),
        "m",
    ));
    let b = body(json!({"messages": [{"role": "user", "content": "x"}], "tools": tools, "parallel_tool_calls": false}));
    assert_eq!(
        b["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let req = json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_interpreter"}]});
    bad_request(chat_request(&req, "m"));
}

#[test]
fn sampling_and_misc_parameters() {
    let b = body(json!({
        "messages": [{"role": "user", "content": "x"}],
        "stop": "END", "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "stream": true, "user": "u-42", "n": 1,
        "frequency_penalty": 0.5,
    }));
    assert_eq!(b["stop_sequences"], json!(["END"]));
    assert_eq!(b["temperature"], json!(0.2));
    assert_eq!(b["top_p"], json!(0.9));
    assert_eq!(b["max_tokens"], json!(100));
    assert_eq!(b["stream"], json!(true));
    assert_eq!(b["metadata"], json!({"user_id": "u-42"}));
    assert!(b.get("frequency_penalty").is_none());
    let b = body(
        json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"], "max_tokens": 100, "max_completion_tokens": 50}),
    );
    assert_eq!(b["stop_sequences"], json!(["a", "b"]));
    assert_eq!(b["max_tokens"], json!(50));
    let b = body(json!({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 7, "stop": null}));
    assert_eq!(b["max_tokens"], json!(7));
    assert!(b.get("stop_sequences").is_none() && b.get("stream").is_none() && b.get("system").is_none());
    for bad in [
        json!({"max_tokens": 0}),
        json!({"max_tokens": -1}),
        json!({"max_tokens": "10"}),
        json!({"stop": 5}),
        json!({"temperature": "hot"}),
        json!({"n": 2}),
        json!({"stream": "yes"}),
    ] {
        let mut req = bad.clone();
        req["messages"] = json!([{"role": "user", "content": "x"}]);
        bad_request(chat_request(&req, "m"));
    }
}

#[test]
fn json_mode_by_instruction() {
    let b = body(
        json!({"messages": [{"role": "system", "content": "Be helpful."}, {"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    );
    let system = b["system"].as_str().unwrap();
    assert!(system.starts_with("Be helpful.\n\n"), "{system}");
    assert!(system.contains("JSON object only"), "{system}");
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let b = body(json!({"messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": true}}}));
    let system = b["system"].as_str().unwrap();
    assert!(
        system.starts_with("Respond with a single valid JSON value only"),
        "{system}"
    );
    assert!(system.contains(&schema.to_string()), "{system}");
    let b = body(json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "text"}}));
    assert!(b.get("system").is_none());
    let req = json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}});
    bad_request(chat_request(&req, "m"));
}

#[test]
fn malformed_requests() {
    assert!(bad_request(chat_request(&json!({"model": "x"}), "m")).contains("messages"));
    assert!(bad_request(chat_request(&json!({"messages": []}), "m")).contains("empty"));
    assert!(bad_request(chat_request(&json!({"messages": "hi"}), "m")).contains("array"));
    assert!(bad_request(chat_request(&json!([1]), "m")).contains("object"));
    let e = bad_request(chat_request(
        &json!({"messages": [{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}]}),
        "m",
    ));
    assert!(e.contains("wizard") && e.contains("messages[1]"), "{e}");
    assert!(bad_request(chat_request(&json!({"messages": [{"content": "b"}]}), "m")).contains("role"));
    assert!(bad_request(chat_request(&json!({"messages": [7]}), "m")).contains("messages[0]"));
    let e = bad_request(chat_request(
        &json!({"messages": [{"role": "system", "content": "only system"}]}),
        "m",
    ));
    assert!(e.contains("no user or assistant"), "{e}");
    bad_request(chat_request(
        &json!({"messages": [{"role": "user", "content": 42}]}),
        "m",
    ));
    bad_request(chat_request(
        &json!({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
        "m",
    ));
}

// ---------------------------------------------------------------- response

#[test]
fn text_response() {
    let body = br#"{
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}, {"type": "text", "text": " How can I help?"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}
    }"#;
    let (v, usage) = chat_response(body, "chatcmpl-portico-1", "claude-sonnet", 1700000000).unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 3195,
            completion_tokens: 503,
            cached_tokens: 1000,
            reasoning_tokens: 0
        }
    );
    assert_eq!(
        v,
        json!({
            "id": "chatcmpl-portico-1", "object": "chat.completion", "created": 1700000000u64, "model": "claude-sonnet",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi! My name is Claude. How can I help?"},
                "finish_reason": "stop"}],
            "usage": usage.to_json(),
        })
    );
    assert_eq!(v["usage"]["total_tokens"], 3698);
}

#[test]
fn tool_use_response() {
    let body = br#"{
        "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "I'll check the weather."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}},
            {"type": "tool_use", "id": "toolu_02B", "name": "get_time", "input": {}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 80}
    }"#;
    let (v, usage) = chat_response(body, "id1", "m", 1).unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 50,
            completion_tokens: 80,
            cached_tokens: 0,
            reasoning_tokens: 0
        }
    );
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "I'll check the weather.");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "San Francisco, CA", "unit": "celsius"}));
    assert_eq!(calls[1]["function"]["arguments"], "{}");
}

#[test]
fn tool_only_response_has_null_content() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let (v, _) = chat_response(body, "id", "m", 0).unwrap();
    assert!(v["choices"][0]["message"]["content"].is_null());
    assert!(v["choices"][0]["message"].get("tool_calls").is_some());
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}"#;
    let (v, _) = chat_response(body, "id", "m", 0).unwrap();
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn stop_reason_mapping() {
    for (stop, expected) in [
        ("\"end_turn\"", "stop"),
        ("\"stop_sequence\"", "stop"),
        ("\"max_tokens\"", "length"),
        ("\"tool_use\"", "tool_calls"),
        ("\"refusal\"", "content_filter"),
        ("\"pause_turn\"", "stop"),
        ("null", "stop"),
    ] {
        let body = format!(
            r#"{{"id":"msg","type":"message","role":"assistant","model":"m","content":[{{"type":"text","text":"a"}}],"stop_reason":{stop},"usage":{{"input_tokens":1,"output_tokens":1}}}}"#
        );
        let (v, _) = chat_response(body.as_bytes(), "id", "m", 0).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], expected, "{stop}");
    }
}

#[test]
fn bad_responses() {
    let bad = |b: &[u8]| matches!(chat_response(b, "id", "m", 0), Err(TranslateError::BadResponse(_)));
    assert!(bad(b"<html>502 Bad Gateway</html>"));
    assert!(bad(b""));
    assert!(bad(b"\xff\xfe"));
    assert!(bad(br#"{"type":"message","content":"text"}"#));
    assert!(bad(br#"{"foo":1}"#));
    assert!(bad(br#"{"type":"message","content":[{"type":"tool_use","name":"f"}]}"#));
    let e = chat_response(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "i",
        "m",
        0,
    );
    assert_eq!(e, Err(TranslateError::BadResponse("Overloaded".into())));
}

#[test]
fn error_message_extraction() {
    let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"}"#;
    assert_eq!(error_message(body).as_deref(), Some("max_tokens: Field required"));
    assert_eq!(error_message(b"not json"), None);
    assert_eq!(error_message(br#"{"type":"error","error":{"type":"x"}}"#), None);
    assert_eq!(error_message(br#"{"error":"string"}"#), None);
    assert_eq!(error_message(b"\xff"), None);
}

// ---------------------------------------------------------------- streaming

const TEXT_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":5,"cache_read_input_tokens":10,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" wörld 🌍!"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}

"#;

const TOOL_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

: keep-alive comment

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two tools needed."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02Zz","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":" \"Asia/Tokyo\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|b| b.iter().copied()).collect()
}

/// Feed `input` in pieces of `step` bytes, then finish; return the raw output.
fn run(input: &[u8], step: usize, include_usage: bool) -> Result<(Vec<u8>, Usage), TranslateError> {
    let mut t = StreamTranslator::new("chatcmpl-9", "claude-sonnet", 1700000000, include_usage);
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        out.extend(t.push(piece)?);
    }
    out.extend(t.finish()?);
    Ok((concat(&out), t.usage()))
}

/// Parse OpenAI SSE output into its JSON events; asserts it ends with exactly one `[DONE]`.
fn events(raw: &[u8]) -> Vec<Value> {
    assert!(raw.ends_with(SSE_DONE), "stream must end with [DONE]");
    let text = std::str::from_utf8(&raw[..raw.len() - SSE_DONE.len()]).unwrap();
    text.split_terminator("\n\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

#[test]
fn text_stream() {
    let (raw, usage) = run(TEXT_STREAM.as_bytes(), usize::MAX, true).unwrap();
    let ev = events(&raw);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000u64, "model": "claude-sonnet",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    assert_eq!(
        ev,
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Héllo"}), Value::Null),
            chunk(json!({"content": " wörld 🌍!"}), Value::Null),
            chunk(json!({}), json!("stop")),
            json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000u64, "model": "claude-sonnet",
                "choices": [], "usage": usage.to_json()}),
        ]
    );
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 40,
            completion_tokens: 15,
            cached_tokens: 10,
            reasoning_tokens: 0
        }
    );
}

#[test]
fn deltas_are_emitted_as_soon_as_their_event_completes() {
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let (head, _) = TEXT_STREAM.split_at(TEXT_STREAM.find("event: content_block_delta").unwrap());
    let out = t.push(head.as_bytes()).unwrap();
    assert_eq!(out.len(), 1); // role chunk
    let out = t.push(b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n").unwrap();
    assert!(out.is_empty(), "event not complete before its blank line");
    let out = t.push(b"\n").unwrap();
    assert_eq!(out.len(), 1);
    assert!(std::str::from_utf8(&out[0])
        .unwrap()
        .contains(r#""delta":{"content":"Hi"}"#));
    assert_eq!(t.usage().prompt_tokens, 40);
}

#[test]
fn tool_stream_with_two_tools() {
    let (raw, usage) = run(TOOL_STREAM.as_bytes(), usize::MAX, false).unwrap();
    let ev = events(&raw);
    let deltas: Vec<&Value> = ev.iter().map(|e| &e["choices"][0]["delta"]).collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1], &json!({"content": "Let me check."}));
    assert_eq!(
        deltas[2],
        &json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[3],
        &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\": \"San Fra"}}]})
    );
    assert_eq!(
        deltas[4],
        &json!({"tool_calls": [{"index": 0, "function": {"arguments": "ncisco, CA\"}"}}]})
    );
    assert_eq!(
        deltas[5],
        &json!({"tool_calls": [{"index": 1, "id": "toolu_02Zz", "type": "function", "function": {"name": "get_time", "arguments": ""}}]})
    );
    // reassemble the arguments as a client would
    let mut args = [String::new(), String::new()];
    for d in &deltas {
        for call in d.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let i = call["index"].as_u64().unwrap() as usize;
            args[i].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args[0]).unwrap(),
        json!({"location": "San Francisco, CA"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&args[1]).unwrap(),
        json!({"tz": "Asia/Tokyo"})
    );
    let last = ev.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert!(
        ev.iter().all(|e| e.get("usage").is_none()),
        "no usage chunk without include_usage"
    );
    assert_eq!(ev.len(), 9);
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 472,
            completion_tokens: 89,
            cached_tokens: 0,
            reasoning_tokens: 0
        }
    );
}

#[test]
fn byte_at_a_time_equals_all_at_once() {
    let crlf_tool = TOOL_STREAM.replace('\n', "\r\n");
    let cr_text = TEXT_STREAM.replace('\n', "\r");
    for input in [TEXT_STREAM, TOOL_STREAM, crlf_tool.as_str(), cr_text.as_str()] {
        for usage in [false, true] {
            let whole = run(input.as_bytes(), usize::MAX, usage).unwrap();
            for step in [1, 2, 3, 7, 64] {
                assert_eq!(run(input.as_bytes(), step, usage).unwrap(), whole, "step {step}");
            }
        }
    }
}

#[test]
fn line_endings_are_equivalent() {
    let lf = run(TOOL_STREAM.as_bytes(), usize::MAX, true).unwrap();
    assert_eq!(
        run(TOOL_STREAM.replace('\n', "\r\n").as_bytes(), usize::MAX, true).unwrap(),
        lf
    );
    assert_eq!(run(TOOL_STREAM.replace('\n', "\r").as_bytes(), 1, true).unwrap(), lf);
    // A \r\n split across pushes is still one line ending, not two.
    let crlf = TEXT_STREAM.replace('\n', "\r\n");
    let mut t = StreamTranslator::new("chatcmpl-9", "claude-sonnet", 1700000000, true);
    let mut out = Vec::new();
    for part in crlf.split_inclusive('\r') {
        out.extend(t.push(part.as_bytes()).unwrap());
    }
    out.extend(t.finish().unwrap());
    assert_eq!(concat(&out), run(TEXT_STREAM.as_bytes(), usize::MAX, true).unwrap().0);
}

#[test]
fn comments_fields_and_multiline_data() {
    let input = concat!(
        ": hello\n",
        "id: 1\nretry: 100\nevent: message_start\n",
        "data: {\"type\":\"message_start\",\n",
        "data: \"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "\n\n: another comment\n\n",
        "data:{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":1}}\n\n",
        "data: {\"type\":\"message_stop\"}\n\n",
        "data: {\"type\":\"something_after_stop\"}\n\ntrailing garbage",
    );
    let (raw, usage) = run(input.as_bytes(), usize::MAX, false).unwrap();
    let ev = events(&raw);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[1]["choices"][0]["delta"]["content"], "ok");
    assert_eq!(ev[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(usage.prompt_tokens, 3);
}

#[test]
fn multiple_events_in_one_push_and_unknown_events() {
    let input = concat!(
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "data: {\"type\":\"future_event\",\"x\":1}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\"}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\"},\"usage\":{\"output_tokens\":2}}\n\n",
    );
    let mut t = StreamTranslator::new("id", "m", 0, true);
    let out = t.push(input.as_bytes()).unwrap();
    assert_eq!(out.len(), 2);
    assert!(std::str::from_utf8(&out[1])
        .unwrap()
        .contains(r#""finish_reason":"content_filter""#));
    assert!(t.finish().is_err(), "no message_stop yet");
}

#[test]
fn finish_without_message_delta_sends_stop() {
    let input = "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\ndata: {\"type\":\"message_stop\"}";
    // also: the last event lacks its trailing blank line
    let (raw, usage) = run(input.as_bytes(), 5, true).unwrap();
    let ev = events(&raw);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(ev[2]["choices"], json!([]));
    assert_eq!(ev[2]["usage"]["total_tokens"], 4);
    assert_eq!(usage.completion_tokens, 1);
    let mut t = StreamTranslator::new("id", "m", 0, true);
    t.push(input.as_bytes()).unwrap();
    assert!(!t.finish().unwrap().is_empty());
    assert!(t.finish().unwrap().is_empty(), "second finish sends nothing more");
}

#[test]
fn cut_stream_is_an_error() {
    let cut_at = TEXT_STREAM.find("event: message_stop").unwrap();
    for end in [
        0,
        10,
        TEXT_STREAM.find("Héllo").unwrap() + 2,
        cut_at,
        TEXT_STREAM.len() - 5,
    ] {
        let mut t = StreamTranslator::new("id", "m", 0, true);
        t.push(&TEXT_STREAM.as_bytes()[..end]).unwrap();
        let e = t.finish();
        assert!(matches!(e, Err(TranslateError::BadResponse(_))), "cut at {end}: {e:?}");
    }
}

#[test]
fn error_event() {
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let head = &TEXT_STREAM[..TEXT_STREAM.find("event: content_block_stop").unwrap()];
    assert_eq!(t.push(head.as_bytes()).unwrap().len(), 3);
    let e = t.push(b"event: error\r\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\r\n\r\n");
    assert_eq!(e, Err(TranslateError::BadResponse("Overloaded".into())));
    assert!(
        t.push(b"data: {\"type\":\"message_stop\"}\n\n").is_err(),
        "stays failed"
    );
    assert!(t.finish().is_err());
}

#[test]
fn garbage_is_an_error() {
    let mut t = StreamTranslator::new("id", "m", 0, false);
    assert!(matches!(
        t.push(b"data: <html>oops</html>\n\n"),
        Err(TranslateError::BadResponse(_))
    ));
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let r = t.push(b"HTTP/1.1 502 Bad Gateway\r\n\r\n<html>nope</html>");
    assert!(r.is_ok_and(|v| v.is_empty()));
    assert!(t.finish().is_err());
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let r = t.push(b"data: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n");
    assert!(
        matches!(r, Err(TranslateError::BadResponse(_))),
        "delta for an unknown tool block"
    );
}

#[test]
fn non_utf8_is_an_error() {
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let r = t.push(b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\xfe\"}}\n\n");
    assert_eq!(r, Err(TranslateError::BadResponse("stream is not valid UTF-8".into())));
    let mut t = StreamTranslator::new("id", "m", 0, false);
    t.push(b"data: \xc3").unwrap(); // incomplete line: not judged yet
    assert!(t.finish().is_err());
}

/// xorshift64*: deterministic pseudo-random numbers for the fuzz test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn fuzz_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"data: {}\"[]:,\n\r\t type index message_stop content_block_delta tool_use 0123\xff\xc3";
    for round in 0..3000 {
        let input: Vec<u8> = match round % 3 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => (0..rng.below(300))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect(),
            _ => {
                let base = if round % 2 == 0 { TOOL_STREAM } else { TEXT_STREAM };
                let mut v = base.as_bytes().to_vec();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(v.len());
                    match rng.below(3) {
                        0 => v[at] = rng.next() as u8,
                        1 => {
                            v.remove(at);
                        }
                        _ => v.insert(at, alphabet[rng.below(alphabet.len())]),
                    }
                }
                v
            }
        };
        let mut t = StreamTranslator::new("id", "m", 0, round % 2 == 0);
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(40));
            let _ = t.push(&rest[..n]);
            rest = &rest[n..];
        }
        let _ = t.finish();
        let _ = t.usage();
        let _ = chat_response(&input, "id", "m", 0);
        let _ = error_message(&input);
        if let Ok(v) = serde_json::from_slice::<Value>(&input) {
            let _ = chat_request(&v, "m");
        }
    }
}

#[test]
fn request_fuzz_on_odd_shapes_never_panics() {
    let odd = [
        json!(null),
        json!(1),
        json!("s"),
        json!([]),
        json!({}),
        json!([null]),
        json!({"type": 1}),
    ];
    for v in &odd {
        for key in [
            "messages",
            "tools",
            "tool_choice",
            "stop",
            "response_format",
            "max_tokens",
            "user",
            "n",
        ] {
            let mut req = json!({"messages": [{"role": "user", "content": "x"}]});
            req[key] = v.clone();
            let _ = chat_request(&req, "m");
        }
        for key in ["role", "content", "tool_calls", "tool_call_id"] {
            let mut req = json!({"messages": [{"role": "assistant", "content": "x", "tool_calls": []}]});
            req["messages"][0][key] = v.clone();
            let _ = chat_request(&req, "m");
            req["messages"][0]["tool_calls"] = json!([{"id": "c", "function": {"name": "f", "arguments": "{}"}}]);
            req["messages"][0]["tool_calls"][0][key] = v.clone();
            let _ = chat_request(&req, "m");
        }
    }
}

#[test]
fn huge_token_counts_do_not_overflow() {
    let max = u64::MAX;
    let body = format!(
        r#"{{"type":"message","content":[],"stop_reason":"end_turn","usage":{{"input_tokens":{max},"cache_read_input_tokens":{max},"cache_creation_input_tokens":{max},"output_tokens":{max}}}}}"#
    );
    let (v, usage) = chat_response(body.as_bytes(), "id", "m", 0).unwrap();
    assert!(usage.total() > 0 && v["usage"]["total_tokens"].is_u64());
    let stream = format!(
        "data: {{\"type\":\"message_start\",\"message\":{{\"usage\":{{\"input_tokens\":{max},\"output_tokens\":{max}}}}}}}\n\ndata: {{\"type\":\"message_stop\"}}\n\n"
    );
    let (_, usage) = run(stream.as_bytes(), 3, true).unwrap();
    assert!(usage.total() > 0);
}

#[test]
fn oversized_event_is_an_error() {
    let mut t = StreamTranslator::new("id", "m", 0, false);
    let big = vec![b'x'; 1024 * 1024];
    let mut res = Ok(Vec::new());
    for _ in 0..20 {
        res = t.push(&big);
        if res.is_err() {
            break;
        }
    }
    assert!(matches!(res, Err(TranslateError::BadResponse(_))));
}

#[test]
fn cumulative_message_delta_usage() {
    let input = concat!(
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":30,\"cache_read_input_tokens\":20,\"output_tokens\":1}}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":0,\"output_tokens\":12}}\n\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let (_, usage) = run(input.as_bytes(), usize::MAX, true).unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 50,
            completion_tokens: 12,
            cached_tokens: 20,
            reasoning_tokens: 0
        }
    );
    let input = input.replace(
        "\"input_tokens\":null,\"cache_read_input_tokens\":0",
        "\"input_tokens\":35,\"cache_read_input_tokens\":20",
    );
    let (_, usage) = run(input.as_bytes(), usize::MAX, true).unwrap();
    assert_eq!(usage.prompt_tokens, 55, "cumulative counts in message_delta win");
}
