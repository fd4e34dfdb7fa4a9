//! An Anthropic Messages request as a Chat Completions request.

use crate::ai::TranslateError;
use serde_json::{json, Map, Value};

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

/// Why the request cannot go to a provider other than Anthropic: the
/// server tools, Anthropic-hosted features and content blocks
/// ([`anthropic_only`]) it uses; None when it can.
pub(crate) fn untranslatable(req: &Value) -> Option<String> {
    let mut only_anthropic: Vec<String> = Vec::new();
    for t in req.get("tools").and_then(Value::as_array).into_iter().flatten() {
        if let Some(kind) = t.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
            only_anthropic.push(format!("server tool `{kind}`"));
        }
    }
    for key in ["container", "mcp_servers"] {
        if req.get(key).is_some_and(|v| !v.is_null()) {
            only_anthropic.push(format!("`{key}`"));
        }
    }
    let blocks = req
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten();
    for why in blocks.filter_map(anthropic_only) {
        if !only_anthropic.contains(&why) {
            only_anthropic.push(why);
        }
    }
    (!only_anthropic.is_empty()).then(|| format!("{} exist only at Anthropic", only_anthropic.join(", ")))
}

/// Why a content block cannot go to another provider: a type or source
/// only Anthropic knows (a server tool's use and result, a search result, a
/// file by id); None when it can. Such a block is left out of [`to_chat`]'s
/// request, never refused there, since the same request may still go to an
/// Anthropic target as it is.
fn anthropic_only(block: &Value) -> Option<String> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "text" | "tool_use" | "tool_result" | "thinking" | "redacted_thinking" => None,
        "image" | "document" => match block.pointer("/source/type").and_then(Value::as_str) {
            None | Some("base64" | "url") => None,
            Some("text") if kind == "document" => None,
            Some(other) => Some(format!("{kind} source `{other}`")),
        },
        other => Some(format!("content block `{other}`")),
    }
}

/// The text of a `system` or `tool_result` content: a string, or text blocks.
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A chat part carrying the block's `cache_control`, if any.
fn with_cache(mut part: Value, block: &Value) -> Value {
    if let (Some(cc), Some(o)) = (block.get("cache_control"), part.as_object_mut()) {
        o.insert("cache_control".into(), cc.clone());
    }
    part
}

/// An image or document block's source as a URL (data URL for base64).
fn source_url(block: &Value, at: &str) -> Result<String, TranslateError> {
    let src = block
        .get("source")
        .ok_or_else(|| bad(format!("{at}.source is required")))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = src.get("media_type").and_then(Value::as_str).unwrap_or_default();
            let data = src.get("data").and_then(Value::as_str).unwrap_or_default();
            Ok(format!("data:{media};base64,{data}"))
        }
        Some("url") => src
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{at}.source.url is required"))),
        other => Err(bad(format!(
            "{at}.source.type {other:?} cannot be sent to this provider; use base64 or url"
        ))),
    }
}

/// One user or assistant content block as a chat part; None for blocks
/// handled apart (tool use and results), dropped (thinking) or only
/// Anthropic's ([`anthropic_only`]).
fn part(block: &Value, at: &str) -> Result<Option<Value>, TranslateError> {
    if anthropic_only(block).is_some() {
        return Ok(None);
    }
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
    let p = match kind {
        "text" => json!({"type": "text", "text": block.get("text").and_then(Value::as_str).unwrap_or_default()}),
        "image" => json!({"type": "image_url", "image_url": {"url": source_url(block, at)?}}),
        "document" => {
            if block.pointer("/source/type").and_then(Value::as_str) == Some("text") {
                let text = block
                    .pointer("/source/data")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                json!({"type": "text", "text": text})
            } else {
                let mut file = Map::new();
                file.insert("file_data".into(), Value::String(source_url(block, at)?));
                if let Some(title) = block.get("title").and_then(Value::as_str) {
                    file.insert("filename".into(), Value::String(title.to_string()));
                }
                json!({"type": "file", "file": file})
            }
        }
        "tool_use" | "tool_result" | "thinking" | "redacted_thinking" => return Ok(None),
        other => {
            return Err(bad(format!(
                "{at}: content block type {other:?} cannot be sent to this provider"
            )))
        }
    };
    Ok(Some(with_cache(p, block)))
}

