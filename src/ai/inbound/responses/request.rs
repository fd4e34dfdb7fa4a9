//! A Responses API request as a Chat Completions request, for the providers
//! that do not speak the Responses API.
//!
//! Mapped: `input` (a string is one user message; items: `message` with
//! roles user, assistant, system and developer (as `system`, which every
//! chat vendor knows), `function_call` items as the assistant's
//! `tool_calls` (joined to the assistant message before them),
//! `function_call_output` as `tool` messages), content parts (`input_text`
//! and `output_text` as text, `input_image` by URL as `image_url`,
//! `input_file` with inline `file_data` as a `file` part), `instructions` as
//! a first system message, function `tools` (Responses' flat form to chat's
//! nested one) and `tool_choice`, `text.format` (`json_schema`,
//! `json_object`) as `response_format`, `text.verbosity` as `verbosity`,
//! `reasoning.effort` as `reasoning_effort`, `max_output_tokens` as
//! `max_completion_tokens`, and `temperature`, `top_p`, `stream`,
//! `parallel_tool_calls`, `user`, `safety_identifier`, `prompt_cache_key`,
//! `service_tier` as they are (each provider's chat translation then decides,
//! as for a chat client).
//!
//! Dropped, as they ask for nothing an answer translated from chat could
//! show: `store` and `metadata` (nothing is stored), `include` (extra output
//! only OpenAI produces), `truncation`, `stream_options`,
//! `reasoning.summary`, and `reasoning` items of earlier turns (the model's
//! own notes, which another model cannot read).
//!
//! Never a 400 here for what OpenAI would accept, since the same request may
//! still go natively to an OpenAI target: what chat cannot express is left
//! out of [`to_chat`]'s request and named by [`untranslatable`], which
//! dispatch asks before each translated target. Only a body that is not a
//! Responses request at all (`input` neither a string nor a list of
//! objects) is refused at once.

use crate::ai::TranslateError;
use serde_json::{json, Map, Value};

/// Copied to the chat request unchanged.
const SAME: [&str; 9] = [
    "model",
    "stream",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
];

/// Accepted and left out (see the module docs).
const DROPPED: [&str; 4] = ["store", "metadata", "include", "truncation"];

/// What a stored conversation is needed for, and what to do instead.
const STATEFUL: &str = "needs state that OpenAI stores (Portico keeps none); send the whole conversation \
                        in `input`, or call an OpenAI model";

/// The chat request being built, and what the Responses request asks for that it cannot hold.
#[derive(Default)]
struct Chat {
    body: Map<String, Value>,
    messages: Vec<Value>,
    issues: Vec<String>,
}

impl Chat {
    fn issue(&mut self, what: impl Into<String>) {
        self.issues.push(what.into());
    }
}

/// The client's Responses request as a chat request (same model). Parts chat
/// cannot express are left out; [`untranslatable`] names them.
pub(crate) fn to_chat(req: &Value) -> Result<Value, TranslateError> {
    translate(req).map(|c| {
        let mut body = c.body;
        body.insert("messages".into(), Value::Array(c.messages));
        Value::Object(body)
    })
}

/// Why `req` cannot go through Chat Completions, naming every part at fault;
/// None when it can.
pub(crate) fn untranslatable(req: &Value) -> Option<String> {
    let c = translate(req).ok()?;
    if c.issues.is_empty() && c.messages.is_empty() {
        return Some("`input` is required: the request has nothing to send as chat messages".into());
    }
    (!c.issues.is_empty()).then(|| c.issues.join("; "))
}

