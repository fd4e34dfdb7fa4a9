use super::*;
use crate::ai::inbound::Encoder as _;
use crate::ai::Usage;
use bytes::Bytes;
use serde_json::{json, Value};

fn chat(req: Value) -> Value {
    to_chat(&req).unwrap()
}

#[test]
fn a_string_input_with_instructions_becomes_system_then_user() {
    let c = chat(
        json!({"model": "m", "input": "Hi", "instructions": "Be brief", "store": false,
        "metadata": {"k": "v"}, "max_output_tokens": 50, "temperature": 0.2, "stream": true}),
    );
    assert_eq!(
        c,
        json!({"model": "m", "stream": true, "temperature": 0.2, "max_completion_tokens": 50, "messages": [
            {"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]})
    );
    assert_eq!(
        untranslatable(&json!({"model": "m", "input": "Hi", "store": true})),
        None
    );
}

#[test]
fn items_become_messages_with_tool_calls_and_results() {
    let c = chat(json!({"model": "m", "input": [
        {"role": "developer", "content": "Rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
    ]}));
    let m = c["messages"].as_array().unwrap();
    assert_eq!(m.len(), 5, "{m:?}");
    assert_eq!(m[0], json!({"role": "system", "content": "Rules"}));
    assert_eq!(
        m[1]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}})
    );
    assert_eq!(
        m[1]["content"][2],
        json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}})
    );
    assert_eq!(m[2]["content"], "Checking");
    assert_eq!(m[2]["tool_calls"][0]["id"], "c1");
    assert_eq!(
        m[2]["tool_calls"][1]["function"],
        json!({"name": "get_time", "arguments": "{}"})
    );
    assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}));
    assert_eq!(m[4]["content"], json!([{"type": "text", "text": "noon"}]));
    // A function call with no assistant text before it is an assistant message of its own.
    let c = chat(json!({"model": "m", "input": [{"role": "user", "content": "x"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]}));
    assert_eq!(c["messages"][1]["content"], Value::Null);
    assert_eq!(c["messages"][1]["role"], "assistant");
}

#[test]
fn tools_formats_and_reasoning_take_the_chat_form() {
    let c = chat(json!({"model": "m", "input": "x",
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"}, "user": "u1"}));
    assert_eq!(
        c["tools"],
        json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}}])
    );
    assert_eq!(c["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
    assert_eq!(
        c["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        (&c["reasoning_effort"], &c["verbosity"], &c["user"]),
        (&json!("low"), &json!("low"), &json!("u1"))
    );
    assert_eq!(c["parallel_tool_calls"], false);
    let c = chat(
        json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}, "tool_choice": "required",
            "tools": [{"type": "function", "name": "f"}]}),
    );
    assert_eq!(
        (&c["response_format"]["type"], &c["tool_choice"]),
        (&json!("json_object"), &json!("required"))
    );
    assert!(
        chat(json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}))
            .get("response_format")
            .is_none()
    );
    // Chat refuses these without tools.
    let c = chat(json!({"model": "m", "input": "x", "parallel_tool_calls": false, "tool_choice": "none"}));
    assert!(
        c.get("parallel_tool_calls").is_none() && c.get("tool_choice").is_none(),
        "{c}"
    );
}

#[test]
fn what_chat_cannot_say_is_named_and_left_out() {
    let req = json!({"model": "m", "previous_response_id": "resp_1", "background": true, "top_logprobs": 2,
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": []}],
        "tool_choice": {"type": "web_search_preview"}, "novel": 1,
        "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"},
                                               {"type": "input_file", "file_id": "file-2"},
                                               {"type": "input_text", "text": "ok"}]},
                  {"type": "item_reference", "id": "msg_1"}, {"type": "web_search_call", "id": "ws"}]});
    let c = chat(req.clone());
    assert_eq!(
        c["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "ok"}]}])
    );
    assert_eq!(c["tools"].as_array().map(Vec::len), Some(1));
    let why = untranslatable(&req).unwrap();
    for named in [
        "`previous_response_id`",
        "`background`",
        "`top_logprobs`",
        "`web_search`, `file_search`",
        "`tool_choice` \"web_search_preview\"",
        "`novel`",
        "`file_id`",
        "by `file_id` or `file_url`",
        "`item_reference`",
        "`web_search_call`",
    ] {
        assert!(why.contains(named), "{named} missing from: {why}");
    }
    // Nothing to say as chat at all: only a native target can serve it.
    let only_state = json!({"model": "m", "previous_response_id": "resp_1", "input": []});
    assert!(to_chat(&only_state).is_ok());
    assert!(untranslatable(&json!({"model": "m", "input": []}))
        .unwrap()
        .contains("`input` is required"));
}

