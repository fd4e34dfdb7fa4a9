use super::super::OPENING_USER_TEXT;
use super::*;
use serde_json::json;

fn req(v: Value) -> ProviderCall {
    chat_request(&v, "gemini-2.0-flash").unwrap()
}

fn req_err(v: Value) -> String {
    match chat_request(&v, "gemini-2.0-flash") {
        Err(TranslateError::BadRequest(m)) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

// ---------- requests ----------

#[test]
fn system_developer_roles_and_merging() {
    let call = req(json!({"model": "x", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Again"},
    ]}));
    assert_eq!(call.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert!(call.headers.is_empty());
    assert_eq!(
        call.body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief.\n\nUse French."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
                {"role": "model", "parts": [{"text": "Bonjour"}]},
                {"role": "user", "parts": [{"text": "Again"}]},
            ]
        })
    );
}

#[test]
fn a_conversation_opening_with_the_assistant_gets_a_user_turn_first() {
    let mut v = tool_conversation();
    let messages = v["messages"].as_array_mut().unwrap();
    messages.insert(0, json!({"role": "assistant", "content": "Hi! How can I help?"}));
    messages.insert(1, json!({"role": "system", "content": "Be kind."}));
    messages.push(user("Thanks"));
    messages.push(user("Bye"));
    let contents = req(v).body["contents"].clone();
    let roles: Vec<_> = contents.as_array().unwrap().iter().map(|c| c["role"].clone()).collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user", "model", "user"]);
    assert_eq!(contents[0]["parts"], json!([{ "text": OPENING_USER_TEXT }]));
    assert_eq!(contents[1]["parts"], json!([{"text": "Hi! How can I help?"}]));
    assert_eq!(contents[6]["parts"], json!([{"text": "Thanks"}, {"text": "Bye"}]));
}

#[test]
fn stream_path_and_model_prefix() {
    let call = chat_request(
        &json!({"messages": [user("x")], "stream": true}),
        "models/gemini-2.5-pro",
    )
    .unwrap();
    assert_eq!(call.path, "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
    let call = req(json!({"messages": [user("x")], "stream": false}));
    assert!(call.path.ends_with(":generateContent"));
    for bad_model in ["", "a/b", "a?b", "x y", "models/"] {
        assert!(matches!(
            chat_request(&json!({"messages": [user("x")]}), bad_model),
            Err(TranslateError::BadRequest(_))
        ));
    }
    assert!(req_err(json!({"messages": [user("x")], "stream": "yes"})).contains("stream"));
}

#[test]
fn image_parts() {
    let call = req(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.WEBP?size=large#x", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "http://example.com/photo"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.gif"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]}]}));
    assert_eq!(
        call.body["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.WEBP?size=large#x"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "http://example.com/photo"}},
            {"fileData": {"mimeType": "image/gif", "fileUri": "https://example.com/a.gif"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        ])
    );
}

#[test]
fn bad_content_parts() {
    let img = |url: &str| json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
    assert!(req_err(img("data:image/png,abc")).contains("base64"));
    assert!(req_err(img("data:;base64,abc")).contains("media type"));
    assert!(req_err(img("data:image/png;base64")).contains("malformed"));
    assert!(req_err(img("ftp://x/y.png")).contains("http"));
    let v = json!({"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]});
    assert!(req_err(v).contains("video"));
    let v = json!({"messages": [{"role": "user", "content": 5}]});
    assert!(req_err(v).contains("messages[0]"));
    let v = json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, user("x")]});
    assert!(req_err(v).contains("text"));
}

#[test]
fn message_list_errors() {
    assert!(req_err(json!({"model": "x"})).contains("messages"));
    assert!(req_err(json!({"messages": "hi"})).contains("array"));
    assert!(req_err(json!({"messages": []})).contains("empty"));
    assert!(req_err(json!({"messages": [{"role": "wizard", "content": "x"}]})).contains("wizard"));
    assert!(req_err(json!({"messages": [{"content": "x"}]})).contains("role"));
    assert!(req_err(json!({"messages": [{"role": "system", "content": "only system"}]})).contains("no user"));
    assert!(req_err(json!([1, 2])).contains("object"));
}

