//! Tests of the Gemini stream translation.

use super::*;
use bytes::Bytes;
use serde_json::json;

// ---------- streaming ----------

fn sse(events: &[Value]) -> String {
    events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect()
}

fn text_stream() -> String {
    sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "thinking", "thought": true}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1}}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo ü"}]}, "index": 0}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "thoughtsTokenCount": 7}}),
    ])
}

/// The JSON of each `data:` event (None for `[DONE]`).
fn parse_out(out: &[Bytes]) -> Vec<Option<Value>> {
    let all: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    let text = String::from_utf8(all).unwrap();
    assert!(text.ends_with("\n\n"));
    text.split_terminator("\n\n")
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap();
            (data != "[DONE]").then(|| serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn run_stream(t: &mut StreamTranslator, input: &[u8], step: usize) -> Result<Vec<Bytes>, TranslateError> {
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        out.extend(t.push(piece)?);
    }
    out.extend(t.finish()?);
    Ok(out)
}

#[test]
fn text_stream_chunks() {
    let mut t = StreamTranslator::new("chatcmpl-9", "gemini-2.5-flash", 42, true);
    let out = run_stream(&mut t, text_stream().as_bytes(), usize::MAX).unwrap();
    let want_usage = Usage {
        prompt_tokens: 9,
        completion_tokens: 10,
        cached_tokens: 0,
        reasoning_tokens: 7,
    };
    assert_eq!(t.usage(), want_usage);
    let head =
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 42, "model": "gemini-2.5-flash"});
    let chunk = |delta: Value, finish: Value| {
        let mut c = head.clone();
        c["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
        c["usage"] = Value::Null;
        Some(c)
    };
    let mut usage_chunk = head.clone();
    usage_chunk["choices"] = json!([]);
    usage_chunk["usage"] = want_usage.to_json();
    assert_eq!(
        parse_out(&out),
        vec![
            chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo ü"}), Value::Null),
            chunk(json!({}), json!("stop")),
            Some(usage_chunk),
            None,
        ]
    );
    assert_eq!(out.last().unwrap().as_ref(), super::super::SSE_DONE);
    // finish is idempotent once done
    assert!(t.finish().unwrap().is_empty());
}

#[test]
fn stream_without_usage_chunk() {
    let mut t = StreamTranslator::new("c", "m", 1, false);
    let events = parse_out(&run_stream(&mut t, text_stream().as_bytes(), 7).unwrap());
    assert_eq!(events.len(), 4);
    assert!(events
        .iter()
        .flatten()
        .all(|e| e.get("usage").is_none() && e["choices"].as_array().unwrap().len() == 1));
    assert_eq!(t.usage().prompt_tokens, 9);
}

