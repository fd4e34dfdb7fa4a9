//! The OpenAI chat request -> Anthropic's `/v1/messages` call (a child module
//! of `anthropic`, whose docs list the choices made).

use super::super::params::{reasoning_budget, refuse_unsupported, Harmless, NOWHERE};
use super::super::{open_with_user, push_turn, ProviderCall, TranslateError, Turns, OPENING_USER_TEXT};
use super::content::{
    cache_control, cache_last, content_blocks, system_value, texts_of, tool_result_block, tool_use_block, with_cache,
};
use super::{bad_req, present, str_at, API_VERSION, DEFAULT_MAX_TOKENS};
use serde_json::{json, Map, Value};

/// What Anthropic lacks beyond [`NOWHERE`].
const UNSUPPORTED: [(&str, Harmless); 2] = [
    ("frequency_penalty", Harmless::Zero),
    ("presence_penalty", Harmless::Zero),
];

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
    refuse_unsupported(req, "Anthropic", &NOWHERE)?;
    refuse_unsupported(req, "Anthropic", &UNSUPPORTED)?;
    let mut system = Vec::new();
    let mut turns = Turns::new();
    for (i, msg) in messages.iter().enumerate() {
        let content = msg.get("content").unwrap_or(&Value::Null);
        let (role, mut blocks) = match msg.get("role").map(|r| r.as_str().unwrap_or("(not a string)")) {
            Some("system" | "developer") => {
                let mut texts = texts_of(content, i)?;
                if let (Some(cc), Some(last)) = (cache_control(msg, i)?, texts.last_mut()) {
                    last.1.get_or_insert(cc);
                }
                system.push(texts);
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
            Some("tool") => ("user", vec![tool_result_block(msg, i)?]),
            Some(other) => return Err(bad_req(format!("messages[{i}] has unknown role `{other}`"))),
            None => return Err(bad_req(format!("messages[{i}] has no `role`"))),
        };
        cache_last(&mut blocks, cache_control(msg, i)?);
        push_turn(&mut turns, role, blocks);
    }
    if turns.is_empty() {
        return Err(bad_req("`messages` has no user or assistant message with content"));
    }
    open_with_user(&mut turns, "user", json!({"type": "text", "text": OPENING_USER_TEXT}));

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let asked = match present(req, "max_completion_tokens").or_else(|| present(req, "max_tokens")) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad_req("`max_tokens` must be a positive integer"))?,
        ),
    };
    let budget = reasoning_budget(req)?.filter(|b| *b > 0);
    let max_tokens = match (asked, budget) {
        // OpenAI's limit counts reasoning too; one within the budget would leave the answer nothing.
        (Some(m), Some(b)) if m <= b => b.saturating_add(m),
        (Some(m), _) => m,
        (None, Some(b)) => b + DEFAULT_MAX_TOKENS,
        (None, None) => DEFAULT_MAX_TOKENS,
    };
    body.insert("max_tokens".into(), json!(max_tokens));
    let msgs = turns.into_iter().map(|(r, c)| json!({"role": r, "content": c}));
    body.insert("messages".into(), msgs.collect());

    system.extend(json_mode_instruction(present(req, "response_format"))?.map(|s| vec![(s, None)]));
    if let Some(system) = system_value(system) {
        body.insert("system".into(), system);
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
    let checks: [(&str, Check, &str); 5] = [
        ("temperature", Value::is_number, "a number"),
        ("top_p", Value::is_number, "a number"),
        ("stream", Value::is_boolean, "a boolean"),
        ("user", Value::is_string, "a string"),
        ("safety_identifier", Value::is_string, "a string"),
    ];
    for (key, ok, what) in checks {
        let Some(v) = present(req, key) else { continue };
        if !ok(v) {
            return Err(bad_req(format!("`{key}` must be {what}")));
        }
        match key {
            // Both identify the end user for abuse detection, as Anthropic's `user_id` does.
            "user" | "safety_identifier" => body.insert("metadata".into(), json!({ "user_id": v })),
            _ => body.insert(key.into(), v.clone()),
        };
    }
    if present(req, "n").is_some_and(|n| n.as_u64() != Some(1)) {
        return Err(bad_req("`n` other than 1 is not supported for Anthropic models"));
    }
    translate_tools(req, &mut body)?;
    if let Some(budget) = budget {
        check_thinking(&body)?;
        body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
    }

    Ok(ProviderCall {
        path: "/v1/messages".into(),
        headers: vec![("anthropic-version", API_VERSION.to_string())],
        body: Value::Object(body),
    })
}

/// What extended thinking does not allow beside it: refused by name, as Anthropic would.
fn check_thinking(body: &Map<String, Value>) -> Result<(), TranslateError> {
    let with = "cannot be combined with `reasoning_effort` for Anthropic models";
    if body.get("temperature").is_some_and(|t| t.as_f64() != Some(1.0)) {
        return Err(bad_req(format!("`temperature` other than 1 {with}")));
    }
    if body.get("top_p").and_then(Value::as_f64).is_some_and(|p| p < 0.95) {
        return Err(bad_req(format!("`top_p` below 0.95 {with}")));
    }
    let forced = body.get("tool_choice").and_then(|c| str_at(c, "type"));
    if matches!(forced, Some("any" | "tool")) {
        return Err(bad_req(format!("a `tool_choice` that forces a tool call {with}")));
    }
    Ok(())
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
        let cc = match tool.get("cache_control").filter(|c| !c.is_null()) {
            Some(cc) if str_at(cc, "type") == Some("ephemeral") => Some(cc.clone()),
            Some(_) => {
                return Err(bad_req(format!(
                    "tools[{j}]: `cache_control` must be {{\"type\": \"ephemeral\"}}"
                )))
            }
            None => None,
        };
        out.push(with_cache(Value::Object(t), cc));
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
