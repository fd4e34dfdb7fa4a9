//! A Chat Completions answer as an Anthropic message.

use crate::ai::Usage;
use serde_json::{json, Value};

/// Anthropic's `stop_reason` for a chat `finish_reason`.
pub(super) fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `usage` for chat usage: `input_tokens` without the cached
/// ones, which are `cache_read_input_tokens`.
pub(super) fn usage_json(u: &Usage) -> Value {
    let cached = u.cached_tokens.min(u.prompt_tokens);
    json!({"input_tokens": u.prompt_tokens - cached, "output_tokens": u.completion_tokens,
           "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0})
}

/// A tool call's arguments as the `input` object (`{}` when they are not JSON).
pub(super) fn input_of(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// A whole chat completion as an Anthropic message; `id` is the request id.
pub(crate) fn from_chat(answer: &Value, id: &str) -> Value {
    let choice = answer.pointer("/choices/0");
    let msg = choice.and_then(|c| c.get("message"));
    let mut content = Vec::new();
    if let Some(text) = msg
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        content.push(
            json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(Value::Null),
                            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                            "input": input_of(args)}),
        );
    }
    let usage = answer.get("usage").and_then(Usage::from_openai).unwrap_or_default();
    json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop_reason(choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_json(&usage),
    })
}