/// Appends the chat messages of one Anthropic message.
fn message(m: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let at = format!("messages[{i}]");
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    if role != "user" && role != "assistant" {
        return Err(bad(format!("{at}.role must be user or assistant")));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => return Err(bad(format!("{at}.content must be a string or a list of blocks"))),
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match b.get("type").and_then(Value::as_str) {
            Some("tool_use") if role == "assistant" => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": b.get("id").cloned().unwrap_or(Value::Null), "type": "function",
                    "function": {"name": b.get("name").cloned().unwrap_or(Value::Null), "arguments": input.to_string()}}));
            }
            Some("tool_result") if role == "user" => {
                let mut text = text_of(b.get("content"));
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(
                    json!({"role": "tool", "tool_call_id": b.get("tool_use_id").cloned().unwrap_or(Value::Null),
                                "content": text}),
                );
            }
            Some("tool_use" | "tool_result") => {
                return Err(bad(format!("{at}: a {role} message cannot hold this block")));
            }
            _ => parts.extend(part(b, &at)?),
        }
    }
    if role == "assistant" {
        let text: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text.join("")) }});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        if !(text.is_empty() && msg.get("tool_calls").is_none()) {
            out.push(msg);
        }
    } else if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// The reasoning effort a thinking budget stands for.
fn effort(budget: u64) -> &'static str {
    match budget {
        0..=2048 => "low",
        2049..=8192 => "medium",
        _ => "high",
    }
}

/// An Anthropic Messages request as a Chat Completions request.
pub(crate) fn to_chat(req: &Value) -> Result<Value, TranslateError> {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("model: field required"))?;
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("max_tokens: field required"))?;
    let list = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages: field required"))?;
    let mut messages = Vec::new();
    match req.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let parts: Vec<Value> = blocks
                .iter()
                .map(|b| {
                    with_cache(
                        json!({"type": "text", "text": text_of(Some(&Value::Array(vec![b.clone()])))}),
                        b,
                    )
                })
                .collect();
            messages.push(json!({"role": "system", "content": parts}));
        }
        Some(_) => return Err(bad("system must be a string or a list of text blocks")),
    }
    for (i, m) in list.iter().enumerate() {
        message(m, i, &mut messages)?;
    }
    let mut chat = Map::new();
    chat.insert("model".into(), json!(model));
    chat.insert("messages".into(), Value::Array(messages));
    chat.insert("max_tokens".into(), json!(max_tokens));
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stream", "stream"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), v.clone());
        }
    }
    if let Some(user) = req.pointer("/metadata/user_id").and_then(Value::as_str) {
        chat.insert("user".into(), json!(user));
    }
    if req.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled") {
        let budget = req
            .pointer("/thinking/budget_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        chat.insert("reasoning_effort".into(), json!(effort(budget)));
    }
    let tools: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str).is_none_or(|k| k == "custom"))
        .map(|t| {
            let mut f = json!({"name": t.get("name").cloned().unwrap_or(Value::Null),
                               "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            json!({"type": "function", "function": f})
        })
        .collect();
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = req.get("tool_choice").filter(|v| !v.is_null()) {
        let choice = match tc.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                json!({"type": "function", "function": {"name": tc.get("name").cloned().unwrap_or(Value::Null)}})
            }
            other => {
                return Err(bad(format!(
                    "tool_choice.type {other:?} is not one of auto, any, tool, none"
                )))
            }
        };
        chat.insert("tool_choice".into(), choice);
        if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            chat.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    Ok(Value::Object(chat))
}
