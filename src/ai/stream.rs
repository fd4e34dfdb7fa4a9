//! A streamed answer: the provider's events translated to OpenAI's chunks
//! and written as they come. Once the first byte is sent nothing is
//! retried; a failure mid-stream ends it with an OpenAI error event (and no
//! `[DONE]`), or the client API's own. A native stream that the provider
//! ends with its own error event has it passed as it came; one that ends
//! before its last event (`message_stop`, `response.completed`) gets the
//! client API's error event. Either is a failed call, never cached.
//!
//! Nothing streamed is free: when the client goes away, Portico keeps
//! reading the provider's stream, for at most `ai.drain_after_disconnect`,
//! to learn the usage the provider reports at its end; whatever the provider
//! did not report by then (or ever) is estimated ([`super::estimate`]) and
//! charged, and the call is marked `usage_estimated`.

use super::catalog::Wire;
use super::dispatch::{Accepted, CallRequest};
use super::estimate::{self, Sent};
use super::exchange::AiExchange;
use super::handler::{call_headers, finish_call};
use super::inbound::{Encoder, Sniffer};
use super::registry::AiRegistry;
use super::wire::{anthropic, gemini, openai};
use super::{TranslateError, Usage};
use crate::error::GatewayError;
use crate::serve::respond::ResponseContext;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
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
    /// The provider finished.
    Done,
    /// The provider ended a native stream with its own error event, which
    /// the client got as it came.
    Relayed,
    /// The client went away.
    ClientLeft,
    /// The provider failed mid-stream.
    Failed(String),
}

/// Provider bytes to the client's events.
enum Pipe {
    /// The provider speaks the client's API: bytes pass as they come.
    Native(Box<Sniffer>),
    /// Translated to chat chunks and, for another API, re-encoded.
    Translated {
        /// Boxed: the translators are large beside a native pipe.
        tr: Box<Translator>,
        encoder: Option<Box<dyn Encoder>>,
    },
}

impl Pipe {
    /// The client's events for `bytes` from the provider; chat chunks are
    /// kept in `sent` for an output estimate.
    fn push(&mut self, bytes: &[u8], sent: &mut Sent) -> Result<Vec<Bytes>, TranslateError> {
        match self {
            Pipe::Native(sniffer) => {
                sniffer.push(bytes);
                Ok(vec![Bytes::copy_from_slice(bytes)])
            }
            Pipe::Translated { tr, encoder } => {
                let chunks = tr.push(bytes)?;
                Ok(reencode(encoder, chunks, sent))
            }
        }
    }

    /// The provider's stream ended: its last events, and the client's final
    /// ones once `usage` (what is charged) is known.
    fn finish(&mut self, sent: &mut Sent) -> Result<Vec<Bytes>, TranslateError> {
        match self {
            Pipe::Native(_) => Ok(Vec::new()),
            Pipe::Translated { tr, encoder } => {
                let chunks = tr.finish()?;
                Ok(reencode(encoder, chunks, sent))
            }
        }
    }

    fn close(&mut self, usage: &Usage) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Pipe::Translated { encoder: Some(enc), .. } = self {
            enc.finish(usage, &mut out);
        }
        out
    }

    fn usage(&self) -> Usage {
        match self {
            Pipe::Native(s) => s.usage(),
            Pipe::Translated { tr, .. } => tr.usage(),
        }
    }
}

/// Keeps chat chunks for the estimate and re-encodes them when the client
/// speaks another API (`[DONE]` is left to the encoder's finish).
fn reencode(encoder: &mut Option<Box<dyn Encoder>>, chunks: Vec<Bytes>, sent: &mut Sent) -> Vec<Bytes> {
    chunks.iter().for_each(|c| sent.keep(c));
    let Some(enc) = encoder else { return chunks };
    let mut out = Vec::new();
    for c in &chunks {
        let Some(data) = std::str::from_utf8(c).ok().and_then(|s| s.strip_prefix("data: ")) else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<Value>(data.trim_end()) {
            enc.chunk(&v, &mut out);
        }
    }
    out
}

