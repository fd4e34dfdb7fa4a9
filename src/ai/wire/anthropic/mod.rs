//! Translation between OpenAI's Chat Completions API and Anthropic's Messages API.
//!
//! This module owns the wire format only: building the `/v1/messages` call from an OpenAI chat
//! request, turning Anthropic's answer (whole or streamed as SSE) back into OpenAI's
//! `chat.completion` / `chat.completion.chunk` objects, and reading Anthropic's token usage.
//! Sending, credentials, retries and the HTTP status of errors belong to the caller.
//!
//! Choices made:
//! - `system` and `developer` messages, wherever they appear, are joined (blank line between) into
//!   Anthropic's top-level `system`. Consecutive messages of the same role are merged into one
//!   (Anthropic requires alternating roles); `tool` messages become `tool_result` blocks of a user
//!   message, so consecutive tool results and a user message after them make one user turn. Empty
//!   text parts are dropped (Anthropic rejects them), as are messages left empty. A conversation
//!   that opens with the assistant (a greeting the application showed) gets a user turn before it
//!   holding only [`OPENING_USER_TEXT`], since Anthropic wants the user to speak first and refuses
//!   empty text blocks.
//! - JSON mode: Anthropic has none, so `response_format` `json_object` / `json_schema` appends an
//!   instruction to the system prompt asking for a JSON-only answer (with the schema when given).
//!   The answer is not validated.
//! - Tool call indexes: OpenAI's `tool_calls[].index` counts tool calls from 0 in the order they
//!   start; Anthropic's content block index (which also counts text and thinking blocks) is mapped
//!   onto it.
//! - `thinking` blocks are not exposed. `temperature` is passed unchanged (Anthropic allows 0..=1,
//!   so values above 1 get the provider's own 400). `n` other than 1 is refused.
//! - Streams: an `error` event, or anything that is not the documented format (non-UTF-8, invalid
//!   JSON, a delta for an unknown tool block), is an `Err`; events translated earlier in the same
//!   `push` are then dropped, since the call has failed. Unknown event types are ignored.

use super::{open_with_user, push_turn, ProviderCall, TranslateError, Turns, Usage, OPENING_USER_TEXT};
use serde_json::{json, Map, Value};

/// Default `max_tokens` when the client sets none (Anthropic requires one).
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The Messages API version sent in `anthropic-version`.
const API_VERSION: &str = "2023-06-01";
/// Token counts are clamped to this, so that sums cannot overflow whatever the provider sends.
const MAX_COUNT: u64 = 1 << 40;

fn bad_req(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}
fn bad_resp(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadResponse(msg.into())
}
fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}
/// A field that is present and not `null`.
fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

// ---------------------------------------------------------------- request

/// OpenAI chat request (already parsed JSON object) -> Anthropic Messages call for `model`.
pub(crate) fn chat_request(req: &Value, model: &str) -> Result<ProviderCall, TranslateError> {
    let req = req
        .as_object()
        .ok_or_else(|| bad_req("request must be a JSON object"))?;
    let messages = match req.get("messages") {
        Some(Value::Array(m)) if m.is_empty() => return Err(bad_req("`messages` must not be empty")),
        Some(Value::Array(m)) => m,
        Some(_) => return Err(bad_req("`messages` must be an array")),
        None => return Err(bad_req("`messages` is required")),
    };
    let mut system: Vec<String> = Vec::new();
    let mut turns = Turns::new();
    for (i, msg) in messages.iter().enumerate() {
        let content = msg.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match msg.get("role").map(|r| r.as_str().unwrap_or("(not a string)")) {
            Some("system" | "developer") => {
                system.push(text_of(content, i)?);
                continue;
            }
            Some("user") => ("user", content_blocks(content, i)?),
            Some("assistant") => {
                let mut blocks = content_blocks(content, i)?;
                match msg.get("tool_calls") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(calls)) => {
                        for call in calls {
                            blocks.push(tool_use_block(call, i)?);
                        }
                    }
                    Some(_) => return Err(bad_req(format!("messages[{i}].tool_calls must be an array"))),
                }
                ("assistant", blocks)
            }
            Some("tool") => {
                let id = str_at(msg, "tool_call_id");
                let id = id.ok_or_else(|| bad_req(format!("messages[{i}] (role tool) needs a `tool_call_id`")))?;
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": text_of(content, i)?});
                ("user", vec![block])
            }
            Some(other) => return Err(bad_req(format!("messages[{i}] has unknown role `{other}`"))),
            None => return Err(bad_req(format!("messages[{i}] has no `role`"))),
        };
        push_turn(&mut turns, role, blocks);
    }
    if turns.is_empty() {
        return Err(bad_req("`messages` has no user or assistant message with content"));
    }
    open_with_user(&mut turns, "user", json!({"type": "text", "text": OPENING_USER_TEXT}));

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let max_tokens = match present(req, "max_completion_tokens").or_else(|| present(req, "max_tokens")) {
        None => DEFAULT_MAX_TOKENS,
        Some(v) => v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad_req("`max_tokens` must be a positive integer"))?,
    };
    body.insert("max_tokens".into(), json!(max_tokens));
    let msgs = turns.into_iter().map(|(r, c)| json!({"role": r, "content": c}));
    body.insert("messages".into(), msgs.collect());

    system.extend(json_mode_instruction(present(req, "response_format"))?);
    system.retain(|s| !s.is_empty());
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(stop) = present(req, "stop") {
        let seqs = match stop {
            Value::String(_) => json!([stop]),
            Value::Array(a) if a.iter().all(Value::is_string) => stop.clone(),
            _ => return Err(bad_req("`stop` must be a string or an array of strings")),
        };
        body.insert("stop_sequences".into(), seqs);
    }
    type Check = fn(&Value) -> bool;
    let checks: [(&str, Check, &str); 4] = [
        ("temperature", Value::is_number, "a number"),
        ("top_p", Value::is_number, "a number"),
        ("stream", Value::is_boolean, "a boolean"),
        ("user", Value::is_string, "a string"),
    ];
    for (key, ok, what) in checks {
        let Some(v) = present(req, key) else { continue };
        if !ok(v) {
            return Err(bad_req(format!("`{key}` must be {what}")));
        }
        match key {
            "user" => body.insert("metadata".into(), json!({ "user_id": v })),
            _ => body.insert(key.into(), v.clone()),
        };
    }
    if present(req, "n").is_some_and(|n| n.as_u64() != Some(1)) {
        return Err(bad_req("`n` other than 1 is not supported by this provider"));
    }
    translate_tools(req, &mut body)?;

    Ok(ProviderCall {
        path: "/v1/messages".into(),
        headers: vec![("anthropic-version", API_VERSION.to_string())],
        body: Value::Object(body),
    })
}

