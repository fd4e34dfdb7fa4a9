//! A streamed answer: the provider's events translated to OpenAI's chunks
//! and written as they come. Once the first byte is sent nothing is
//! retried; a failure mid-stream ends it with an OpenAI error event (and no
//! `[DONE]`).
//!
//! Nothing streamed is free: when the client goes away, Portico keeps
//! reading the provider's stream, for at most `ai.drain_after_disconnect`,
//! to learn the usage the provider reports at its end; whatever the provider
//! did not report by then (or ever) is estimated ([`super::estimate`]) and
//! charged, and the call is marked `usage_estimated`.

use super::catalog::Wire;
use super::dispatch::Accepted;
use super::estimate::{self, Sent};
use super::exchange::AiExchange;
use super::handler::{call_headers, finish_call};
use super::registry::AiRegistry;
use super::wire::{anthropic, gemini, openai};
use super::{TranslateError, Usage};
use crate::error::GatewayError;
use crate::serve::respond::ResponseContext;
use bytes::Bytes;
use http::{header, HeaderName};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use serde_json::Value;

enum Translator {
    Pass(openai::PassThrough),
    Anthropic(anthropic::StreamTranslator),
    Gemini(gemini::StreamTranslator),
}

impl Translator {
    fn push(&mut self, b: &[u8]) -> Result<Vec<Bytes>, TranslateError> {
        match self {
            Translator::Pass(t) => t.push(b),
            Translator::Anthropic(t) => t.push(b),
            Translator::Gemini(t) => t.push(b),
        }
    }
    fn finish(&mut self) -> Result<Vec<Bytes>, TranslateError> {
        match self {
            Translator::Pass(t) => t.finish(),
            Translator::Anthropic(t) => t.finish(),
            Translator::Gemini(t) => t.finish(),
        }
    }
    fn usage(&self) -> Usage {
        match self {
            Translator::Pass(t) => t.usage(),
            Translator::Anthropic(t) => t.usage(),
            Translator::Gemini(t) => t.usage(),
        }
    }
}

/// How the stream ended.
enum End {
    /// The provider finished; its last events are written.
    Done,
    /// The client went away.
    ClientLeft,
    /// The provider failed mid-stream.
    Failed(String),
}

/// Streams the accepted answer to the client, translated event by event,
/// and charges what the call used.
pub(crate) async fn answer(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    req: &Value,
    mut accepted: Accepted,
) {
    let id = format!("chatcmpl-{}", ctx.request_id);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
    let model = accepted.target.model.clone();
    let mut tr = match accepted.target.provider.wire {
        Wire::OpenAi | Wire::AzureOpenAi => Translator::Pass(openai::PassThrough::new(include_usage)),
        Wire::Anthropic => Translator::Anthropic(anthropic::StreamTranslator::new(&id, &model, created, include_usage)),
        Wire::Gemini => Translator::Gemini(gemini::StreamTranslator::new(&id, &model, created, include_usage)),
    };
    let mut sent = Sent::default();
    let end = if write_head(session, ctx, &accepted).await {
        relay(session, reg, &mut accepted, &mut tr, &mut sent).await
    } else {
        End::ClientLeft
    };
    let client_left = matches!(end, End::ClientLeft);
    match end {
        End::Done => {}
        End::ClientLeft => drain(reg, &mut accepted, &mut tr, &mut sent).await,
        End::Failed(msg) => {
            ctx.failure = Some(GatewayError::ProviderError);
            let provider = &accepted.target.provider.name;
            let message = reg.scrubber.scrub(&format!("provider {provider}: {msg}"));
            let event = crate::error::error_value(&message, GatewayError::ProviderError, None, ctx.request_id);
            let _ = session
                .write_response_body(Some(crate::ai::wire::sse_data(&event)), false)
                .await;
        }
    }
    if !client_left {
        let _ = session.write_response_body(None, true).await;
    }
    let (usage, estimated) = estimate::complete(
        tr.usage(),
        || estimate::prompt_tokens(&model, req),
        || sent.tokens(&model),
    );
    finish_call(ctx, reg, &accepted, usage, estimated);
}

/// The event stream's response head; false when the client is gone.
async fn write_head(session: &mut Session, ctx: &AiExchange<'_>, accepted: &Accepted) -> bool {
    let Ok(mut resp) = ResponseHeader::build(200, Some(8)) else {
        return false;
    };
    for (name, value) in call_headers(accepted, None) {
        let _ = resp.insert_header(name, value);
    }
    let _ = resp.insert_header(header::CONTENT_TYPE, "text/event-stream");
    let _ = resp.insert_header(header::CACHE_CONTROL, "no-cache");
    let _ = resp.insert_header(HeaderName::from_static("x-request-id"), ctx.request_id);
    ctx.decorate(session.req_header(), &mut resp);
    if session.req_header().version != http::Version::HTTP_2 {
        let _ = resp.insert_header(header::TRANSFER_ENCODING, "chunked");
    }
    session.write_response_header(Box::new(resp), false).await.is_ok()
}

/// Relays the provider's events until it finishes, fails, or the client leaves.
async fn relay(
    session: &mut Session,
    reg: &AiRegistry,
    accepted: &mut Accepted,
    tr: &mut Translator,
    sent: &mut Sent,
) -> End {
    loop {
        let events = match tokio::time::timeout(reg.timeout, accepted.response.chunk()).await {
            Ok(Ok(Some(bytes))) => match tr.push(&bytes) {
                Ok(events) => events,
                Err(e) => return End::Failed(e.to_string()),
            },
            Ok(Ok(None)) => match tr.finish() {
                Ok(events) => {
                    for e in events {
                        sent.keep(&e);
                        let _ = session.write_response_body(Some(e), false).await;
                    }
                    return End::Done;
                }
                Err(e) => return End::Failed(e.to_string()),
            },
            Ok(Err(_)) => return End::Failed("the provider closed the stream early".into()),
            Err(_) => return End::Failed(format!("the provider sent nothing for {:?}", reg.timeout)),
        };
        for e in events {
            sent.keep(&e);
            if session.write_response_body(Some(e), false).await.is_err() {
                return End::ClientLeft;
            }
        }
    }
}

/// The client left: reads on, within `ai.drain_after_disconnect`, for the
/// usage the provider reports at the end of its stream.
async fn drain(reg: &AiRegistry, accepted: &mut Accepted, tr: &mut Translator, sent: &mut Sent) {
    let deadline = tokio::time::Instant::now() + reg.drain_after_disconnect;
    loop {
        match tokio::time::timeout_at(deadline, accepted.response.chunk()).await {
            Ok(Ok(Some(bytes))) => match tr.push(&bytes) {
                Ok(events) => events.iter().for_each(|e| sent.keep(e)),
                Err(_) => return,
            },
            Ok(Ok(None)) => {
                if let Ok(events) = tr.finish() {
                    events.iter().for_each(|e| sent.keep(e));
                }
                return;
            }
            Ok(Err(_)) | Err(_) => {
                log::info!(
                    "ai: provider {}: the stream of a client that left did not end within {:?}; its usage is estimated",
                    accepted.target.provider.name,
                    reg.drain_after_disconnect
                );
                return;
            }
        }
    }
}