/// The events a stream wrote, kept for the AI cache within a size.
struct Recorder {
    events: Vec<Bytes>,
    bytes: usize,
    limit: usize,
}

impl Recorder {
    fn keep(rec: &mut Option<Recorder>, e: &Bytes) {
        if let Some(r) = rec {
            r.bytes += e.len();
            r.events.push(e.clone());
            if r.bytes > r.limit {
                *rec = None;
            }
        }
    }
}

/// What a stream wrote, kept for the AI cache and for the call log's capture.
struct Written {
    cache: Option<Recorder>,
    /// The first bytes of the stream, up to the route's capture size.
    capture: Option<(crate::calllog::capture::BodyBuf, usize)>,
}

impl Written {
    fn keep(&mut self, e: &Bytes) {
        Recorder::keep(&mut self.cache, e);
        if let Some((buf, max)) = &mut self.capture {
            buf.push(e, *max);
        }
    }
}

/// Streams the accepted answer to the client, translated event by event,
/// and charges what the call used. With `record` (a size limit), the events
/// written are returned when the stream ended well and within the limit, for
/// the AI cache (the head then says `x-cache: MISS`).
pub(crate) async fn answer(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    call: &CallRequest<'_>,
    mut accepted: Accepted,
    record: Option<usize>,
) -> Option<Vec<Bytes>> {
    let mut rec = Written {
        cache: record.map(|limit| Recorder {
            events: Vec::new(),
            bytes: 0,
            limit,
        }),
        capture: ctx.capture_max.map(|max| (Default::default(), max)),
    };
    let id = format!("chatcmpl-{}", ctx.request_id);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let model = accepted.target.model.clone();
    let mut pipe = if accepted.native {
        Pipe::Native(call.api.sniffer())
    } else {
        let encoder = call.api.encoder(call.original, ctx.request_id, &model);
        // An encoder needs the usage chunk; a chat client gets it when asked.
        let include_usage = encoder.is_some()
            || call
                .chat
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
        let tr = match accepted.target.provider.wire {
            Wire::OpenAi | Wire::AzureOpenAi => Translator::Pass(openai::PassThrough::new(include_usage)),
            Wire::Anthropic => {
                Translator::Anthropic(anthropic::StreamTranslator::new(&id, &model, created, include_usage))
            }
            Wire::Gemini => Translator::Gemini(gemini::StreamTranslator::new(&id, &model, created, include_usage)),
        };
        Pipe::Translated {
            tr: Box::new(tr),
            encoder,
        }
    };
    let mut sent = Sent::default();
    let mut head = call_headers(&accepted, None);
    if rec.cache.is_some() {
        head.push((HeaderName::from_static("x-cache"), HeaderValue::from_static("MISS")));
    }
    let end = if write_head(session, ctx, head).await {
        relay(session, reg, &mut accepted, &mut pipe, &mut sent, &mut rec).await
    } else {
        End::ClientLeft
    };
    // A native stream passes as it comes: only its events tell how it ended.
    let end = match (end, &pipe) {
        (End::Done, Pipe::Native(s)) if s.failed() => End::Relayed,
        (End::Done, Pipe::Native(s)) if !s.finished() => End::Failed("the stream ended before its last event".into()),
        (end, _) => end,
    };
    if let End::ClientLeft = end {
        drain(reg, &mut accepted, &mut pipe, &mut sent).await;
    }
    let native_text = match &pipe {
        Pipe::Native(s) => Some(s.text().tokens(&model)),
        Pipe::Translated { .. } => None,
    };
    let (usage, estimated) = estimate::complete(
        pipe.usage(),
        || estimate::prompt_tokens(&model, call.chat),
        || native_text.unwrap_or_else(|| sent.tokens(&model)),
    );
    let client_left = matches!(end, End::ClientLeft);
    if !matches!(end, End::Done) {
        rec.cache = None;
    }
    match end {
        End::Done => {
            for e in pipe.close(&usage) {
                rec.keep(&e);
                let _ = session.write_response_body(Some(e), false).await;
            }
        }
        End::ClientLeft => {}
        End::Relayed => ctx.failure = Some(GatewayError::ProviderError),
        End::Failed(msg) => {
            ctx.failure = Some(GatewayError::ProviderError);
            let provider = &accepted.target.provider.name;
            let message = reg.scrubber.scrub(&format!("provider {provider}: {msg}"));
            let mut out = Vec::new();
            // The encoder that wrote the stream so far ends it; a native
            // stream, whose events the provider wrote, gets its API's error
            // event without a new start.
            match &mut pipe {
                Pipe::Translated { encoder: Some(enc), .. } => enc.fail(&message, &mut out),
                Pipe::Native(_) => out.push(call.api.native_error_event(&message)),
                Pipe::Translated { encoder: None, .. } => out.push(crate::ai::wire::sse_data(
                    &crate::error::error_value(&message, GatewayError::ProviderError, None, ctx.request_id),
                )),
            }
            for e in out {
                rec.keep(&e);
                let _ = session.write_response_body(Some(e), false).await;
            }
        }
    }
    if !client_left {
        let _ = session.write_response_body(None, true).await;
    }
    finish_call(ctx, reg, &accepted, usage, estimated);
    if let Some((buf, _)) = rec.capture {
        let _ = ctx.response_body.set(Bytes::from(buf.buf));
    }
    rec.cache.map(|r| r.events)
}

