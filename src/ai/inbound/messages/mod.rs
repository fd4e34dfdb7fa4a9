//! Anthropic's Messages API inbound, `POST /v1/messages` (and
//! `/v1/messages/count_tokens`), so the Anthropic SDK and Claude Code
//! (`ANTHROPIC_BASE_URL`) can use Portico and reach any model.
//!
//! To an Anthropic provider the client's body goes through as it is, with
//! the model replaced: thinking blocks and their signatures, `cache_control`,
//! documents, server tools, everything Anthropic knows. To every other
//! provider it goes through Chat Completions ([`to_chat`]):
//!
//! - `system` (a string or text blocks) becomes the system message; text,
//!   image (base64 or URL) and PDF document blocks become chat parts, with
//!   their `cache_control`;
//! - `tool_use` blocks become the assistant's `tool_calls`, `tool_result`
//!   blocks `tool` messages (an error result says so in its text), in order;
//! - `tools` (custom tools) become functions, `tool_choice` maps (`any` is
//!   `required`), `disable_parallel_tool_use` is `parallel_tool_calls: false`;
//! - `thinking` becomes `reasoning_effort` by its budget (up to 2,048 tokens
//!   low, up to 8,192 medium, above high); earlier `thinking` blocks are
//!   dropped, since no other provider can check their signatures;
//! - `stop_sequences`, `temperature`, `top_p`, `max_tokens`, `stream` and
//!   `metadata.user_id` map one to one; `top_k` has no Chat Completions
//!   equivalent and is dropped (it narrows sampling, it changes no field of
//!   the answer).
//!
//! Server tools (`web_search_...`, `code_execution_...`, any tool with a
//! `type` other than `custom`), `container`/`mcp_servers`, and content
//! blocks of types or sources other providers lack (`server_tool_use`,
//! `web_search_tool_result`, `search_result`, a file by id, ...) exist only
//! at Anthropic: such a request is refused for other providers with a 400
//! naming them, and still goes to an Anthropic target as it is. Errors on
//! this endpoint are Anthropic's shape,
//! `{"type":"error","error":{"type","message"},"request_id"}`.

mod answer;
mod request;
mod stream;

pub(crate) use answer::from_chat;
pub(crate) use request::{to_chat, untranslatable};
pub(crate) use stream::Encoder;

use crate::ai::inbound;
use crate::ai::registry::Target;
use crate::ai::wire::anthropic::{read_usage, API_VERSION};
use crate::ai::{ProviderCall, Usage};
use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::{json, Value};

/// The call of an Anthropic target: the client's body, the model replaced.
pub(crate) fn native_call(target: &Target, req: &Value) -> ProviderCall {
    let mut body = req.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("model".into(), Value::String(target.model.clone()));
    }
    ProviderCall {
        path: "/v1/messages".into(),
        headers: vec![("anthropic-version", API_VERSION.to_string())],
        body,
    }
}

/// The usage of a whole Anthropic message.
pub(crate) fn usage_of(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Some(u) = serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(|v| v.get("usage"))
    {
        read_usage(u, &mut usage);
    }
    usage
}

/// Reads an Anthropic event stream as it passes: `message_start` and
/// `message_delta` carry the usage, the deltas the text, `message_stop` ends
/// a whole answer and `error` a failed one.
pub(crate) fn sniffer() -> inbound::Sniffer {
    inbound::Sniffer::new(sniff)
}

fn sniff(v: &Value, seen: &mut inbound::Sniffed) {
    match v.get("type").and_then(Value::as_str) {
        Some("message_start") => {
            if let Some(u) = v.pointer("/message/usage") {
                read_usage(u, &mut seen.usage);
            }
        }
        Some("message_delta") => {
            if let Some(u) = v.get("usage") {
                read_usage(u, &mut seen.usage);
            }
        }
        Some("content_block_delta") => {
            let d = v.get("delta");
            for key in ["text", "partial_json", "thinking"] {
                if let Some(t) = d.and_then(|d| d.get(key)).and_then(Value::as_str) {
                    seen.text.push(t);
                }
            }
        }
        Some("message_stop") => seen.finished = true,
        Some("error") => seen.failed = true,
        _ => {}
    }
}

/// Anthropic's error type for a Portico error.
fn error_type(err: GatewayError) -> &'static str {
    match err.status() {
        400 | 405 | 408 | 431 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}`.
pub(crate) fn error_body(err: GatewayError, message: &str, request_id: &str) -> Bytes {
    Bytes::from(error_value(err, message, request_id).to_string())
}

fn error_value(err: GatewayError, message: &str, request_id: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(err), "message": message}, "request_id": request_id})
}

#[cfg(test)]
mod tests;
