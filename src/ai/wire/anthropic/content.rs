//! OpenAI message content -> Anthropic content blocks (a child module of
//! `anthropic`): text, images, PDF files as `document` blocks, tool calls and
//! results, and the `cache_control` marks that carry over onto them.

use super::super::TranslateError;
use super::{bad_req, str_at};
use serde_json::{json, Value};

/// One piece of text of a system, developer or tool message, with its cache mark.
pub(super) type Text = (String, Option<Value>);

/// The `cache_control` of a content part or message, checked: Anthropic takes
/// `{"type": "ephemeral"}`, optionally with a `ttl`, and passes it on as is.
pub(super) fn cache_control(v: &Value, i: usize) -> Result<Option<Value>, TranslateError> {
    match v.get("cache_control") {
        None | Some(Value::Null) => Ok(None),
        Some(cc) if str_at(cc, "type") == Some("ephemeral") => Ok(Some(cc.clone())),
        Some(_) => Err(bad_req(format!(
            "messages[{i}]: `cache_control` must be {{\"type\": \"ephemeral\"}}"
        ))),
    }
}

/// `block` with `cache_control` set, when there is one.
pub(super) fn with_cache(mut block: Value, cc: Option<Value>) -> Value {
    if let (Some(cc), Some(obj)) = (cc, block.as_object_mut()) {
        obj.insert("cache_control".into(), cc);
    }
    block
}

/// A message's own `cache_control` marks its last block, unless that has one.
pub(super) fn cache_last(blocks: &mut [Value], cc: Option<Value>) {
    if let (Some(cc), Some(Value::Object(last))) = (cc, blocks.last_mut()) {
        last.entry("cache_control").or_insert(cc);
    }
}

/// The text pieces of a system, developer or tool message: a string or text parts.
pub(super) fn texts_of(content: &Value, i: usize) -> Result<Vec<Text>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![(s.clone(), None)]),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match str_at(part, "type") {
                Some("text") => Ok((part_text(part, "text", i)?, cache_control(part, i)?)),
                _ => Err(bad_req(format!("messages[{i}] may only contain text parts"))),
            })
            .collect(),
        _ => Err(bad_req(format!("messages[{i}].content must be a string or text parts"))),
    }
}

fn part_text(part: &Value, key: &str, i: usize) -> Result<String, TranslateError> {
    let text = str_at(part, key).map(str::to_string);
    text.ok_or_else(|| bad_req(format!("messages[{i}]: a `{key}` part needs a string `{key}`")))
}

/// User/assistant content -> Anthropic content blocks (empty texts dropped: Anthropic refuses them).
pub(super) fn content_blocks(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let text_block = |t: String, cc| (!t.is_empty()).then(|| with_cache(json!({"type": "text", "text": t}), cc));
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => return Ok(text_block(s.clone(), None).into_iter().collect()),
        Value::Array(parts) => parts,
        _ => return Err(bad_req(format!("messages[{i}].content must be a string or an array"))),
    };
    let mut blocks = Vec::new();
    for part in parts {
        let cc = cache_control(part, i)?;
        let block = match str_at(part, "type") {
            Some("text") => text_block(part_text(part, "text", i)?, cc),
            Some("refusal") => text_block(part_text(part, "refusal", i)?, cc),
            Some("image_url") => Some(with_cache(image_block(part, i)?, cc)),
            Some("file") => Some(with_cache(file_block(part, i)?, cc)),
            Some(other) => return Err(bad_req(format!("messages[{i}]: unsupported content part `{other}`"))),
            None => return Err(bad_req(format!("messages[{i}]: a content part has no string `type`"))),
        };
        blocks.extend(block);
    }
    Ok(blocks)
}

/// `(media type, base64 data)` of a `data:<type>;base64,<data>` URL.
fn base64_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

fn image_block(part: &Value, i: usize) -> Result<Value, TranslateError> {
    let url = match part.get("image_url") {
        Some(Value::String(u)) => u.as_str(),
        Some(obj) => str_at(obj, "url").unwrap_or_default(),
        None => "",
    };
    if url.starts_with("data:") {
        match base64_data_url(url) {
            Some((media_type, data)) if media_type.starts_with("image/") => {
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

/// A `file` part: a PDF becomes a `document` block (its `filename` the title), an image an `image` block.
fn file_block(part: &Value, i: usize) -> Result<Value, TranslateError> {
    let file = part.get("file").unwrap_or(&Value::Null);
    let url = match (str_at(file, "file_data"), str_at(file, "file_id")) {
        (Some(url), _) => url,
        (None, Some(_)) => {
            return Err(bad_req(format!(
                "messages[{i}]: `file_id` (a file uploaded to OpenAI) cannot be sent to Anthropic; \
                 send the file inline as `file_data`"
            )))
        }
        (None, None) => return Err(bad_req(format!("messages[{i}]: a `file` part needs `file_data`"))),
    };
    let Some((media_type, data)) = base64_data_url(url) else {
        return Err(bad_req(format!(
            "messages[{i}]: `file_data` must be a base64 data URL (data:application/pdf;base64,...)"
        )));
    };
    let source = json!({"type": "base64", "media_type": media_type, "data": data});
    match media_type {
        "application/pdf" => {
            let mut doc = json!({"type": "document", "source": source});
            if let Some(name) = str_at(file, "filename").filter(|n| !n.is_empty()) {
                doc["title"] = json!(name);
            }
            Ok(doc)
        }
        m if m.starts_with("image/") => Ok(json!({"type": "image", "source": source})),
        other => Err(bad_req(format!(
            "messages[{i}]: files of type {other} are not supported for Anthropic models (PDF and images are)"
        ))),
    }
}

pub(super) fn tool_use_block(call: &Value, i: usize) -> Result<Value, TranslateError> {
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

/// A `tool` message -> a `tool_result` block (its text parts joined; a cache mark on any part marks the block).
pub(super) fn tool_result_block(msg: &Value, i: usize) -> Result<Value, TranslateError> {
    let id = str_at(msg, "tool_call_id");
    let id = id.ok_or_else(|| bad_req(format!("messages[{i}] (role tool) needs a `tool_call_id`")))?;
    let texts = texts_of(msg.get("content").unwrap_or(&Value::Null), i)?;
    let cc = texts.iter().rev().find_map(|(_, cc)| cc.clone());
    let cc = cc.or(cache_control(msg, i)?);
    let text: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
    let block = json!({"type": "tool_result", "tool_use_id": id, "content": text.join("\n")});
    Ok(with_cache(block, cc))
}

/// Anthropic's `system`: one string (messages joined by a blank line, parts by
/// a newline), or, when any piece carries a cache mark, one text block per piece.
pub(super) fn system_value(messages: Vec<Vec<Text>>) -> Option<Value> {
    if messages.iter().flatten().all(|(_, cc)| cc.is_none()) {
        let joined = messages.iter().map(|m| {
            let texts: Vec<&str> = m.iter().map(|(t, _)| t.as_str()).collect();
            texts.join("\n")
        });
        let texts: Vec<String> = joined.filter(|t| !t.is_empty()).collect();
        return (!texts.is_empty()).then(|| json!(texts.join("\n\n")));
    }
    let text_block = |(t, cc): Text| with_cache(json!({"type": "text", "text": t}), cc);
    let blocks = messages.into_iter().flatten().filter(|(t, _)| !t.is_empty());
    Some(blocks.map(text_block).collect())
}
