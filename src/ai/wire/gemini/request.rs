//! The OpenAI chat request -> Gemini's `generateContent` call (part of the Gemini adapter, whose docs
//! list the choices made).

use super::super::params::{reasoning_budget, refuse_unsupported, NOWHERE};
use super::super::{open_with_user, push_turn, ProviderCall, TranslateError, Turns, OPENING_USER_TEXT};
use super::schema::clean_schema;
use super::{bad, bad_msg, model_path, str_at};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// OpenAI chat request (parsed JSON) -> Gemini call for `model` (e.g. "gemini-2.0-flash").
/// Path: "/v1beta/models/{model}:generateContent", or ":streamGenerateContent?alt=sse" when req.stream is true.
pub(crate) fn chat_request(req: &Value, model: &str) -> Result<ProviderCall, TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| bad("the request body is not a JSON object"))?;
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => return Err(bad("missing `messages`")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`messages` must be an array")),
    };
    if messages.is_empty() {
        return Err(bad("`messages` is empty"));
    }
    refuse_unsupported(obj, "Gemini", &NOWHERE)?;
    let mut system: Vec<String> = Vec::new();
    let mut contents = Turns::new();
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        let (role, parts) = match role.ok_or_else(|| bad_msg(i, " has no `role`"))? {
            "system" | "developer" => {
                let text = plain_text(m.get("content"), i)?;
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => ("user", content_parts(m.get("content"), i)?),
            "assistant" => ("model", assistant_parts(m, i, &mut call_names)?),
            "tool" => ("user", vec![tool_result_part(m, i, &call_names)?]),
            other => return Err(bad(format!("messages[{i}] has unsupported role {other:?}"))),
        };
        push_turn(&mut contents, role, parts);
    }
    if contents.is_empty() {
        return Err(bad("`messages` holds no user, assistant or tool content"));
    }
    open_with_user(&mut contents, "user", json!({ "text": OPENING_USER_TEXT }));
    let contents = contents
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}));
    let mut body = Map::new();
    body.insert("contents".into(), contents.collect());
    if !system.is_empty() {
        let text = system.join("\n\n");
        body.insert("systemInstruction".into(), json!({"parts": [{ "text": text }]}));
    }
    if let Some(tools) = function_declarations(obj.get("tools"))? {
        body.insert("tools".into(), json!([{ "functionDeclarations": tools }]));
    }
    if let Some(config) = tool_config(obj.get("tool_choice"))? {
        body.insert("toolConfig".into(), config);
    }
    let config = generation_config(obj)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    let method = match obj.get("stream") {
        None | Some(Value::Null | Value::Bool(false)) => "generateContent",
        Some(Value::Bool(true)) => "streamGenerateContent?alt=sse",
        Some(_) => return Err(bad("`stream` must be a boolean")),
    };
    let (path, body) = (model_path(model, method)?, Value::Object(body));
    Ok(ProviderCall {
        path,
        headers: Vec::new(),
        body,
    })
}

/// The text of a message `content`: a string, an array of text parts (joined by newlines), or nothing.
fn plain_text(content: Option<&Value>, i: usize) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                let text = p.get("text").and_then(Value::as_str);
                match (p.get("type").and_then(Value::as_str), text) {
                    (Some("text"), Some(t)) => texts.push(t),
                    _ => return Err(bad_msg(i, " may only hold text parts")),
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(bad_msg(i, ".content must be a string or an array of parts")),
    }
}

/// Gemini parts of a user/assistant `content` (string or array of OpenAI content parts).
fn content_parts(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(bad_msg(i, ".content must be a string or an array of parts")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "text" | "refusal" => match p.get(kind).and_then(Value::as_str) {
                Some("") => {}
                Some(t) => out.push(json!({ "text": t })),
                None => return Err(bad(format!("messages[{i}] has a {kind} part without `{kind}`"))),
            },
            "image_url" => {
                let url = p.get("image_url").and_then(|u| u.get("url").or(Some(u)));
                let url = url
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_msg(i, ": image_url part without a url"))?;
                out.push(media_part(url, i)?);
            }
            "input_audio" => {
                let audio = p.get("input_audio");
                let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
                let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
                let (Some(data), Some(format)) = (data, format) else {
                    return Err(bad_msg(i, ": input_audio part without data and format"));
                };
                out.push(json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}));
            }
            "file" => {
                let file = p.get("file");
                match (
                    file.and_then(|f| str_at(f, "file_data")),
                    file.and_then(|f| str_at(f, "file_id")),
                ) {
                    (Some(data_url), _) if data_url.starts_with("data:") => out.push(media_part(data_url, i)?),
                    (None, Some(_)) => {
                        return Err(bad_msg(
                            i,
                            ": `file_id` (a file uploaded to OpenAI) cannot be sent to Gemini; \
                             send the file inline as `file_data`",
                        ))
                    }
                    _ => return Err(bad_msg(i, ": a file part needs `file_data` as a base64 data: URL")),
                }
            }
            other => return Err(bad_msg(i, &format!(": unsupported content part type {other:?}"))),
        }
    }
    Ok(out)
}

/// A data URL -> `inlineData`; an http(s) URL -> `fileData` with a MIME type guessed from the extension.
fn media_part(url: &str, i: usize) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| bad_msg(i, ": malformed data URL"))?;
        let meta = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad_msg(i, ": data URL that is not base64"))?;
        let mime = meta.split(';').next().unwrap_or_default();
        if mime.is_empty() {
            return Err(bad_msg(i, ": data URL without a media type"));
        }
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(bad_msg(i, ": image URL that is neither data: nor http(s)"));
    }
    Ok(json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}))
}

fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref().unwrap_or_default() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

/// Text parts plus one `functionCall` part per tool call; remembers each tool call's id -> name.
fn assistant_parts(m: &Value, i: usize, names: &mut HashMap<String, String>) -> Result<Vec<Value>, TranslateError> {
    let mut parts = content_parts(m.get("content"), i)?;
    let calls = match m.get("tool_calls") {
        None | Some(Value::Null) => return Ok(parts),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(bad_msg(i, ".tool_calls must be an array")),
    };
    for (j, call) in calls.iter().enumerate() {
        let f = call.get("function");
        let name = f.and_then(|f| str_at(f, "name")).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| bad_msg(i, &format!(".tool_calls[{j}] has no function name")))?;
        let args = match f.and_then(|f| f.get("arguments")) {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| bad_msg(i, &format!(".tool_calls[{j}].function.arguments is not a JSON object")))?,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                return Err(bad_msg(
                    i,
                    &format!(".tool_calls[{j}].function.arguments is not a string"),
                ))
            }
        };
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            names.insert(id.to_string(), name.to_string());
        }
        parts.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    Ok(parts)
}

/// A `tool` message -> `functionResponse`, named after the assistant tool call with the same id.
fn tool_result_part(m: &Value, i: usize, names: &HashMap<String, String>) -> Result<Value, TranslateError> {
    let id = m.get("tool_call_id").and_then(Value::as_str);
    let id = id.ok_or_else(|| bad_msg(i, " (tool) has no `tool_call_id`"))?;
    let unknown = || {
        bad_msg(
            i,
            &format!(" answers tool_call_id {id:?}, which no earlier assistant message made"),
        )
    };
    let name = names.get(id).ok_or_else(unknown)?;
    let text = plain_text(m.get("content"), i)?;
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "content": text }),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

fn function_declarations(tools: Option<&Value>) -> Result<Option<Vec<Value>>, TranslateError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(t)) if t.is_empty() => return Ok(None),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(bad("`tools` must be an array")),
    };
    let mut decls = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
        let f = tool.get("function").filter(|_| kind == "function");
        let f = f.ok_or_else(|| bad(format!("tools[{i}]: only function tools are supported")))?;
        let name = f.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| bad(format!("tools[{i}] has no function name")))?;
        let mut decl = Map::new();
        decl.insert("name".into(), name.into());
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            decl.insert("description".into(), d.into());
        }
        if let Some(p) = f.get("parameters").filter(|p| p.is_object()) {
            let p = clean_schema(p);
            let no_props = p.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty);
            let is_object = str_at(&p, "type").is_some_and(|t| t.eq_ignore_ascii_case("object"));
            if !(is_object && no_props) {
                decl.insert("parameters".into(), p);
            }
        }
        decls.push(Value::Object(decl));
    }
    Ok(Some(decls))
}

fn tool_config(choice: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let (mode, names) = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ("AUTO", None),
            "none" => ("NONE", None),
            "required" => ("ANY", None),
            other => return Err(bad(format!("unsupported tool_choice {other:?}"))),
        },
        Some(v) => {
            let name = v.get("function").and_then(|f| f.get("name")).and_then(Value::as_str);
            match (v.get("type").and_then(Value::as_str), name) {
                (Some("function"), Some(name)) => ("ANY", Some(json!([name]))),
                _ => return Err(bad("tool_choice must be auto, none, required or a named function")),
            }
        }
    };
    let mut config = json!({ "mode": mode });
    if let (Some(names), Some(obj)) = (names, config.as_object_mut()) {
        obj.insert("allowedFunctionNames".into(), names);
    }
    Ok(Some(json!({ "functionCallingConfig": config })))
}

fn generation_config(obj: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut config = Map::new();
    let present = |k: &str| obj.get(k).filter(|v| !v.is_null());
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = present(from) {
            let v = v.as_number().ok_or_else(|| bad(format!("`{from}` must be a number")))?;
            config.insert(to.into(), Value::Number(v.clone()));
        }
    }
    if let Some(v) = present("seed") {
        let seed = v.as_i64().ok_or_else(|| bad("`seed` must be an integer"))?;
        config.insert("seed".into(), seed.into());
    }
    for key in ["max_tokens", "max_completion_tokens"] {
        // the second, newer name wins when both are given
        if let Some(v) = present(key) {
            let n = v
                .as_u64()
                .ok_or_else(|| bad(format!("`{key}` must be a non-negative integer")))?;
            config.insert("maxOutputTokens".into(), n.into());
        }
    }
    match present("stop") {
        None => {}
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            config.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err(bad("`stop` must be a string or an array of strings")),
    }
    if let Some(n) = present("n") {
        if n.as_u64() != Some(1) {
            return Err(bad("only `n` = 1 is supported for Gemini models"));
        }
        config.insert("candidateCount".into(), 1.into());
    }
    if let Some(budget) = reasoning_budget(obj)? {
        // Thought summaries are not asked for: OpenAI's answers carry no reasoning text.
        let thinking = json!({"thinkingBudget": budget, "includeThoughts": false});
        config.insert("thinkingConfig".into(), thinking);
    }
    if let Some(format) = present("response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                config.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                let schema = format.get("json_schema").and_then(|s| s.get("schema"));
                let schema = schema.filter(|s| s.is_object());
                let schema = schema.ok_or_else(|| bad("response_format json_schema needs `json_schema.schema`"))?;
                config.insert("responseMimeType".into(), "application/json".into());
                config.insert("responseSchema".into(), clean_schema(schema));
            }
            _ => return Err(bad("`response_format.type` must be text, json_object or json_schema")),
        }
    }
    Ok(config)
}
