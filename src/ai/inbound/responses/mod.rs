//! OpenAI's Responses API (`POST /v1/responses`) over every provider.
//!
//! **Native** to OpenAI (`kind: openai`) and Azure OpenAI: the client's body
//! goes to `/responses` (Azure: `/openai/v1/responses`, the v1 surface where
//! the deployment name is the body's `model` and no `api-version` is needed)
//! with only `model` replaced, so everything the Responses API has works
//! there: hosted tools, `previous_response_id`, `store: true`, `include`,
//! background mode. The answer passes through; its usage is read from the
//! Response's `usage` ([`usage_of`], and [`sniffer`] on `response.completed`
//! for a stream).
//!
//! **Translated** through Chat Completions for every other provider
//! (Anthropic, Gemini, the OpenAI-compatible vendors): [`to_chat`] builds the
//! chat request (`request`), [`from_chat`] turns the chat answer into a
//! Response object and [`Encoder`] a chat stream into the Responses API's
//! typed events (`answer`, `stream`). What the translation maps is listed in
//! `request`'s docs.
//!
//! **Refused** for translated targets, with a 400 that names it
//! ([`untranslatable`]), because Chat Completions cannot say it:
//! `previous_response_id`, `conversation`, `prompt` and `item_reference`
//! items (they need the state OpenAI stores; Portico keeps none, so a
//! translated call behaves as `store: false`), `background: true`, hosted
//! tools (`web_search`, `file_search`, `computer_use_preview`, `mcp`, ...)
//! and their items, files and images by `file_id` (stored at OpenAI) or
//! `file_url`, `top_logprobs`, `max_tool_calls`, and parameters this
//! translation does not know (newer than it: passing them unread could
//! change the answer unseen). Such a request still
//! reaches a native target: a model whose first target is Anthropic and
//! second OpenAI falls back to OpenAI with the request unchanged.

mod answer;
mod request;
mod stream;

#[cfg(test)]
mod tests;

pub(crate) use answer::{from_chat, usage_of};
pub(crate) use request::{to_chat, untranslatable};
pub(crate) use stream::{sniffer, Encoder};

use crate::ai::catalog::Wire;
use crate::ai::registry::Target;
use crate::ai::ProviderCall;
use serde_json::Value;

/// The native call: the client's body with `model` set to the target's
/// model (Azure: its deployment). `stream` is in the body already.
pub(crate) fn native_call(target: &Target, req: &Value, _stream: bool) -> ProviderCall {
    let mut body = req.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("model".into(), Value::String(target.model.clone()));
    }
    let path = match target.provider.wire {
        Wire::AzureOpenAi => "/openai/v1/responses",
        Wire::OpenAi | Wire::Anthropic | Wire::Gemini => "/responses",
    };
    ProviderCall {
        path: path.into(),
        headers: Vec::new(),
        body,
    }
}