fn tool_conversation() -> Value {
    json!({"messages": [
        user("Weather in Paris and Rome? And the time?"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
            {"id": "call_c", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "{\"temp\":24}"},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_c", "content": [{"type": "text", "text": "[1,2]"}]},
        {"role": "assistant", "content": "Done."},
    ]})
}

#[test]
fn tool_calls_and_results() {
    let call = req(tool_conversation());
    assert_eq!(
        call.body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome? And the time?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 24}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "[1,2]"}}},
            ]},
            {"role": "model", "parts": [{"text": "Done."}]},
        ])
    );
}

#[test]
fn tool_result_lookup_errors() {
    let mut v = tool_conversation();
    v["messages"][3]["tool_call_id"] = json!("call_zzz");
    let msg = req_err(v);
    assert!(msg.contains("call_zzz"), "{msg}");
    // a tool result before the assistant call is unknown too
    let v = json!({"messages": [user("x"), {"role": "tool", "tool_call_id": "call_a", "content": "r"}]});
    assert!(req_err(v).contains("call_a"));
    let v = json!({"messages": [user("x"), {"role": "tool", "content": "r"}]});
    assert!(req_err(v).contains("tool_call_id"));
    let mut v = tool_conversation();
    v["messages"][1]["tool_calls"][1]["function"]["arguments"] = json!("{not json");
    assert!(req_err(v).contains("tool_calls[1]"));
    let mut v = tool_conversation();
    v["messages"][1]["tool_calls"][0]["function"]["arguments"] = json!("[1]");
    assert!(req_err(v).contains("arguments"));
    let mut v = tool_conversation();
    v["messages"][1]["tool_calls"][0]["function"] = json!({"arguments": "{}"});
    assert!(req_err(v).contains("name"));
}

#[test]
fn tools_with_schema_cleaning() {
    let call = req(json!({"messages": [user("x")], "tools": [
        {"type": "function", "function": {"name": "search", "description": "Search the web", "strict": true, "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "query": {"type": "string", "format": "uri", "description": "what"},
                "additionalProperties": {"type": ["string", "null"], "$comment": "a property with a tricky name"},
                "filters": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "properties": {"kind": {"const": "news"}, "when": {"type": "string", "format": "date-time"}}}},
                "mode": {"oneOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "integer", "minimum": 0}]},
            },
            "required": ["query"],
        }}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}, "additionalProperties": false}}},
        {"type": "function", "function": {"name": "ping"}},
    ]}));
    assert_eq!(
        call.body["tools"],
        json!([{"functionDeclarations": [
            {"name": "search", "description": "Search the web", "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "what"},
                    "additionalProperties": {"type": "string", "nullable": true},
                    "filters": {"type": "array", "items": {"type": "object",
                        "properties": {"kind": {"enum": ["news"]}, "when": {"type": "string", "format": "date-time"}}}},
                    "mode": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "integer", "minimum": 0}]},
                },
                "required": ["query"],
            }},
            {"name": "now"},
            {"name": "ping"},
        ]}])
    );
    assert!(call.body.get("toolConfig").is_none());
    assert!(req_err(json!({"messages": [user("x")], "tools": [{"type": "web_search"}]})).contains("tools[0]"));
    assert!(req_err(json!({"messages": [user("x")], "tools": {"a": 1}})).contains("array"));
}

#[test]
fn tool_choice() {
    let mode = |choice: Value| req(json!({"messages": [user("x")], "tool_choice": choice})).body["toolConfig"].clone();
    assert_eq!(mode(json!("auto")), json!({"functionCallingConfig": {"mode": "AUTO"}}));
    assert_eq!(mode(json!("none")), json!({"functionCallingConfig": {"mode": "NONE"}}));
    assert_eq!(
        mode(json!("required")),
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        mode(json!({"type": "function", "function": {"name": "search"}})),
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search"]}})
    );
    assert!(req_err(json!({"messages": [user("x")], "tool_choice": "sometimes"})).contains("sometimes"));
    assert!(req_err(json!({"messages": [user("x")], "tool_choice": {"type": "function"}})).contains("tool_choice"));
}

