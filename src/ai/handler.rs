//! The HTTP side of the AI API: reads and checks the client's request,
//! resolves the model, checks budgets, runs the attempts (`dispatch`), and
//! answers in OpenAI's shape, translating a streamed answer event by event.
//! Every error is OpenAI's error shape ([`crate::error`]).

use super::catalog::Wire;
use super::dispatch::{self, Accepted, Endpoint, Failure};
use super::exchange::AiExchange;
use super::registry::AiRegistry;
use super::wire::{anthropic, gemini, openai};
use super::{usage, TranslateError, Usage};
use crate::error::GatewayError;
use crate::serve::respond::{respond, respond_error};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use serde_json::{json, Value};

/// What one AI call used, for the access log.
#[derive(Debug, Clone, Default)]
pub(crate) struct AiCall {
    /// The model the client asked for (an alias or `provider/model`).
    pub model: String,
    pub provider: String,
    pub provider_model: String,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// Largest answer read from a provider when not streaming.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub(crate) async fn fail(session: &mut Session, ctx: &AiExchange<'_>, f: Failure) -> Result<()> {
    let mut headers = Vec::new();
    if let Some(s) = f.retry_after {
        headers.push((header::RETRY_AFTER, HeaderValue::from(s)));
    }
    respond_error(session, ctx, f.error, &f.message, headers).await
}

fn failure(error: GatewayError, message: impl Into<String>) -> Failure {
    Failure {
        error,
        message: message.into(),
        retry_after: None,
    }
}

/// Reads the request body as a JSON object, within `max` bytes.
pub(crate) async fn read_json(session: &mut Session, max: usize) -> std::result::Result<Value, Failure> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(failure(
                        GatewayError::PayloadTooLarge,
                        format!("request body exceeds {max} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err(failure(GatewayError::BadRequest, "could not read the request body")),
        }
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| failure(GatewayError::BadRequest, format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(failure(GatewayError::BadRequest, "request body must be a JSON object"));
    }
    Ok(v)
}

pub(crate) async fn respond_json(session: &mut Session, ctx: &AiExchange<'_>, status: u16, v: &Value) -> Result<()> {
    let headers = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    respond(session, ctx, status, &headers, Bytes::from(v.to_string())).await
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves one request on an `ai` route; `path` is the normalised path.
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: &[String],
    path: &str,
) -> Result<()> {
    let method = session.req_header().method.clone();
    let outcome = if path.ends_with("/models") && method == http::Method::GET {
        let data: Vec<Value> = reg
            .aliases()
            .iter()
            .filter(|a| allowed.is_empty() || allowed.iter().any(|m| m == *a))
            .map(|a| json!({"id": a, "object": "model", "created": 0, "owned_by": "portico"}))
            .collect();
        return respond_json(session, ctx, 200, &json!({"object": "list", "data": data})).await;
    } else if path.ends_with("/chat/completions") && method == http::Method::POST {
        chat(session, ctx, reg, allowed, Endpoint::Chat).await
    } else if path.ends_with("/embeddings") && method == http::Method::POST {
        chat(session, ctx, reg, allowed, Endpoint::Embeddings).await
    } else {
        Err(failure(
            GatewayError::RouteNotFound,
            format!("no AI endpoint for {method} {path}; use POST /v1/chat/completions, POST /v1/embeddings or GET /v1/models"),
        ))
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => {
            ctx.failure = Some(f.error);
            fail(session, ctx, f).await
        }
    }
}

/// Resolves, budgets and dispatches one call; shared with prompt APIs.
pub(crate) async fn start_call(
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: &[String],
    endpoint: Endpoint,
    req: &Value,
    stream: bool,
) -> std::result::Result<Accepted, Failure> {
    let model = req
        .get("model")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| failure(GatewayError::BadRequest, "`model` is required"))?
        .to_string();
    match endpoint {
        Endpoint::Chat => {
            let ok = req
                .get("messages")
                .and_then(|m| m.as_array())
                .is_some_and(|m| !m.is_empty());
            if !ok {
                return Err(failure(GatewayError::BadRequest, "`messages` must be a non-empty list"));
            }
        }
        Endpoint::Embeddings => {
            if req.get("input").is_none_or(|i| i.is_null()) {
                return Err(failure(GatewayError::BadRequest, "`input` is required"));
            }
        }
    }
    if !allowed.is_empty() && !allowed.contains(&model) {
        return Err(failure(
            GatewayError::Forbidden,
            format!("model {model:?} is not available on this route"),
        ));
    }
    let targets = reg
        .resolve(&model)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| failure(GatewayError::ModelNotFound, format!("model {model:?} does not exist")))?;
    let consumer = ctx.consumer.to_string();
    if let Err(msg) = reg.budgets.check(&consumer, &model) {
        return Err(failure(GatewayError::RateLimited, msg));
    }
    ctx.call = Some(AiCall {
        model: model.clone(),
        ..AiCall::default()
    });
    let accepted = dispatch::call(reg, &targets, endpoint, req, stream).await?;
    if let Some(call) = ctx.call.as_mut() {
        call.provider = accepted.target.provider.name.clone();
        call.provider_model = accepted.target.model.clone();
    }
    Ok(accepted)
}