/// Text of a system/developer/tool message: a string or an array of text parts (joined).
fn text_of(content: &Value, i: usize) -> Result<String, TranslateError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let texts = parts.iter().map(|part| match str_at(part, "type") {
                Some("text") => part_text(part, "text", i),
                _ => Err(bad_req(format!("messages[{i}] may only contain text parts"))),
            });
            Ok(texts.collect::<Result<Vec<_>, _>>()?.join("\n"))
        }
        _ => Err(bad_req(format!("messages[{i}].content must be a string or text parts"))),
    }
}

fn part_text(part: &Value, key: &str, i: usize) -> Result<String, TranslateError> {
    let text = str_at(part, key).map(str::to_string);
    text.ok_or_else(|| bad_req(format!("messages[{i}]: a `{key}` part needs a string `{key}`")))
}

/// User/assistant content -> Anthropic content blocks (text and images; empty texts dropped).
fn content_blocks(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let text_block = |t: String| (!t.is_empty()).then(|| json!({"type": "text", "text": t}));
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => return Ok(text_block(s.clone()).into_iter().collect()),
        Value::Array(parts) => parts,
        _ => return Err(bad_req(format!("messages[{i}].content must be a string or an array"))),
    };
    let mut blocks = Vec::new();
    for part in parts {
        let block = match str_at(part, "type") {
            Some("text") => text_block(part_text(part, "text", i)?),
            Some("refusal") => text_block(part_text(part, "refusal", i)?),
            Some("image_url") => Some(image_block(part, i)?),
            Some(other) => return Err(bad_req(format!("messages[{i}]: unsupported content part `{other}`"))),
            None => return Err(bad_req(format!("messages[{i}]: a content part has no string `type`"))),
        };
        blocks.extend(block);
    }
    Ok(blocks)
}

fn image_block(part: &Value, i: usize) -> Result<Value, TranslateError> {
    let url = match part.get("image_url") {
        Some(Value::String(u)) => u.as_str(),
        Some(obj) => str_at(obj, "url").unwrap_or_default(),
        None => "",
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').unwrap_or_default();
        match meta.strip_suffix(";base64") {
            Some(media_type) if media_type.starts_with("image/") => {
                Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}))
            }
            _ => Err(bad_req(format!("messages[{i}]: data URLs must be data:image/*;base64"))),
        }
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(bad_req(format!(
            "messages[{i}]: image_url must be http(s) or a data URL"
        )))
    }
}

