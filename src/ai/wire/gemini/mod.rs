//! Google Gemini adapter: translates OpenAI Chat Completions and Embeddings to Gemini's
//! `generateContent` / `streamGenerateContent?alt=sse` / `batchEmbedContents` and back.
//!
//! Owns the wire formats only: no HTTP, no credentials (the caller adds the API key), no model routing.
//!
//! Choices made here:
//! - **Turns alternate and the user speaks first**, as Gemini requires in a multi-turn conversation:
//!   consecutive messages of one role are merged into one content, `tool` results are `user` contents
//!   (so a user message after them joins them), and a conversation that opens with the assistant gets a
//!   user content before it holding only [`OPENING_USER_TEXT`](super::OPENING_USER_TEXT).
//! - **Tool call ids are made up.** Gemini's function calls carry no ids OpenAI clients can use, so the answer
//!   names them `call_{id}_{i}` (Portico's call id plus the call's index), deterministic per call. When the
//!   client sends the results back, the function *name* Gemini needs is found from the earlier assistant
//!   `tool_calls` entry with the same `tool_call_id`.
//! - **JSON schemas are cleaned** (tool `parameters`, `response_format.json_schema`): Gemini accepts only an
//!   OpenAPI subset and rejects unknown keys, so every schema object keeps only the keys Gemini knows
//!   (`additionalProperties`, `$schema`, `$ref`, `$defs`, `allOf`, ... are dropped, recursively; property
//!   *names* are never touched), `oneOf` becomes `anyOf`, `const` becomes a one-value `enum`, a type list
//!   such as `["string","null"]` becomes `type` + `nullable`, and `format` is kept only where Gemini accepts
//!   it. Tool parameters that are an object without properties are left out (Gemini rejects those).
//! - **Reasoning**: `reasoning_effort` becomes `generationConfig.thinkingConfig` with the budget of
//!   [`reasoning_budget`](super::params::reasoning_budget) (`none` is 0, which turns thinking off where the
//!   model allows it) and `includeThoughts: false`.
//! - **Text only in answers**: `thought: true` parts (reasoning) are not shown, but their tokens
//!   (`thoughtsTokenCount`) are counted as `reasoning_tokens` and in `completion_tokens`, as OpenAI counts
//!   them; other part kinds (code execution, images) are skipped.
//! - **Files**: `file` parts with a base64 data URL (PDF or any type Gemini reads) become `inlineData`; a
//!   `file_id` (a file stored at OpenAI) is refused.
//! - **Refused** with a 400 naming the parameter ([`super::params`]): `logprobs`, `top_logprobs` (Gemini's
//!   `responseLogprobs` exists on some models, but its answer is not mapped back), `logit_bias`, `audio`,
//!   audio `modalities`, `prediction`, `web_search_options`, `functions`, `function_call`, `verbosity` other
//!   than medium. **Dropped**, as they do not change the answer: `cache_control` marks on parts (Gemini caches
//!   implicitly, and explicit caches are separate objects: the mark only affects price), `user`,
//!   `safety_identifier`, `store`, `metadata`, `service_tier`, `prompt_cache_key`, and `parallel_tool_calls`
//!   (Gemini cannot be told; the client may get several calls, as `true` allows).
//! - **Embedding token counts are estimates** (Gemini reports none): see [`embeddings_response`].
//! - **Streaming** ([`StreamTranslator`]): the finish_reason chunk goes out as soon as Gemini's finishReason
//!   arrives; with `include_usage` every chunk carries `usage: null` as OpenAI's do, and the usage chunk comes
//!   at the end. A stream that ends without any finishReason is an error (it was cut off).
//! - Only one candidate is supported (`n` > 1 is refused). Embeddings asked for as `base64` come back as floats.

use super::{ProviderCall, TranslateError, Usage};
use serde_json::{json, Value};

mod embed;
pub(crate) use embed::{embeddings_input_chars, embeddings_request, embeddings_response};
mod request;
pub(crate) use request::chat_request;
mod schema;
mod stream;
pub(crate) use stream::StreamTranslator;

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadRequest(msg.into())
}

fn bad_response(msg: impl Into<String>) -> TranslateError {
    TranslateError::BadResponse(msg.into())
}

/// `v[key]` as a string.
fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// BadRequest about `messages[i]`.
fn bad_msg(i: usize, what: &str) -> TranslateError {
    bad(format!("messages[{i}]{what}"))
}

