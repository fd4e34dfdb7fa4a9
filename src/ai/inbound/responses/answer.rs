//! The Response object: a chat answer as the Responses API answers
//! ([`from_chat`]), the object a stream's events carry ([`Head::response`]),
//! and the usage of a Response ([`usage_of`]).
//!
//! A translated Response echoes the request's parameters as OpenAI's does
//! (the SDK's types expect them), with `store: false` (Portico keeps
//! nothing, so its id cannot be a `previous_response_id`). Its output is a
//! `message` item with one `output_text` part (no annotations: chat answers
//! carry none) when the answer has text, then a `function_call` item per
//! tool call. A chat answer cut by `length` is `status: incomplete` with
//! `incomplete_details.reason: max_output_tokens` (`content_filter` likewise).

use crate::ai::wire::token_count;
use crate::ai::Usage;
use serde_json::{json, Map, Value};

/// Makes a parameter's default value.
type Default = fn() -> Value;

/// The request parameters a Response repeats, with OpenAI's defaults.
const ECHOED: [(&str, Default); 14] = [
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("max_tool_calls", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || json!(true)),
    ("prompt_cache_key", || Value::Null),
    ("safety_identifier", || Value::Null),
    ("service_tier", || json!("default")),
    ("temperature", || json!(1.0)),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_logprobs", || json!(0)),
    ("top_p", || json!(1.0)),
    ("user", || Value::Null),
];

/// What every Response of one call repeats: its id, time, model and the
/// request's parameters.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// The request id; the Response is `resp_<id>`, its items `msg_<id>` and `fc_<id>_<n>`.
    pub id: String,
    pub created_at: u64,
    pub model: String,
    echo: Map<String, Value>,
}

impl Head {
    pub(super) fn new(req: &Value, id: &str, model: &str, created_at: u64) -> Head {
        let mut echo = Map::new();
        for (key, default) in ECHOED {
            let v = req.get(key).filter(|v| !v.is_null()).cloned();
            echo.insert(key.into(), v.unwrap_or_else(default));
        }
        let text = req.get("text").filter(|t| t.is_object()).cloned();
        echo.insert(
            "text".into(),
            text.unwrap_or_else(|| json!({"format": {"type": "text"}})),
        );
        let effort = req.pointer("/reasoning/effort").cloned().unwrap_or(Value::Null);
        let summary = req.pointer("/reasoning/summary").cloned().unwrap_or(Value::Null);
        echo.insert("reasoning".into(), json!({"effort": effort, "summary": summary}));
        Head {
            id: id.to_string(),
            created_at,
            model: model.to_string(),
            echo,
        }
    }

    pub(super) fn message_id(&self) -> String {
        format!("msg_{}", self.id)
    }

    pub(super) fn call_id(&self, n: usize) -> String {
        format!("fc_{}_{n}", self.id)
    }

    /// The Response object with `status` (`in_progress`, `completed`,
    /// `incomplete`, `failed`); `reason` is the incomplete one.
    pub(super) fn response(
        &self,
        status: &str,
        reason: Option<&str>,
        output: Vec<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut r = Map::new();
        r.insert("id".into(), json!(format!("resp_{}", self.id)));
        r.insert("object".into(), json!("response"));
        r.insert("created_at".into(), json!(self.created_at));
        r.insert("status".into(), json!(status));
        r.insert("background".into(), json!(false));
        r.insert("error".into(), Value::Null);
        let details = reason.map(|why| json!({ "reason": why }));
        r.insert("incomplete_details".into(), details.unwrap_or(Value::Null));
        r.insert("model".into(), json!(self.model));
        r.insert("output".into(), Value::Array(output));
        r.insert("previous_response_id".into(), Value::Null);
        r.insert("store".into(), json!(false));
        r.insert("truncation".into(), json!("disabled"));
        for (k, v) in &self.echo {
            r.insert(k.clone(), v.clone());
        }
        r.insert("usage".into(), usage.map_or(Value::Null, usage_json));
        Value::Object(r)
    }
}

/// Seconds since the Unix epoch.
pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a chat answer's `finish_reason` makes a Response incomplete, if it does.
pub(super) fn incomplete_reason(finish_reason: Option<&str>) -> Option<&'static str> {
    match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    }
}

/// A `message` item holding `text` as one `output_text` part.
pub(super) fn message_item(id: &str, status: &str, text: &str) -> Value {
    json!({
        "id": id, "type": "message", "status": status, "role": "assistant",
        "content": [output_text(text)],
    })
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "id": id, "type": "function_call", "status": status,
        "call_id": call_id, "name": name, "arguments": arguments,
    })
}

/// The Responses API's `usage` object.
pub(super) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

/// Reads a Responses API `usage` object.
pub(super) fn usage_from(v: &Value) -> Option<Usage> {
    let n = |p: &str| token_count(v.pointer(p));
    v.is_object().then(|| Usage {
        prompt_tokens: n("/input_tokens"),
        completion_tokens: n("/output_tokens"),
        cached_tokens: n("/input_tokens_details/cached_tokens"),
        reasoning_tokens: n("/output_tokens_details/reasoning_tokens"),
    })
}

/// The usage of a native Response (zero when it reports none, which is then estimated).
pub(crate) fn usage_of(body: &[u8]) -> Usage {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("usage").and_then(usage_from))
        .unwrap_or_default()
}

/// A whole chat answer (one choice) as a Response; `id` is the request id.
pub(crate) fn from_chat(answer: &Value, req: &Value, id: &str) -> Value {
    let created_at = answer.get("created").and_then(Value::as_u64).unwrap_or_else(now_secs);
    let model = answer
        .get("model")
        .and_then(Value::as_str)
        .or_else(|| req.get("model").and_then(Value::as_str))
        .unwrap_or_default();
    let head = Head::new(req, id, model, created_at);
    let choice = answer.pointer("/choices/0").unwrap_or(&Value::Null);
    let reason = incomplete_reason(choice.get("finish_reason").and_then(Value::as_str));
    let status = if reason.is_some() { "incomplete" } else { "completed" };
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
    let text = [msg.get("content"), msg.get("refusal")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|t| !t.is_empty());
    if let Some(text) = text {
        output.push(message_item(&head.message_id(), status, text));
    }
    let calls = msg.get("tool_calls").and_then(Value::as_array);
    for (n, call) in calls.into_iter().flatten().enumerate() {
        let f = call.get("function").unwrap_or(&Value::Null);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        output.push(call_item(
            &head.call_id(n),
            &s(call, "id"),
            &s(f, "name"),
            &s(f, "arguments"),
            "completed",
        ));
    }
    let usage = answer.get("usage").and_then(Usage::from_openai).unwrap_or_default();
    head.response(status, reason, output, Some(&usage))
}