fn tool_use_block(call: &Value, i: usize) -> Result<Value, TranslateError> {
    let err = |what: &str| bad_req(format!("messages[{i}].tool_calls: {what}"));
    let id = str_at(call, "id").ok_or_else(|| err("each call needs a string `id`"))?;
    let func = call.get("function").unwrap_or(&Value::Null);
    let name = str_at(func, "name").ok_or_else(|| err("each call needs a `function.name`"))?;
    let args = match func.get("arguments") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(err("`arguments` must be a JSON string")),
    };
    let input = match args.trim() {
        "" => json!({}),
        args => serde_json::from_str(args).map_err(|e| err(&format!("`{name}` arguments: invalid JSON: {e}")))?,
    };
    if !input.is_object() {
        return Err(err(&format!("`arguments` of `{name}` must be a JSON object")));
    }
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// The system-prompt instruction standing in for OpenAI's JSON mode, if one was asked for.
fn json_mode_instruction(format: Option<&Value>) -> Result<Option<String>, TranslateError> {
    const SCHEMA: &str = "It must conform to this JSON Schema:";
    const JSON_ONLY: &str = "Respond with a single valid JSON value only: no prose, no Markdown code fences.";
    match format.map(|f| str_at(f, "type")) {
        None | Some(Some("text")) => Ok(None),
        Some(Some("json_object")) => Ok(Some(JSON_ONLY.replace("value", "object"))),
        Some(Some("json_schema")) => match format.and_then(|f| f.pointer("/json_schema/schema")) {
            Some(schema) => Ok(Some(format!("{JSON_ONLY} {SCHEMA}\n{schema}"))),
            None => Ok(Some(JSON_ONLY.to_string())),
        },
        _ => Err(bad_req("unsupported `response_format.type`")),
    }
}

fn translate_tools(req: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let tools = match present(req, "tools") {
        None => return Ok(()),
        Some(Value::Array(t)) if t.is_empty() => return Ok(()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(bad_req("`tools` must be an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (j, tool) in tools.iter().enumerate() {
        let f = tool.get("function").unwrap_or(&Value::Null);
        let name = match (str_at(tool, "type"), str_at(f, "name")) {
            (Some("function"), Some(name)) => name,
            (Some("function"), None) => return Err(bad_req(format!("tools[{j}].function needs a `name`"))),
            _ => return Err(bad_req(format!("tools[{j}]: only `function` tools are supported"))),
        };
        let mut t = Map::new();
        t.insert("name".into(), json!(name));
        if let Some(d) = str_at(f, "description") {
            t.insert("description".into(), json!(d));
        }
        let schema = f.get("parameters").filter(|p| !p.is_null()).cloned();
        t.insert(
            "input_schema".into(),
            schema.unwrap_or(json!({"type": "object", "properties": {}})),
        );
        out.push(Value::Object(t));
    }
    let mut choice = match present(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => return Err(bad_req(format!("unknown `tool_choice` `{other}`"))),
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => return Err(bad_req("`tool_choice` object needs `function.name`")),
        },
    };
    if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    body.insert("tools".into(), Value::Array(out));
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    Ok(())
}

// ---------------------------------------------------------------- response

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Token counts from an Anthropic `usage` object. A stream reports them in `message_start` and again,
/// cumulatively, in `message_delta` (where absent, `null` or 0 fields must not erase earlier counts): keep the max.
fn read_usage(u: &Value, usage: &mut Usage) {
    let at = |key: &str| u64_at(u, key).unwrap_or(0).min(MAX_COUNT);
    let (input, read) = (at("input_tokens"), at("cache_read_input_tokens"));
    usage.prompt_tokens = usage
        .prompt_tokens
        .max(input + read + at("cache_creation_input_tokens"));
    usage.cached_tokens = usage.cached_tokens.max(read);
    usage.completion_tokens = usage.completion_tokens.max(at("output_tokens"));
}

/// Anthropic Messages response body -> OpenAI `chat.completion` object. `id` is Portico's id for the call
/// (use it as the OpenAI `id`), `model` is the model name to report, `created` unix seconds.
pub(crate) fn chat_response(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<(Value, Usage), TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_resp(format!("invalid JSON: {e}")))?;
    match str_at(&v, "type") {
        Some("message") => {}
        Some("error") => return Err(bad_resp(error_text(&v))),
        _ => return Err(bad_resp("expected an object of type `message`")),
    }
    let Some(blocks) = v.get("content").and_then(Value::as_array) else {
        return Err(bad_resp("`content` is not an array"));
    };
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for block in blocks {
        match str_at(block, "type") {
            Some("text") => {
                let t = str_at(block, "text").ok_or_else(|| bad_resp("text block without text"))?;
                text.get_or_insert_with(String::new).push_str(t);
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (str_at(block, "id"), str_at(block, "name")) else {
                    return Err(bad_resp("tool_use block without id or name"));
                };
                let args = block.get("input").map_or_else(|| "{}".to_string(), Value::to_string);
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}));
            }
            _ => {} // thinking, redacted_thinking, server tool blocks: not exposed
        }
    }
    let mut usage = Usage::default();
    read_usage(v.get("usage").unwrap_or(&Value::Null), &mut usage);
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let reason = finish_reason(str_at(&v, "stop_reason"));
    Ok((
        super::sse::completion(id, model, created, message, reason, &usage),
        usage,
    ))
}

/// `error.message` of an Anthropic error object.
fn error_text(v: &Value) -> &str {
    v.pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("error without message")
}

/// The human-readable reason from an Anthropic error body ({"type":"error","error":{"type","message"}}), if any.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some(v.get("error")?.get("message")?.as_str()?.to_string())
}

mod stream;
pub(crate) use stream::StreamTranslator;

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