#[test]
fn byte_at_a_time_equals_all_at_once() {
    let input = format!(
        ": keep-alive comment\n\n{}data: {}\n\n",
        text_stream().replace("\r\n", "\n"),
        json!({"usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4}})
    );
    let all = run_stream(
        &mut StreamTranslator::new("c", "m", 1, true),
        input.as_bytes(),
        usize::MAX,
    )
    .unwrap();
    for step in [1, 2, 3, 5, 13, 64] {
        let pieces = run_stream(&mut StreamTranslator::new("c", "m", 1, true), input.as_bytes(), step).unwrap();
        assert_eq!(pieces.concat(), all.concat(), "step {step}");
    }
    // the usage of the last event that has one wins
    let events = parse_out(&all);
    assert_eq!(events[3].as_ref().unwrap()["usage"]["completion_tokens"], 4);
}

#[test]
fn sse_framing_variants() {
    // \r\n, comments, other fields, no space after "data:", multi-line data, several events in one push
    let body = json!({"candidates": [{"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"}]}).to_string();
    let (left, right) = body.split_at(body.len() / 2);
    let input = format!(
        ":comment\r\nevent: message\r\nid: 1\r\ndata:{left}\r\ndata: {right}\r\n\r\nretry: 10\r\n\r\n: bye\r\n"
    );
    let mut t = StreamTranslator::new("c", "m", 1, false);
    let mut out = t.push(input.as_bytes()).unwrap();
    assert_eq!(out.len(), 2);
    out.extend(t.finish().unwrap());
    let events = parse_out(&out);
    assert_eq!(
        events[0].as_ref().unwrap()["choices"][0]["delta"],
        json!({"role": "assistant", "content": "A"})
    );
    assert_eq!(events[1].as_ref().unwrap()["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[2], None);
}

#[test]
fn last_event_without_blank_line() {
    let input = format!(
        "data: {}",
        json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]})
    );
    let mut t = StreamTranslator::new("c", "m", 1, false);
    assert!(t.push(input.as_bytes()).unwrap().is_empty());
    let events = parse_out(&t.finish().unwrap());
    assert_eq!(events[1].as_ref().unwrap()["choices"][0]["finish_reason"], "length");
}

#[test]
fn tool_call_stream() {
    let input = sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_time", "args": {}}}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 15}}),
    ]);
    let mut t = StreamTranslator::new("x1", "m", 1, false);
    let events = parse_out(&run_stream(&mut t, input.as_bytes(), 1).unwrap());
    let delta = |i: usize| events[i].as_ref().unwrap()["choices"][0]["delta"].clone();
    assert_eq!(delta(0), json!({"role": "assistant", "content": "Checking."}));
    let call = |i: usize, name: &str, args: &str| json!({"index": i, "id": format!("call_x1_{i}"), "type": "function", "function": {"name": name, "arguments": args}});
    assert_eq!(
        delta(1),
        json!({"tool_calls": [call(0, "get_weather", r#"{"city":"Paris"}"#), call(1, "get_weather", r#"{"city":"Rome"}"#)]})
    );
    assert_eq!(delta(2), json!({"tool_calls": [call(2, "get_time", "{}")]}));
    assert_eq!(events[3].as_ref().unwrap()["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(events.len(), 5);
    assert_eq!(
        t.usage(),
        Usage {
            prompt_tokens: 20,
            completion_tokens: 15,
            ..Usage::default()
        }
    );
}

#[test]
fn blocked_prompt_stream() {
    let input = sse(&[json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 5}})]);
    let mut t = StreamTranslator::new("c", "m", 1, true);
    let events = parse_out(&run_stream(&mut t, input.as_bytes(), 4).unwrap());
    let first = events[0].as_ref().unwrap();
    assert_eq!(
        first["choices"][0],
        json!({"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"})
    );
    assert_eq!(events[1].as_ref().unwrap()["usage"]["prompt_tokens"], 5);
}

#[test]
fn cut_stream_fails() {
    let full = text_stream();
    // the stream stops before the finishReason event
    let cut = full.rsplit_once("data: ").unwrap().0;
    let mut t = StreamTranslator::new("c", "m", 1, true);
    assert!(!t.push(cut.as_bytes()).unwrap().is_empty());
    assert!(matches!(t.finish(), Err(TranslateError::BadResponse(_))));
    // calling finish again still fails
    assert!(t.finish().is_err());
    // the stream stops in the middle of the last event's JSON
    let mut t = StreamTranslator::new("c", "m", 1, true);
    t.push(&full.as_bytes()[..full.len() - 20]).unwrap();
    assert!(matches!(t.finish(), Err(TranslateError::BadResponse(_))));
    // nothing at all
    assert!(StreamTranslator::new("c", "m", 1, true).finish().is_err());
}

#[test]
fn garbage_streams_fail() {
    let mut t = StreamTranslator::new("c", "m", 1, false);
    assert!(matches!(
        t.push(b"data: \xff\xfe{}\n\n"),
        Err(TranslateError::BadResponse(_))
    ));
    let mut t = StreamTranslator::new("c", "m", 1, false);
    assert!(t.push(b"data: {not json}\n\n").is_err());
    let mut t = StreamTranslator::new("c", "m", 1, false);
    assert!(t.push(b"data: [1,2]\n\n").is_err());
    let mut t = StreamTranslator::new("c", "m", 1, false);
    assert!(t.push(b"<html>oops</html>").unwrap().is_empty());
    assert!(t.finish().is_err());
    // an error event in the middle of a stream
    let mut t = StreamTranslator::new("c", "m", 1, false);
    let e = t
        .push(b"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\"}}\n\n")
        .unwrap_err();
    assert!(e.to_string().contains("overloaded"), "{e}");
}

#[test]
fn random_bytes_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = text_stream().into_bytes();
    let alphabet = b"data: {}[]\":,\r\n\n\nabc\xff0123candidatesfinishReason";
    for round in 0..2000 {
        let mut t = StreamTranslator::new("c", "m", 1, round % 2 == 0);
        let mut input: Vec<u8> = if round % 3 == 0 { valid.clone() } else { Vec::new() };
        let len = (next() % 300) as usize;
        for _ in 0..len {
            let r = next();
            let b = if r % 2 == 0 {
                alphabet[(r as usize >> 8) % alphabet.len()]
            } else {
                (r >> 16) as u8
            };
            let at = (next() as usize) % (input.len() + 1);
            input.insert(at, b);
        }
        let mut pos = 0;
        while pos < input.len() {
            let n = 1 + (next() % 40) as usize;
            let end = (pos + n).min(input.len());
            let _ = t.push(&input[pos..end]);
            pos = end;
        }
        let _ = t.finish();
        let _ = t.usage();
        let _ = chat_response(&input, "c", "m", 1);
        let _ = error_message(&input);
    }
}