fn present<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn translate(req: &Value) -> Result<Chat, TranslateError> {
    let mut c = Chat::default();
    let Some(o) = req.as_object() else {
        return Err(TranslateError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    if let Some(instructions) = present(o, "instructions") {
        match instructions.as_str() {
            Some("") => {}
            Some(s) => c.messages.push(json!({"role": "system", "content": s})),
            None => c.issue("`instructions` must be a string"),
        }
    }
    match present(o, "input") {
        None => {}
        Some(Value::String(s)) => c.messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => input(items, &mut c)?,
        Some(_) => {
            return Err(TranslateError::BadRequest(
                "`input` must be a string or a list of input items".into(),
            ))
        }
    }
    for (key, v) in o {
        let k = key.as_str();
        if v.is_null() || DROPPED.contains(&k) {
            continue;
        }
        if SAME.contains(&k) {
            c.body.insert(key.clone(), v.clone());
            continue;
        }
        match k {
            "input" | "instructions" | "stream_options" => {}
            "max_output_tokens" => {
                c.body.insert("max_completion_tokens".into(), v.clone());
            }
            "reasoning" => {
                // `summary` asks for a summary of the reasoning, which chat answers do not carry.
                if let Some(effort) = v.get("effort").filter(|e| !e.is_null()) {
                    c.body.insert("reasoning_effort".into(), effort.clone());
                }
            }
            "text" => text(v, &mut c),
            "tools" => tools(v, &mut c),
            "tool_choice" => tool_choice(v, &mut c),
            "previous_response_id" | "conversation" | "prompt" => c.issue(format!("`{key}` {STATEFUL}")),
            "background" if v == &Value::Bool(false) => {}
            "background" => c.issue("`background` mode keeps the response at OpenAI; call an OpenAI model"),
            "top_logprobs" if v.as_f64() == Some(0.0) => {}
            "top_logprobs" | "max_tool_calls" => c.issue(format!("`{key}` has no Chat Completions equivalent")),
            other => c.issue(format!("unknown parameter `{other}`")),
        }
    }
    if !c.body.contains_key("tools") {
        // Chat Completions refuses these without tools; the Responses API lets them be.
        c.body.remove("parallel_tool_calls");
        c.body.remove("tool_choice");
    }
    Ok(c)
}

fn input(items: &[Value], c: &mut Chat) -> Result<(), TranslateError> {
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(TranslateError::BadRequest(format!("input[{i}] must be an object")));
        }
        match str_at(item, "type") {
            None | Some("message") => message(i, item, c),
            Some("function_call") => function_call(i, item, c),
            Some("function_call_output") => function_call_output(i, item, c),
            Some("reasoning") => {}
            Some("item_reference") => c.issue(format!("input[{i}]: `item_reference` {STATEFUL}")),
            Some(other) => c.issue(format!(
                "input[{i}]: `{other}` items belong to tools hosted by OpenAI and have no Chat Completions form"
            )),
        }
    }
    Ok(())
}

fn message(i: usize, item: &Value, c: &mut Chat) {
    let role = match str_at(item, "role") {
        Some(r @ ("user" | "assistant" | "system")) => r,
        Some("developer") => "system",
        other => {
            return c.issue(format!(
                "input[{i}]: role {other:?} is not user, assistant, system or developer"
            ))
        }
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) if role == "assistant" => Value::String(assistant_text(i, parts, c)),
        Some(Value::Array(parts)) => {
            Value::Array(parts.iter().enumerate().filter_map(|(j, p)| part(i, j, p, c)).collect())
        }
        _ => return c.issue(format!("input[{i}]: a message needs `content`")),
    };
    c.messages.push(json!({"role": role, "content": content}));
}

/// The text of an assistant message's parts (`output_text`, and a `refusal`'s words).
fn assistant_text(i: usize, parts: &[Value], c: &mut Chat) -> String {
    let mut text = String::new();
    for (j, p) in parts.iter().enumerate() {
        match (str_at(p, "type"), str_at(p, "text"), str_at(p, "refusal")) {
            (Some("output_text" | "input_text"), Some(t), _) | (Some("refusal"), _, Some(t)) => text.push_str(t),
            (kind, _, _) => c.issue(format!(
                "input[{i}].content[{j}]: an assistant `{}` part has no Chat Completions form",
                kind.unwrap_or("untyped")
            )),
        }
    }
    text
}

/// A user, system or developer content part as a chat part.
fn part(i: usize, j: usize, p: &Value, c: &mut Chat) -> Option<Value> {
    let at = format!("input[{i}].content[{j}]");
    match str_at(p, "type") {
        Some("input_text" | "output_text") => match str_at(p, "text") {
            Some(t) => Some(json!({"type": "text", "text": t})),
            None => {
                c.issue(format!("{at}: a text part needs `text`"));
                None
            }
        },
        Some("input_image") => match (str_at(p, "image_url"), present_in(p, "file_id")) {
            (Some(url), _) => {
                let mut image = json!({ "url": url });
                if let Some(d) = p.get("detail").filter(|d| !d.is_null()) {
                    image["detail"] = d.clone();
                }
                Some(json!({"type": "image_url", "image_url": image}))
            }
            (None, true) => {
                c.issue(format!(
                    "{at}: an image by `file_id` is stored at OpenAI; send it as `image_url` (a URL or a data URL)"
                ));
                None
            }
            (None, false) => {
                c.issue(format!("{at}: an `input_image` needs `image_url`"));
                None
            }
        },
        Some("input_file") => match str_at(p, "file_data") {
            Some(data) => {
                let mut file = json!({ "file_data": data });
                if let Some(name) = str_at(p, "filename") {
                    file["filename"] = json!(name);
                }
                Some(json!({"type": "file", "file": file}))
            }
            None => {
                c.issue(format!(
                    "{at}: only a file sent inline as `file_data` (a base64 data URL) can be translated, not one by `file_id` or `file_url`"
                ));
                None
            }
        },
        other => {
            c.issue(format!(
                "{at}: `{}` parts have no Chat Completions form",
                other.unwrap_or("untyped")
            ));
            None
        }
    }
}

