//! Tests of the Anthropic stream translation.

use super::super::SSE_DONE;
use super::*;
use bytes::Bytes;
use serde_json::json;

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
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
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