#[test]
fn generation_config() {
    let call = req(
        json!({"messages": [user("x")], "temperature": 0.2, "top_p": 0.9, "max_tokens": 100,
        "stop": "END", "n": 1, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "response_format": {"type": "json_object"}}),
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"], "candidateCount": 1,
            "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5, "responseMimeType": "application/json"})
    );
    let call = req(
        json!({"messages": [user("x")], "max_tokens": 100, "max_completion_tokens": 50, "stop": ["a", "b"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema": {
            "type": "object", "additionalProperties": false, "$schema": "x",
            "properties": {"n": {"type": "integer", "additionalProperties": false}}}}}}),
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"maxOutputTokens": 50, "stopSequences": ["a", "b"], "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}})
    );
    let call = req(json!({"messages": [user("x")], "temperature": null, "response_format": {"type": "text"}}));
    assert!(call.body.get("generationConfig").is_none());
    assert!(req_err(json!({"messages": [user("x")], "n": 2})).contains("n"));
    assert!(req_err(json!({"messages": [user("x")], "temperature": "hot"})).contains("temperature"));
    assert!(req_err(json!({"messages": [user("x")], "max_tokens": -1})).contains("max_tokens"));
    assert!(req_err(json!({"messages": [user("x")], "stop": [1]})).contains("stop"));
    assert!(req_err(json!({"messages": [user("x")], "response_format": {"type": "xml"}})).contains("response_format"));
    let v = json!({"messages": [user("x")], "response_format": {"type": "json_schema", "json_schema": {"name": "r"}}});
    assert!(req_err(v).contains("schema"));
}

// ---------- responses ----------

const TEXT_RESPONSE: &str = r#"{
  "candidates": [{
    "content": {"role": "model", "parts": [
      {"text": "Let me think about it", "thought": true},
      {"text": "Hello"}, {"text": ", world!"}
    ]},
    "finishReason": "STOP", "index": 0,
    "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
  }],
  "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 57,
    "cachedContentTokenCount": 4, "thoughtsTokenCount": 40},
  "modelVersion": "gemini-2.5-flash", "responseId": "abc"
}"#;

#[test]
fn text_response() {
    let (v, usage) = chat_response(TEXT_RESPONSE.as_bytes(), "chatcmpl-1", "gemini-2.5-flash", 1700000000).unwrap();
    let want = Usage {
        prompt_tokens: 12,
        completion_tokens: 45,
        cached_tokens: 4,
        reasoning_tokens: 40,
    };
    assert_eq!(usage, want);
    assert_eq!(
        v,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000u64, "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world!"}, "finish_reason": "stop"}],
            "usage": want.to_json(),
        })
    );
    assert_eq!(v["usage"]["total_tokens"], 57);
}

#[test]
fn function_call_response() {
    let body = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_time"}},
    ]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 10}});
    let (v, usage) = chat_response(body.to_string().as_bytes(), "r1", "m", 1).unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 30,
            completion_tokens: 10,
            ..Usage::default()
        }
    );
    assert_eq!(
        v["choices"][0],
        json!({"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_r1_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_r1_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ]}})
    );
}

#[test]
fn finish_reasons() {
    let resp = |reason: &str| {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        chat_response(body.to_string().as_bytes(), "r", "m", 1).unwrap().0["choices"][0]["finish_reason"].clone()
    };
    assert_eq!(resp("STOP"), "stop");
    assert_eq!(resp("MAX_TOKENS"), "length");
    for r in [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "OTHER",
    ] {
        assert_eq!(resp(r), "content_filter", "{r}");
    }
    // a safety stop without content
    let body = json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]});
    let (v, _) = chat_response(body.to_string().as_bytes(), "r", "m", 1).unwrap();
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": null})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn blocked_prompt_response() {
    let body = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}});
    let (v, usage) = chat_response(body.to_string().as_bytes(), "r", "m", 1).unwrap();
    assert_eq!(usage.prompt_tokens, 8);
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "content_filter"}])
    );
}