fn present_in(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

fn function_call(i: usize, item: &Value, c: &mut Chat) {
    let (Some(call_id), Some(name)) = (str_at(item, "call_id"), str_at(item, "name")) else {
        return c.issue(format!("input[{i}]: a `function_call` needs `call_id` and `name`"));
    };
    let call = json!({
        "id": call_id, "type": "function",
        "function": {"name": name, "arguments": str_at(item, "arguments").unwrap_or("{}")},
    });
    // Chat keeps a turn's calls on its assistant message; Responses lists them as items after it.
    if let Some(last) = c.messages.last_mut().filter(|m| m["role"] == "assistant") {
        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => last["tool_calls"] = json!([call]),
        }
        if last["content"] == "" {
            last["content"] = Value::Null;
        }
        return;
    }
    c.messages
        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

fn function_call_output(i: usize, item: &Value, c: &mut Chat) {
    let Some(call_id) = str_at(item, "call_id") else {
        return c.issue(format!("input[{i}]: a `function_call_output` needs `call_id`"));
    };
    let content = match item.get("output") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match (str_at(p, "type"), str_at(p, "text")) {
                    (Some("input_text"), Some(t)) => out.push(json!({"type": "text", "text": t})),
                    (kind, _) => c.issue(format!(
                        "input[{i}].output[{j}]: a tool result's `{}` part has no Chat Completions form (text only)",
                        kind.unwrap_or("untyped")
                    )),
                }
            }
            Value::Array(out)
        }
        _ => return c.issue(format!("input[{i}]: a `function_call_output` needs `output`")),
    };
    c.messages
        .push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
}

fn text(v: &Value, c: &mut Chat) {
    if let Some(verbosity) = v.get("verbosity").filter(|x| !x.is_null()) {
        c.body.insert("verbosity".into(), verbosity.clone());
    }
    let Some(format) = v.get("format").filter(|f| !f.is_null()) else {
        return;
    };
    let response_format = match str_at(format, "type") {
        Some("text") => return,
        Some("json_object") => json!({"type": "json_object"}),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "description", "strict"] {
                if let Some(x) = format.get(key).filter(|x| !x.is_null()) {
                    schema.insert(key.into(), x.clone());
                }
            }
            json!({"type": "json_schema", "json_schema": schema})
        }
        other => return c.issue(format!("`text.format` of type {other:?} has no Chat Completions form")),
    };
    c.body.insert("response_format".into(), response_format);
}

fn tools(v: &Value, c: &mut Chat) {
    let Some(list) = v.as_array() else {
        return c.issue("`tools` must be a list");
    };
    let mut out = Vec::with_capacity(list.len());
    let mut hosted: Vec<&str> = Vec::new();
    for (j, t) in list.iter().enumerate() {
        match (str_at(t, "type"), str_at(t, "name")) {
            (Some("function"), Some(name)) => {
                let mut f = Map::new();
                f.insert("name".into(), json!(name));
                for key in ["description", "parameters", "strict"] {
                    if let Some(x) = t.get(key).filter(|x| !x.is_null()) {
                        f.insert(key.into(), x.clone());
                    }
                }
                out.push(json!({"type": "function", "function": f}));
            }
            (Some("function"), None) => c.issue(format!("tools[{j}]: a function tool needs a `name`")),
            (kind, _) => hosted.push(kind.unwrap_or("untyped")),
        }
    }
    if !hosted.is_empty() {
        let names: Vec<String> = hosted.iter().map(|h| format!("`{h}`")).collect();
        c.issue(format!(
            "tools {} are hosted by OpenAI and cannot be translated (function tools can)",
            names.join(", ")
        ));
    }
    if !out.is_empty() {
        c.body.insert("tools".into(), Value::Array(out));
    }
}

fn tool_choice(v: &Value, c: &mut Chat) {
    let choice = match v {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => v.clone(),
        _ => match (str_at(v, "type"), str_at(v, "name")) {
            (Some("function"), Some(name)) => json!({"type": "function", "function": {"name": name}}),
            (kind, _) => {
                let what = kind.or(v.as_str()).unwrap_or("untyped");
                return c.issue(format!("`tool_choice` {what:?} cannot be translated"));
            }
        },
    };
    c.body.insert("tool_choice".into(), choice);
}