#[test]
fn only_a_body_that_is_no_responses_request_is_refused_at_once() {
    assert!(to_chat(&json!({"model": "m", "input": 3})).is_err());
    assert!(to_chat(&json!({"model": "m", "input": ["text"]})).is_err());
    // OpenAI accepts it natively; only a translated target refuses it.
    assert!(to_chat(&json!({"model": "m", "input": [{"role": "tool", "content": "x"}]})).is_ok());
}

fn chat_answer(message: Value, finish: &str) -> Value {
    json!({"id": "chatcmpl-x", "object": "chat.completion", "created": 1700000000, "model": "claude-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}})
}

#[test]
fn a_chat_answer_becomes_a_response() {
    let req = json!({"model": "alias", "input": "x", "instructions": "Be brief", "temperature": 0.5,
        "tools": [{"type": "function", "name": "get_weather"}]});
    let msg = json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]});
    let r = from_chat(&chat_answer(msg, "tool_calls"), &req, "R1");
    assert_eq!(
        (&r["id"], &r["object"], &r["status"]),
        (&json!("resp_R1"), &json!("response"), &json!("completed"))
    );
    assert_eq!(
        (&r["model"], &r["created_at"]),
        (&json!("claude-x"), &json!(1700000000))
    );
    assert_eq!(
        r["output"][0]["content"],
        json!([{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        r["output"][1],
        json!({"id": "fc_R1_0", "type": "function_call", "status": "completed", "call_id": "call_1",
               "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 11, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 5,
               "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16})
    );
    assert_eq!(
        (&r["instructions"], &r["temperature"], &r["store"]),
        (&json!("Be brief"), &json!(0.5), &json!(false))
    );
    assert_eq!(
        (&r["tools"][0]["name"], &r["tool_choice"], &r["top_p"]),
        (&json!("get_weather"), &json!("auto"), &json!(1.0))
    );
    assert_eq!(r["text"], json!({"format": {"type": "text"}}));
    let cut = from_chat(
        &chat_answer(json!({"role": "assistant", "content": "Once upon"}), "length"),
        &req,
        "R2",
    );
    assert_eq!(
        (&cut["status"], &cut["incomplete_details"]),
        (&json!("incomplete"), &json!({"reason": "max_output_tokens"}))
    );
    assert_eq!(cut["output"][0]["status"], "incomplete");
    let calls_only = from_chat(
        &chat_answer(json!({"role": "assistant", "content": null, "tool_calls": []}), "stop"),
        &req,
        "R3",
    );
    assert_eq!(calls_only["output"], json!([]));
}

#[test]
fn native_usage_is_read_from_the_response() {
    let body = br#"{"id": "resp_1", "usage": {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 13}}"#;
    let u = usage_of(body);
    assert_eq!(
        (
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.reasoning_tokens
        ),
        (9, 3, 4, 1)
    );
    assert_eq!(usage_of(b"not json"), Usage::default());
}

/// The events' (type, data), checking the SSE framing and that sequence numbers count from 0.
fn events(out: &[Bytes]) -> Vec<(String, Value)> {
    let mut seq = 0;
    out.iter()
        .map(|b| {
            let s = std::str::from_utf8(b).unwrap();
            let (head, data) = s.strip_suffix("\n\n").unwrap().split_once('\n').unwrap();
            let kind = head.strip_prefix("event: ").unwrap().to_string();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!((&v["type"], &v["sequence_number"]), (&json!(kind), &json!(seq)), "{s}");
            seq += 1;
            (kind, v)
        })
        .collect()
}

fn delta(d: Value, finish: Option<&str>) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})
}

#[test]
fn a_text_stream_is_encoded_as_typed_events() {
    let mut enc = Encoder::new(&json!({"model": "alias", "input": "x"}), "R1", "gpt-x");
    let mut out = Vec::new();
    enc.chunk(&delta(json!({"role": "assistant", "content": ""}), None), &mut out);
    enc.chunk(&delta(json!({"content": "Hel"}), None), &mut out);
    enc.chunk(&delta(json!({"content": "lo"}), None), &mut out);
    enc.chunk(&delta(json!({}), Some("stop")), &mut out);
    enc.chunk(&json!({"choices": [], "usage": {"prompt_tokens": 1}}), &mut out);
    let usage = Usage {
        prompt_tokens: 11,
        completion_tokens: 5,
        cached_tokens: 4,
        reasoning_tokens: 0,
    };
    enc.finish(&usage, &mut out);
    let ev = events(&out);
    let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(ev[0].1["response"]["status"], "in_progress");
    assert_eq!(
        (&ev[4].1["delta"], &ev[4].1["item_id"], &ev[4].1["output_index"]),
        (&json!("Hel"), &json!("msg_R1"), &json!(0))
    );
    assert_eq!(ev[6].1["text"], "Hello");
    let done = &ev[9].1["response"];
    assert_eq!(
        (&done["id"], &done["status"], &done["model"]),
        (&json!("resp_R1"), &json!("completed"), &json!("gpt-x"))
    );
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(
        (&done["usage"]["input_tokens"], &done["usage"]["total_tokens"]),
        (&json!(11), &json!(16))
    );
}

#[test]
fn tool_calls_stream_as_function_call_items() {
    let mut enc = Encoder::new(&json!({"model": "m", "input": "x"}), "R1", "m");
    let mut out = Vec::new();
    enc.chunk(&delta(json!({"content": "Let me check."}), None), &mut out);
    for (i, (name, args)) in [
        ("get_weather", ["{\"city\"", ":\"Paris\"}"]),
        ("get_time", ["{\"tz\":", "\"CET\"}"]),
    ]
    .into_iter()
    .enumerate()
    {
        let start = json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
            "function": {"name": name, "arguments": ""}}]});
        enc.chunk(&delta(start, None), &mut out);
        for a in args {
            enc.chunk(
                &delta(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": a}}]}),
                    None,
                ),
                &mut out,
            );
        }
    }
    enc.chunk(&delta(json!({}), Some("tool_calls")), &mut out);
    enc.finish(&Usage::default(), &mut out);
    let ev = events(&out);
    let added: Vec<&Value> = ev
        .iter()
        .filter(|(k, _)| k == "response.output_item.added")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(added.len(), 3);
    assert_eq!(
        (&added[1]["item"]["type"], &added[1]["output_index"]),
        (&json!("function_call"), &json!(1))
    );
    assert_eq!(
        (&added[1]["item"]["call_id"], &added[1]["item"]["name"]),
        (&json!("call_0"), &json!("get_weather"))
    );
    let args_done: Vec<&Value> = ev
        .iter()
        .filter(|(k, _)| k == "response.function_call_arguments.done")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(args_done[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(
        (&args_done[1]["arguments"], &args_done[1]["item_id"]),
        (&json!("{\"tz\":\"CET\"}"), &json!("fc_R1_2"))
    );
    // Each item is done before the next is added.
    let order: Vec<&str> = ev
        .iter()
        .filter(|(k, _)| k.starts_with("response.output_item"))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        order,
        ["response.output_item.added", "response.output_item.done"].repeat(3)
    );
    let last = &ev.last().unwrap().1["response"];
    assert_eq!(last["output"][2]["arguments"], "{\"tz\":\"CET\"}");
    assert_eq!(last["output"][1]["status"], "completed");
}