/// Counts a finished call: metrics, budgets, the access log record.
pub(crate) fn finish_call(ctx: &mut AiExchange<'_>, reg: &AiRegistry, accepted: &Accepted, u: Usage) {
    let consumer = ctx.consumer.to_string();
    let p = &accepted.target.provider;
    let price = reg.prices.price(&p.name, &p.kind, &accepted.target.model);
    let usd = usage::cost(&u, price);
    let alias = ctx.call.as_ref().map(|c| c.model.clone()).unwrap_or_default();
    usage::record(&consumer, &alias, &u, usd);
    reg.budgets.charge(&consumer, &alias, &u, usd);
    if let Some(call) = ctx.call.as_mut() {
        call.usage = u;
        call.cost_usd = usd;
    }
}

/// Reads a whole (non-streamed) answer and translates it to OpenAI's shape.
pub(crate) async fn whole_answer(
    ctx: &AiExchange<'_>,
    reg: &AiRegistry,
    endpoint: Endpoint,
    req: &Value,
    accepted: Accepted,
) -> std::result::Result<(Value, Usage, Accepted), Failure> {
    let Accepted { target, mut response } = accepted;
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(reg.timeout, response.chunk()).await {
            Ok(Ok(Some(c))) => {
                if body.len() + c.len() > MAX_ANSWER {
                    return Err(failure(GatewayError::ProviderError, "provider answer too large"));
                }
                body.extend_from_slice(&c);
            }
            Ok(Ok(None)) => break,
            Ok(Err(_)) => {
                return Err(failure(
                    GatewayError::ProviderError,
                    format!("provider {}: answer cut off", target.provider.name),
                ))
            }
            Err(_) => {
                return Err(failure(
                    GatewayError::UpstreamTimeout,
                    format!("provider {} stalled", target.provider.name),
                ))
            }
        }
    }
    let id = format!("chatcmpl-{}", ctx.request_id);
    let created = now_secs();
    let model = target.model.as_str();
    let translated = match (target.provider.wire, endpoint) {
        (Wire::OpenAi | Wire::AzureOpenAi, Endpoint::Chat) => openai::response(&body, "choices"),
        (Wire::OpenAi | Wire::AzureOpenAi, Endpoint::Embeddings) => openai::response(&body, "data"),
        (Wire::Anthropic, _) => anthropic::chat_response(&body, &id, model, created),
        (Wire::Gemini, Endpoint::Chat) => gemini::chat_response(&body, &id, model, created),
        (Wire::Gemini, Endpoint::Embeddings) => {
            gemini::embeddings_response(&body, model, gemini::embeddings_input_chars(req))
        }
    };
    let (v, u) = translated.map_err(|e| {
        failure(
            GatewayError::ProviderError,
            reg.scrubber.scrub(&format!("provider {}: {}", target.provider.name, e)),
        )
    })?;
    Ok((v, u, Accepted { target, response }))
}