/// Replays a stored stream (an AI cache hit) with `headers`.
pub(crate) async fn replay(
    session: &mut Session,
    ctx: &AiExchange<'_>,
    headers: Vec<(HeaderName, HeaderValue)>,
    events: &[Bytes],
) {
    if !write_head(session, ctx, headers).await {
        return;
    }
    for e in events {
        if session.write_response_body(Some(e.clone()), false).await.is_err() {
            return;
        }
    }
    let _ = session.write_response_body(None, true).await;
}

/// The event stream's response head; false when the client is gone.
async fn write_head(session: &mut Session, ctx: &AiExchange<'_>, headers: Vec<(HeaderName, HeaderValue)>) -> bool {
    let Ok(mut resp) = ResponseHeader::build(200, Some(headers.len() + 4)) else {
        return false;
    };
    for (name, value) in headers {
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
    pipe: &mut Pipe,
    sent: &mut Sent,
    rec: &mut Written,
) -> End {
    loop {
        let events = match tokio::time::timeout(reg.timeout, accepted.response.chunk()).await {
            Ok(Ok(Some(bytes))) => match pipe.push(&bytes, sent) {
                Ok(events) => events,
                Err(e) => return End::Failed(e.to_string()),
            },
            Ok(Ok(None)) => match pipe.finish(sent) {
                Ok(events) => {
                    for e in events {
                        rec.keep(&e);
                        if session.write_response_body(Some(e), false).await.is_err() {
                            return End::ClientLeft;
                        }
                    }
                    return End::Done;
                }
                Err(e) => return End::Failed(e.to_string()),
            },
            Ok(Err(_)) => return End::Failed("the provider closed the stream early".into()),
            Err(_) => return End::Failed(format!("the provider sent nothing for {:?}", reg.timeout)),
        };
        for e in events {
            rec.keep(&e);
            if session.write_response_body(Some(e), false).await.is_err() {
                return End::ClientLeft;
            }
        }
    }
}

/// The client left: reads on, within `ai.drain_after_disconnect`, for the
/// usage the provider reports at the end of its stream.
async fn drain(reg: &AiRegistry, accepted: &mut Accepted, pipe: &mut Pipe, sent: &mut Sent) {
    let deadline = tokio::time::Instant::now() + reg.drain_after_disconnect;
    loop {
        match tokio::time::timeout_at(deadline, accepted.response.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                if pipe.push(&bytes, sent).is_err() {
                    return;
                }
            }
            Ok(Ok(None)) => {
                let _ = pipe.finish(sent);
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
