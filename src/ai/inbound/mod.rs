//! The APIs a client may speak besides OpenAI's Chat Completions: OpenAI's
//! Responses API (`POST /v1/responses`) and Anthropic's Messages API
//! (`POST /v1/messages`). Each reaches every provider:
//!
//! - **natively** where the provider speaks it (Responses to OpenAI and
//!   Azure, Messages to Anthropic): the client's body goes through with the
//!   model replaced, the answer comes back as the provider sent it, and only
//!   its usage is read ([`Sniffer`] for a stream);
//! - **through Chat Completions** everywhere else: the request becomes a chat
//!   request ([`Api::to_chat`]), which the provider's wire translation
//!   handles as any chat call, and the chat answer, or each chat chunk of a
//!   stream ([`Encoder`]), becomes the client's API again.
//!
//! Either way the call has the same fallback, keys, usage, cost and budgets
//! as a chat call.

pub(crate) mod messages;
pub(crate) mod responses;

use super::catalog::Wire;
use super::estimate::Text;
use super::registry::Target;
use super::wire::sse::SseReader;
use super::{ProviderCall, TranslateError, Usage};
use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::Value;

/// The API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// OpenAI's Chat Completions (and Embeddings): the gateway's own.
    Chat,
    /// OpenAI's Responses API.
    Responses,
    /// Anthropic's Messages API.
    Messages,
}

/// Re-encodes the OpenAI chat chunks of a translated stream as the events
/// of the client's API.
pub(crate) trait Encoder: Send {
    /// One chat chunk (the JSON of a `data:` event; `[DONE]` is not passed).
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>);
    /// The stream ended normally; `usage` is what the call is charged.
    fn finish(&mut self, usage: &Usage, out: &mut Vec<Bytes>);
    /// The provider failed mid-stream: the client's error event.
    fn fail(&mut self, message: &str, out: &mut Vec<Bytes>);
}

/// What a native stream showed so far.
#[derive(Debug, Default)]
pub(crate) struct Sniffed {
    /// The usage the provider reported so far.
    pub usage: Usage,
    /// The output text seen so far (within a bound).
    pub text: Text,
    /// The provider's last event of a whole answer came.
    pub finished: bool,
    /// The provider ended the stream with its own error event (which the
    /// client got as it came): the call failed.
    pub failed: bool,
}

/// Reads a native stream that passes through unchanged: the SSE framing
/// here, each event's meaning by its API's `read` (what it says of usage,
/// text and how the stream ended). An event that is not JSON, not UTF-8 or
/// too large stops nothing: the client gets the provider's bytes as they are.
pub(crate) struct Sniffer {
    sse: SseReader,
    read: fn(&Value, &mut Sniffed),
    seen: Sniffed,
}

impl Sniffer {
    pub(crate) fn new(read: fn(&Value, &mut Sniffed)) -> Sniffer {
        Sniffer {
            sse: SseReader::default(),
            read,
            seen: Sniffed::default(),
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let (read, seen) = (self.read, &mut self.seen);
        let _ = self.sse.push(bytes, &mut |data| {
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                read(&v, seen);
            }
            Ok(())
        });
    }

    pub(crate) fn usage(&self) -> Usage {
        self.seen.usage
    }

    pub(crate) fn text(&self) -> &Text {
        &self.seen.text
    }

    pub(crate) fn finished(&self) -> bool {
        self.seen.finished
    }

    pub(crate) fn failed(&self) -> bool {
        self.seen.failed
    }
}

impl Api {
    /// Whether `target`'s provider serves this API itself.
    pub(crate) fn native(self, target: &Target) -> bool {
        let p = &target.provider;
        match self {
            Api::Chat => true,
            Api::Responses => p.wire == Wire::AzureOpenAi || (p.wire == Wire::OpenAi && p.kind == "openai"),
            Api::Messages => p.wire == Wire::Anthropic,
        }
    }

    /// Why the client's request cannot go through Chat Completions to a
    /// provider that does not speak its API (e.g. `previous_response_id`,
    /// which needs OpenAI's stored state); None when it can. A target
    /// refused this way is skipped for the next, as any request a provider
    /// cannot express.
    pub(crate) fn untranslatable(self, original: &Value) -> Option<String> {
        match self {
            Api::Chat => None,
            Api::Messages => messages::untranslatable(original),
            Api::Responses => responses::untranslatable(original),
        }
    }

    /// The client's request as a Chat Completions request (the same model).
    pub(crate) fn to_chat(self, req: &Value) -> Result<Value, TranslateError> {
        match self {
            Api::Chat => Ok(req.clone()),
            Api::Responses => responses::to_chat(req),
            Api::Messages => messages::to_chat(req),
        }
    }

    /// A whole chat answer as the client's API answers; `req` is the
    /// client's request, `id` the request id.
    pub(crate) fn answer_of_chat(self, answer: Value, req: &Value, id: &str) -> Value {
        match self {
            Api::Chat => answer,
            Api::Responses => responses::from_chat(&answer, req, id),
            Api::Messages => messages::from_chat(&answer, id),
        }
    }

    /// The encoder of a translated stream; None for chat, which passes.
    pub(crate) fn encoder(self, req: &Value, id: &str, model: &str) -> Option<Box<dyn Encoder>> {
        match self {
            Api::Chat => None,
            Api::Responses => Some(Box::new(responses::Encoder::new(req, id, model))),
            Api::Messages => Some(Box::new(messages::Encoder::new(id, model))),
        }
    }

    /// The provider call of a native target: the client's body, `model`
    /// replaced. Only for targets where [`Api::native`] holds.
    pub(crate) fn native_call(self, target: &Target, req: &Value, stream: bool) -> ProviderCall {
        match self {
            Api::Responses => responses::native_call(target, req, stream),
            Api::Chat | Api::Messages => messages::native_call(target, req),
        }
    }

    /// The usage of a native whole answer.
    pub(crate) fn native_usage(self, body: &[u8]) -> Usage {
        match self {
            Api::Responses => responses::usage_of(body),
            Api::Chat | Api::Messages => messages::usage_of(body),
        }
    }

    /// The usage reader of a native stream.
    pub(crate) fn sniffer(self) -> Box<Sniffer> {
        Box::new(match self {
            Api::Responses => responses::sniffer(),
            Api::Chat | Api::Messages => messages::sniffer(),
        })
    }

    /// The event that ends a native stream the provider cut: the API's own
    /// error event (Anthropic's `error`, the Responses API's `error`).
    pub(crate) fn native_error_event(self, message: &str) -> Bytes {
        let (name, data) = match self {
            Api::Messages => (
                "error",
                serde_json::json!({"type": "error", "error": {"type": "api_error", "message": message}}),
            ),
            Api::Responses | Api::Chat => (
                "error",
                serde_json::json!({"type": "error", "code": "provider_error", "message": message, "param": null}),
            ),
        };
        Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    }

    /// The client's error body: Anthropic's shape on the Messages API,
    /// OpenAI's ([`crate::error::error_body`]) elsewhere.
    pub(crate) fn error_body(self, err: GatewayError, message: &str, param: Option<&str>, request_id: &str) -> Bytes {
        match self {
            Api::Messages => messages::error_body(err, message, request_id),
            Api::Chat | Api::Responses => crate::error::error_body(message, err, param, request_id),
        }
    }
}