#[test]
fn bad_responses() {
    for body in [
        &b"not json"[..],
        b"",
        b"[]",
        b"{}",
        b"\xff\xfe",
        br#"{"candidates": 3}"#,
        br#"{"candidates": []}"#,
    ] {
        assert!(
            matches!(chat_response(body, "r", "m", 1), Err(TranslateError::BadResponse(_))),
            "{body:?}"
        );
    }
    let body = br#"{"candidates":[{"content":{"parts":[{"functionCall":{"args":{}}}]}}]}"#;
    assert!(matches!(
        chat_response(body, "r", "m", 1),
        Err(TranslateError::BadResponse(_))
    ));
    let body = br#"{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}"#;
    match chat_response(body, "r", "m", 1) {
        Err(TranslateError::BadResponse(m)) => assert!(m.contains("Internal error")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_messages() {
    let body = br#"{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}"#;
    assert_eq!(error_message(body).as_deref(), Some("API key not valid."));
    let body = br#"[{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]"#;
    assert_eq!(error_message(body).as_deref(), Some("Resource exhausted"));
    assert_eq!(
        error_message(br#"{"error": {"code": 503, "status": "UNAVAILABLE"}}"#).as_deref(),
        Some("UNAVAILABLE")
    );
    assert_eq!(error_message(b"<html>502</html>"), None);
    assert_eq!(error_message(br#"{"candidates": []}"#), None);
    assert_eq!(error_message(b"[]"), None);
}

// ---------- embeddings ----------

#[test]
fn embeddings_requests() {
    let call = embeddings_request(&json!({"input": "hello", "model": "x"}), "text-embedding-004").unwrap();
    assert_eq!(call.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(
        call.body,
        json!({"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}}]})
    );
    let v = json!({"input": ["a", "bc"], "dimensions": 256, "encoding_format": "float"});
    let call = embeddings_request(&v, "models/gemini-embedding-001").unwrap();
    assert_eq!(call.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert_eq!(
        call.body["requests"],
        json!([
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "bc"}]}, "outputDimensionality": 256},
        ])
    );
    assert_eq!(embeddings_input_chars(&v), 3);
    assert_eq!(embeddings_input_chars(&json!({"input": "héllo"})), 5);
    assert_eq!(embeddings_input_chars(&json!({"input": 5})), 0);
    for bad in [
        json!({}),
        json!({"input": []}),
        json!({"input": [[1, 2, 3]]}),
        json!({"input": ["ok", 5]}),
        json!({"input": ""}),
        json!({"input": 5}),
        json!({"input": "x", "dimensions": 0}),
        json!({"input": "x", "dimensions": "big"}),
        json!({"input": "x", "encoding_format": "int8"}),
        json!("x"),
    ] {
        assert!(
            matches!(embeddings_request(&bad, "e"), Err(TranslateError::BadRequest(_))),
            "{bad}"
        );
    }
    assert!(embeddings_request(&json!({"input": "x", "encoding_format": "base64"}), "e").is_ok());
    assert!(embeddings_request(&json!({"input": "x"}), "a/b").is_err());
}

#[test]
fn embeddings_responses() {
    let body = br#"{"embeddings": [{"values": [0.1, -0.2, 3]}, {"values": [0.5, 0.25, 0]}]}"#;
    let (v, usage) = embeddings_response(body, "text-embedding-004", 9).unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 3,
            ..Usage::default()
        }
    );
    assert_eq!(
        v,
        json!({"object": "list", "model": "text-embedding-004",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 3]},
                {"object": "embedding", "index": 1, "embedding": [0.5, 0.25, 0]},
            ],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    );
    assert_eq!(embeddings_response(body, "m", 8).unwrap().1.prompt_tokens, 2);
    assert_eq!(embeddings_response(body, "m", 0).unwrap().1.prompt_tokens, 0);
    for bad in [
        &b"nope"[..],
        b"{}",
        br#"{"embeddings": {}}"#,
        br#"{"embeddings": [{"values": ["x"]}]}"#,
        br#"{"embeddings": [{}]}"#,
    ] {
        assert!(matches!(
            embeddings_response(bad, "m", 1),
            Err(TranslateError::BadResponse(_))
        ));
    }
}
