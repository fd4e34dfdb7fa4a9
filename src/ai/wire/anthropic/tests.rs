use super::super::{ProviderCall, OPENING_USER_TEXT};
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
fn a_conversation_opening_with_the_assistant_gets_a_user_turn_first() {
    let b = body(json!({"messages": [
        {"role": "system", "content": "Be kind."},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Ask me anything."}]},
        {"role": "user", "content": "Weather?"},
        {"role": "user", "content": "In Paris."},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ]}));
    let roles: Vec<_> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"type": "text", "text": OPENING_USER_TEXT}])
    );
    assert_eq!(b["messages"][1]["content"].as_array().unwrap().len(), 2);
    assert_eq!(b["messages"][2]["content"].as_array().unwrap().len(), 2);
    assert_eq!(
        b["messages"][4]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
            {"type": "text", "text": "And tomorrow?"},
        ])
    );
    // an assistant turn left empty does not make the user speak second
    let b = body(json!({"messages": [{"role": "assistant", "content": ""}, {"role": "user", "content": "x"}]}));
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "x"}]}])
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
    }));
    assert_eq!(b["stop_sequences"], json!(["END"]));
    assert_eq!(b["temperature"], json!(0.2));
    assert_eq!(b["top_p"], json!(0.9));
    assert_eq!(b["max_tokens"], json!(100));
    assert_eq!(b["stream"], json!(true));
    assert_eq!(b["metadata"], json!({"user_id": "u-42"}));
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