#[test]
fn a_cut_answer_is_incomplete_and_a_failure_is_failed() {
    let mut enc = Encoder::new(&json!({"model": "m", "input": "x"}), "R1", "m");
    let mut out = Vec::new();
    enc.chunk(&delta(json!({"content": "Once"}), Some("length")), &mut out);
    enc.finish(&Usage::default(), &mut out);
    let (kind, last) = events(&out).pop().unwrap();
    assert_eq!(kind, "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");

    let mut out = Vec::new();
    let mut enc = Encoder::new(&json!({"model": "m", "input": "x"}), "R2", "m");
    enc.chunk(&delta(json!({"content": "Half"}), None), &mut out);
    enc.fail("provider claude: cut off", &mut out);
    let (kind, last) = events(&out).pop().unwrap();
    assert_eq!(kind, "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(
        last["response"]["error"],
        json!({"code": "server_error", "message": "provider claude: cut off"})
    );
    // Failing before anything was sent still opens with `response.created`.
    let mut out = Vec::new();
    Encoder::new(&json!({}), "R3", "m").fail("down", &mut out);
    let kinds: Vec<String> = events(&out).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["response.created", "response.in_progress", "response.failed"]);
}

#[test]
fn the_sniffer_reads_usage_and_text_split_anywhere() {
    let stream = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hel\"}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"lo\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":",
        "{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":5,",
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":16}}}\n\n"
    );
    for step in [1, 5, 64, 4096] {
        let mut s = sniffer();
        for part in stream.as_bytes().chunks(step) {
            s.push(part);
        }
        assert_eq!(s.text().as_str(), "Hello");
        let u = s.usage();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens),
            (11, 4, 5),
            "step {step}"
        );
        assert!(s.finished() && !s.failed());
    }
    let mut failed = sniffer();
    failed.push(b"data: {\"type\":\"response.failed\",\"response\":{\"usage\":null}}\n\n");
    assert!(failed.failed() && !failed.finished());
}