async fn chat(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: &[String],
    endpoint: Endpoint,
) -> std::result::Result<(), Failure> {
    let req = read_json(session, reg.max_body).await?;
    let stream = endpoint == Endpoint::Chat && req.get("stream").and_then(|s| s.as_bool()) == Some(true);
    let accepted = start_call(ctx, reg, allowed, endpoint, &req, stream).await?;
    if !stream {
        let (v, u, accepted) = whole_answer(ctx, reg, endpoint, &req, accepted).await?;
        finish_call(ctx, reg, &accepted, u);
        return respond_json(session, ctx, 200, &v)
            .await
            .map_err(|_| failure(GatewayError::Internal, "write failed"));
    }
    let include_usage = req.pointer("/stream_options/include_usage").and_then(|v| v.as_bool()) == Some(true);
    stream_answer(session, ctx, reg, accepted, include_usage).await;
    Ok(())
}

enum Translator {
    Pass(openai::PassThrough),
    Anthropic(anthropic::StreamTranslator),
    Gemini(gemini::StreamTranslator),
}

impl Translator {
    fn push(&mut self, b: &[u8]) -> std::result::Result<Vec<Bytes>, TranslateError> {
        match self {
            Translator::Pass(t) => t.push(b),
            Translator::Anthropic(t) => t.push(b),
            Translator::Gemini(t) => t.push(b),
        }
    }
    fn finish(&mut self) -> std::result::Result<Vec<Bytes>, TranslateError> {
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

/// Streams the accepted answer to the client, translated event by event.
/// Once the first byte is sent nothing is retried; a failure mid-stream ends
/// it with an OpenAI error event (and no `[DONE]`).
async fn stream_answer(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    mut accepted: Accepted,
    include_usage: bool,
) {
    let id = format!("chatcmpl-{}", ctx.request_id);
    let created = now_secs();
    let model = accepted.target.model.clone();
    let mut tr = match accepted.target.provider.wire {
        Wire::OpenAi | Wire::AzureOpenAi => Translator::Pass(openai::PassThrough::new(include_usage)),
        Wire::Anthropic => Translator::Anthropic(anthropic::StreamTranslator::new(&id, &model, created, include_usage)),
        Wire::Gemini => Translator::Gemini(gemini::StreamTranslator::new(&id, &model, created, include_usage)),
    };
    let Ok(mut resp) = ResponseHeader::build(200, Some(5)) else {
        return;
    };
    let _ = resp.insert_header(header::CONTENT_TYPE, "text/event-stream");
    let _ = resp.insert_header(header::CACHE_CONTROL, "no-cache");
    let _ = resp.insert_header(HeaderName::from_static("x-request-id"), ctx.request_id);
    if session.req_header().version != http::Version::HTTP_2 {
        let _ = resp.insert_header(header::TRANSFER_ENCODING, "chunked");
    }
    if session.write_response_header(Box::new(resp), false).await.is_err() {
        return;
    }
    let provider = accepted.target.provider.name.clone();
    let mut error: Option<String> = None;
    loop {
        match tokio::time::timeout(reg.timeout, accepted.response.chunk()).await {
            Ok(Ok(Some(bytes))) => match tr.push(&bytes) {
                Ok(events) => {
                    for e in events {
                        if session.write_response_body(Some(e), false).await.is_err() {
                            // The client left; count what was used so far.
                            finish_call(ctx, reg, &accepted, tr.usage());
                            return;
                        }
                    }
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            },
            Ok(Ok(None)) => {
                match tr.finish() {
                    Ok(events) => {
                        for e in events {
                            let _ = session.write_response_body(Some(e), false).await;
                        }
                    }
                    Err(e) => error = Some(e.to_string()),
                }
                break;
            }
            Ok(Err(_)) => {
                error = Some("the provider closed the stream early".into());
                break;
            }
            Err(_) => {
                error = Some(format!("the provider sent nothing for {:?}", reg.timeout));
                break;
            }
        }
    }
    if let Some(msg) = error {
        ctx.failure = Some(GatewayError::ProviderError);
        let message = reg.scrubber.scrub(&format!("provider {provider}: {msg}"));
        let event = json!({"error": {"message": message, "type": "provider_error",
                                     "code": 502, "request_id": ctx.request_id}});
        let _ = session
            .write_response_body(Some(crate::ai::wire::sse_data(&event)), false)
            .await;
    }
    let _ = session.write_response_body(None, true).await;
    finish_call(ctx, reg, &accepted, tr.usage());
}
