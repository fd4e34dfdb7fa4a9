//! Translation between OpenAI's Chat Completions API and Anthropic's Messages API.
//!
//! This module owns the wire format only: building the `/v1/messages` call from an OpenAI chat
//! request, turning Anthropic's answer (whole or streamed as SSE) back into OpenAI's
//! `chat.completion` / `chat.completion.chunk` objects, and reading Anthropic's token usage.
//! Sending, credentials, retries and the HTTP status of errors belong to the caller.
//!
//! Choices made (`request` builds the call, `content` the content blocks):
//! - `system` and `developer` messages, wherever they appear, are joined (blank line between) into
//!   Anthropic's top-level `system`. Consecutive messages of the same role are merged into one
//!   (Anthropic requires alternating roles); `tool` messages become `tool_result` blocks of a user
//!   message, so consecutive tool results and a user message after them make one user turn. Empty
//!   text parts are dropped (Anthropic rejects them), as are messages left empty. A conversation
//!   that opens with the assistant (a greeting the application showed) gets a user turn before it
//!   holding only [`OPENING_USER_TEXT`](super::OPENING_USER_TEXT), since Anthropic wants the user to
//!   speak first and refuses empty text blocks.
//! - Files: a `file` part whose `file_data` is a base64 PDF data URL becomes a `document` block
//!   (`filename` its `title`), an image one an `image` block; a `file_id` (a file stored at OpenAI)
//!   and other file types are refused.
//! - Prompt caching: a `cache_control` (`{"type": "ephemeral"}`, LiteLLM's convention) on a content
//!   part, a message or a tool is kept on the Anthropic block it becomes (text, image, document,
//!   tool_result, tool, and a `system` that then becomes a list of text blocks). Cache reads and
//!   writes are counted in `prompt_tokens` (Anthropic's `input_tokens` exclude them), reads also in
//!   `prompt_tokens_details.cached_tokens`.
//! - `reasoning_effort` turns on extended thinking with the budget of
//!   [`reasoning_budget`](super::params::reasoning_budget) (`none`: no thinking). `max_tokens`
//!   counts thinking, as OpenAI's limit counts reasoning; when the client's limit is not above the
//!   budget (Anthropic requires it to be) or absent, it becomes budget + limit (or + 4096). Thinking
//!   allows no `temperature` but 1, no `top_p` below 0.95 and no forced tool call: these are refused
//!   rather than dropped. `thinking` blocks in answers are not shown (OpenAI's Chat Completions
//!   shows no reasoning either); Anthropic reports no separate count of thinking tokens, so they are
//!   in `completion_tokens` and `reasoning_tokens` stays 0. Not carried: the thinking blocks of
//!   earlier turns, which Anthropic wants back in a tool loop with thinking on.
//! - Refused with a 400 naming the parameter ([`super::params`]): `logprobs`, `top_logprobs`,
//!   `logit_bias`, `audio`, audio `modalities`, `prediction`, `web_search_options`, `functions`,
//!   `function_call`, `verbosity` other than medium, non-zero `frequency_penalty` and
//!   `presence_penalty`, `n` other than 1. Dropped, as they do not change the answer: `seed` (a
//!   best-effort hint), `store`, `metadata` (OpenAI's stored-completion tags), `service_tier`,
//!   `prompt_cache_key` (Anthropic caches by prefix and `cache_control`), `stream_options` (the
//!   caller's). `user` and `safety_identifier` become `metadata.user_id`; `parallel_tool_calls:
//!   false` becomes `disable_parallel_tool_use`.
//! - JSON mode: Anthropic has none, so `response_format` `json_object` / `json_schema` appends an
//!   instruction to the system prompt asking for a JSON-only answer (with the schema when given).
//!   The answer is not validated.
//! - Tool call indexes: OpenAI's `tool_calls[].index` counts tool calls from 0 in the order they
//!   start; Anthropic's content block index (which also counts text and thinking blocks) is mapped
//!   onto it.
//! - `temperature` is passed unchanged (Anthropic allows 0..=1, so values above 1 get the
//!   provider's own 400).
//! - Streams: an `error` event, or anything that is not the documented format (non-UTF-8, invalid
//!   JSON, a delta for an unknown tool block), is an `Err`; events translated earlier in the same
//!   `push` are then dropped, since the call has failed. Unknown event types are ignored.

use super::{TranslateError, Usage, MAX_COUNT};
use serde_json::{json, Map, Value};

/// Default `max_tokens` when the client sets none (Anthropic requires one).
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The Messages API version sent in `anthropic-version`.
pub(crate) const API_VERSION: &str = "2023-06-01";

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

mod content;
mod request;
pub(crate) use request::chat_request;

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
pub(crate) fn read_usage(u: &Value, usage: &mut Usage) {
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
mod request_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