/// `/v1beta/models/{model}:{method}`; a leading `models/` in `model` is accepted and not doubled.
fn model_path(model: &str, method: &str) -> Result<String, TranslateError> {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let bad_char = |c: char| matches!(c, '/' | '?' | '#' | '%' | ':') || c.is_whitespace() || c.is_control();
    if name.is_empty() || name.chars().any(bad_char) {
        return Err(bad(format!("invalid Gemini model name {model:?}")));
    }
    Ok(format!("/v1beta/models/{name}:{method}"))
}

/// What one Gemini `GenerateContentResponse` (or stream fragment of one) says, for the first candidate.
#[derive(Debug, Default)]
struct Fragment {
    has_candidate: bool,
    /// Concatenated text parts; None when the candidate had no (non-thought) text part.
    text: Option<String>,
    /// (name, args) of each function call.
    calls: Vec<(String, Value)>,
    finish: Option<String>,
    blocked: bool,
    usage: Option<Usage>,
}

fn parse_fragment(v: &Value) -> Result<Fragment, TranslateError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad_response("a response that is not a JSON object"))?;
    if obj.contains_key("error") {
        let msg = error_message(v.to_string().as_bytes()).unwrap_or_else(|| "an error".into());
        return Err(bad_response(format!("Gemini error: {msg}")));
    }
    let usage = obj.get("usageMetadata").map(usage_of);
    let candidate = match obj.get("candidates") {
        None | Some(Value::Null) => None,
        Some(Value::Array(c)) => c.iter().find(|c| c.get("index").is_none_or(|i| i == 0)),
        Some(_) => return Err(bad_response("`candidates` is not an array")),
    };
    let Some(candidate) = candidate else {
        let reason = obj.get("promptFeedback").and_then(|f| f.get("blockReason"));
        return Ok(Fragment {
            usage,
            blocked: reason.is_some_and(|r| !r.is_null()),
            ..Fragment::default()
        });
    };
    let finish = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut frag = Fragment {
        usage,
        finish,
        has_candidate: true,
        ..Fragment::default()
    };
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            frag.text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(call) = part.get("functionCall") {
            let name = call.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| bad_response("a functionCall without a name"))?;
            let args = call.get("args").filter(|a| !a.is_null()).cloned();
            let args = args.unwrap_or_else(|| json!({}));
            frag.calls.push((name.to_string(), args));
        } else {
            log::debug!("gemini: skipping an answer part that is neither text nor a function call");
        }
    }
    Ok(frag)
}

fn usage_of(meta: &Value) -> Usage {
    let n = |k: &str| super::token_count(meta.get(k));
    let thoughts = n("thoughtsTokenCount");
    Usage {
        prompt_tokens: n("promptTokenCount"),
        completion_tokens: n("candidatesTokenCount").saturating_add(thoughts),
        cached_tokens: n("cachedContentTokenCount"),
        reasoning_tokens: thoughts,
    }
}

/// Gemini finishReason -> OpenAI finish_reason.
fn finish_reason(reason: &str, tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "LANGUAGE" | "OTHER"
        | "IMAGE_SAFETY" => "content_filter",
        _ if tool_calls => "tool_calls",
        _ => "stop",
    }
}

fn tool_call_json(id: &str, index: usize, name: &str, args: &Value) -> Value {
    json!({"id": format!("call_{id}_{index}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}})
}

/// Gemini response body -> OpenAI `chat.completion` (id = Portico's call id, model to report, created unix secs).
pub(crate) fn chat_response(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<(Value, Usage), TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad_response(format!("invalid JSON: {e}")))?;
    let frag = parse_fragment(&v)?;
    if !frag.has_candidate && !frag.blocked {
        return Err(bad_response("no candidates and no block reason"));
    }
    let usage = frag.usage.unwrap_or_default();
    let mut message = json!({"role": "assistant", "content": frag.text});
    let reason = if frag.blocked {
        "content_filter"
    } else {
        finish_reason(frag.finish.as_deref().unwrap_or("STOP"), !frag.calls.is_empty())
    };
    if !frag.calls.is_empty() {
        let calls = frag
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| tool_call_json(id, i, name, args));
        if let Some(m) = message.as_object_mut() {
            m.insert("tool_calls".into(), calls.collect());
        }
    }
    Ok((
        super::sse::completion(id, model, created, message, reason, &usage),
        usage,
    ))
}

/// The human-readable reason from a Gemini error body ({"error":{"code","message","status"}}), if any.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    // streaming errors may come as a one-element array
    let v = match &v {
        Value::Array(a) => a.first()?,
        other => other,
    };
    let err = v.get("error")?;
    if let Some(s) = err.as_str().filter(|s| !s.trim().is_empty()) {
        return Some(s.trim().to_string());
    }
    let text = |k: &str| {
        err.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    text("message").or_else(|| text("status")).map(str::to_string)
}
