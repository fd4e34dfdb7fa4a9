//! The HTTP side of the AI API: reads and checks the client's request,
//! resolves the model, checks budgets, runs the attempts (`dispatch`), and
//! answers in OpenAI's shape, translating a streamed answer event by event.
//! Every error is OpenAI's error shape ([`crate::error`]).

use super::access::Allowed;
use super::cache::AiCache;
use super::catalog::Wire;
use super::dispatch::{self, Accepted, CallRequest, Endpoint, Failure};
use super::endpoints::{self, ApiPath};
use super::exchange::AiExchange;
use super::inbound::Api;
use super::registry::{AiRegistry, Target};
use super::wire::{anthropic, gemini, openai};
use super::{call, estimate, price, usage, TranslateError, Usage};
use crate::error::GatewayError;
use crate::serve::respond::respond;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
use pingora_core::Result;
use pingora_proxy::Session;
use serde_json::Value;

/// What one AI call used, for the access log.
#[derive(Debug, Clone, Default)]
pub(crate) struct AiCall {
    /// The model the client asked for (an alias or `provider/model`).
    pub model: String,
    pub provider: String,
    pub provider_model: String,
    pub usage: Usage,
    pub cost_usd: f64,
    /// Some or all of `usage` is Portico's estimate ([`super::estimate`]).
    pub usage_estimated: bool,
    /// The model has no price; `cost_usd` is 0.
    pub unpriced: bool,
    /// Provider requests sent, the answering one included.
    pub attempts: u32,
    /// Answered from the route's AI cache: nothing charged.
    pub cache_hit: bool,
}

/// Largest answer read from a provider when not streaming.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub(crate) async fn fail(session: &mut Session, ctx: &AiExchange<'_>, f: Failure) -> Result<()> {
    fail_in(session, ctx, f, Api::Chat).await
}

/// Writes `f` in the error shape of the client's `api`.
pub(crate) async fn fail_in(session: &mut Session, ctx: &AiExchange<'_>, f: Failure, api: Api) -> Result<()> {
    let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    if let Some(s) = f.retry_after {
        headers.push((header::RETRY_AFTER, HeaderValue::from(s)));
    }
    let body = api.error_body(f.error, &f.message, f.param, ctx.request_id);
    respond(session, ctx, f.error.status(), &headers, body).await
}

pub(crate) fn failure(error: GatewayError, message: impl Into<String>) -> Failure {
    Failure::new(error, message)
}

/// Reads the request body as a JSON object, within `max` bytes.
pub(crate) async fn read_json(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    max: usize,
) -> std::result::Result<Value, Failure> {
    let body = read_body(session, ctx, max).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| failure(GatewayError::BadRequest, format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(failure(GatewayError::BadRequest, "request body must be a JSON object"));
    }
    Ok(v)
}

/// Reads the request body, within `max` bytes (kept for the call log when
/// the route captures it).
pub(crate) async fn read_body(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    max: usize,
) -> std::result::Result<Bytes, Failure> {
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
    let body = Bytes::from(body);
    if ctx.capture_max.is_some() {
        ctx.request_body = Some(body.clone());
    }
    Ok(body)
}

pub(crate) async fn respond_json(session: &mut Session, ctx: &AiExchange<'_>, status: u16, v: &Value) -> Result<()> {
    respond_json_with(session, ctx, status, v, Vec::new()).await
}

/// [`respond_json`] with more headers.
pub(crate) async fn respond_json_with(
    session: &mut Session,
    ctx: &AiExchange<'_>,
    status: u16,
    v: &Value,
    mut headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<()> {
    headers.push((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    respond(session, ctx, status, &headers, Bytes::from(v.to_string())).await
}

/// The headers that say what answered a call: `x-portico-provider`,
/// `x-portico-model` (the model that answered, after fallback),
/// `x-portico-attempts` and, when the answer is whole and priced,
/// `x-portico-cost-usd`.
pub(crate) fn call_headers(accepted: &Accepted, cost_usd: Option<f64>) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = Vec::with_capacity(4);
    let t = &accepted.target;
    for (name, value) in [
        ("x-portico-provider", t.provider.name.as_str()),
        ("x-portico-model", t.model.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.push((HeaderName::from_static(name), v));
        }
    }
    h.push((
        HeaderName::from_static("x-portico-attempts"),
        HeaderValue::from(accepted.attempts),
    ));
    if let Some(usd) = cost_usd {
        if let Ok(v) = HeaderValue::from_str(&format!("{usd:.8}")) {
            h.push((HeaderName::from_static("x-portico-cost-usd"), v));
        }
    }
    h
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves one request on an `ai` route; `path` is the normalised path,
/// `cache` the route's AI cache.
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    route_models: &[String],
    cache: Option<&AiCache>,
    path: &str,
) -> Result<()> {
    let method = session.req_header().method.clone();
    let allowed = Allowed {
        route: route_models,
        caller: reg.access.grant(ctx.consumer),
    };
    let parsed = ApiPath::parse(path);
    let api = match parsed {
        Some(ApiPath::Messages | ApiPath::CountTokens) => Api::Messages,
        Some(ApiPath::Responses) => Api::Responses,
        _ => Api::Chat,
    };
    let outcome = match parsed {
        None => Err(failure(
            GatewayError::RouteNotFound,
            format!("no AI endpoint at {path}; use POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models or GET /v1/models/{{id}}"),
        )),
        Some(api) if api.method() != method => Err(failure(
            GatewayError::MethodNotAllowed,
            format!("{path} answers {} only", api.method()),
        )),
        Some(ApiPath::Models) => return respond_json(session, ctx, 200, &endpoints::list(reg, allowed)).await,
        Some(ApiPath::Model(id)) => match endpoints::retrieve(reg, allowed, &id) {
            Some(v) => return respond_json(session, ctx, 200, &v).await,
            None => Err(failure(GatewayError::ModelNotFound, format!("model {id:?} does not exist")).at("model")),
        },
        Some(ApiPath::Chat) => call::serve(session, ctx, reg, allowed, cache, Endpoint::Chat, Api::Chat).await,
        Some(ApiPath::Embeddings) => {
            call::serve(session, ctx, reg, allowed, cache, Endpoint::Embeddings, Api::Chat).await
        }
        Some(ApiPath::Responses) => call::serve(session, ctx, reg, allowed, cache, Endpoint::Chat, Api::Responses).await,
        Some(ApiPath::Messages) => call::serve(session, ctx, reg, allowed, cache, Endpoint::Chat, Api::Messages).await,
        Some(ApiPath::CountTokens) => call::count_tokens(session, ctx, reg, allowed).await,
        Some(ApiPath::Surface(s)) => super::surface::serve(session, ctx, reg, allowed, s).await,
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => {
            ctx.failure = Some(f.error);
            fail_in(session, ctx, f, api).await
        }
    }
}

/// Resolves, budgets and dispatches one call; shared with prompt APIs.
pub(crate) async fn start_call(
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: Allowed<'_>,
    endpoint: Endpoint,
    call: &CallRequest<'_>,
    stream: bool,
) -> std::result::Result<Accepted, Failure> {
    let (model, targets) = resolve_call(ctx, reg, allowed, endpoint, call)?;
    dispatch_call(ctx, reg, model, targets, endpoint, call, stream).await
}

/// Checks a call's request and the caller's access to its model; the model
/// and the targets it resolves to.
pub(crate) fn resolve_call(
    ctx: &AiExchange<'_>,
    reg: &AiRegistry,
    allowed: Allowed<'_>,
    endpoint: Endpoint,
    call: &CallRequest<'_>,
) -> std::result::Result<(String, Vec<Target>), Failure> {
    let req = call.chat;
    let model = req
        .get("model")
        .and_then(|m| m.as_str())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| failure(GatewayError::BadRequest, "`model` is required").at("model"))?
        .to_string();
    match endpoint {
        Endpoint::Chat => {
            // A Responses request may hold only what OpenAI keeps (`previous_response_id`, item
            // references): no chat messages, yet fine natively; other targets refuse it by name.
            let ok = call.api == Api::Responses
                || req
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .is_some_and(|m| !m.is_empty());
            if !ok {
                return Err(failure(GatewayError::BadRequest, "`messages` must be a non-empty list").at("messages"));
            }
        }
        Endpoint::Embeddings => {
            if req.get("input").is_none_or(|i| i.is_null()) {
                return Err(failure(GatewayError::BadRequest, "`input` is required").at("input"));
            }
        }
        Endpoint::Surface(_) => {}
    }
    if !allowed.on_route(&model) {
        return Err(failure(
            GatewayError::ModelNotAllowed,
            format!("model {model:?} is not available on this route"),
        )
        .at("model"));
    }
    if !allowed.for_caller(&model) {
        return Err(failure(
            GatewayError::ModelNotAllowed,
            format!("consumer {:?} may not use model {model:?}", ctx.consumer),
        )
        .at("model"));
    }
    let targets = reg
        .resolve(&model)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| failure(GatewayError::ModelNotFound, format!("model {model:?} does not exist")).at("model"))?;
    Ok((model, targets))
}

/// Admits the targets a budget and the prices allow, and dispatches.
pub(crate) async fn dispatch_call(
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    model: String,
    targets: Vec<Target>,
    endpoint: Endpoint,
    call: &CallRequest<'_>,
    stream: bool,
) -> std::result::Result<Accepted, Failure> {
    let targets = usage::admit(reg, ctx.consumer, targets)?;
    ctx.call = Some(AiCall {
        model,
        ..AiCall::default()
    });
    let accepted = dispatch::call(reg, &targets, endpoint, call, stream).await?;
    if let Some(call) = ctx.call.as_mut() {
        call.provider = accepted.target.provider.name.clone();
        call.provider_model = accepted.target.model.clone();
    }
    Ok(accepted)
}

/// Counts a finished call: metrics, budgets, the access log record.
/// `estimated`: some of `u` is Portico's estimate. The cost, when the model
/// has a price.
pub(crate) fn finish_call(
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    accepted: &Accepted,
    u: Usage,
    estimated: bool,
) -> Option<f64> {
    charge(ctx, reg, &accepted.target, accepted.attempts, u, estimated)
}

/// Charges a whole answer that failed after its provider accepted the call
/// (too large, stalled, cut off, untranslatable): the provider bills the
/// prompt at least, so the estimated prompt is charged.
pub(crate) fn charge_failed(ctx: &mut AiExchange<'_>, reg: &AiRegistry, target: &Target, attempts: u32, chat: &Value) {
    let u = Usage {
        prompt_tokens: estimate::prompt_tokens(&target.model, chat),
        ..Usage::default()
    };
    charge(ctx, reg, target, attempts, u, true);
}

/// Counts a call's usage against `target`: metrics, budgets, the record.
fn charge(
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    target: &Target,
    attempts: u32,
    u: Usage,
    estimated: bool,
) -> Option<f64> {
    if estimated {
        crate::telemetry::metrics::METRICS
            .ai_usage_estimated_total
            .with_label_values(&[target.provider.name.as_str()])
            .inc();
    }
    let usd = price::cost(&u, target.price);
    let alias = ctx.call.as_ref().map_or("", |c| c.model.as_str());
    usage::record(ctx.consumer, alias, target, &u, usd);
    reg.budgets.charge(ctx.consumer, target, &u, usd);
    if let Some(call) = ctx.call.as_mut() {
        call.usage = u;
        call.cost_usd = usd;
        call.usage_estimated = estimated;
        call.unpriced = target.price.is_none();
        call.attempts = attempts;
    }
    target.price.map(|_| usd)
}

/// A whole answer in OpenAI's shape, with its usage.
pub(crate) struct Answer {
    pub body: Value,
    pub usage: Usage,
    /// Some of `usage` is an estimate: the provider reported none.
    pub estimated: bool,
    pub accepted: Accepted,
}

/// Reads a whole answer's bytes, within [`MAX_ANSWER`] and `ai.timeout` per read.
pub(crate) async fn read_answer(reg: &AiRegistry, accepted: &mut Accepted) -> std::result::Result<Vec<u8>, Failure> {
    let provider = &accepted.target.provider.name;
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(reg.timeout, accepted.response.chunk()).await {
            Ok(Ok(Some(c))) => {
                if body.len() + c.len() > MAX_ANSWER {
                    return Err(failure(GatewayError::ProviderError, "provider answer too large"));
                }
                body.extend_from_slice(&c);
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Err(_)) => {
                return Err(failure(
                    GatewayError::ProviderError,
                    format!("provider {provider}: answer cut off"),
                ))
            }
            Err(_) => {
                return Err(failure(
                    GatewayError::UpstreamTimeout,
                    format!("provider {provider} stalled"),
                ))
            }
        }
    }
}

/// Reads a whole (non-streamed) answer and translates it to OpenAI's shape.
pub(crate) async fn whole_answer(
    ctx: &AiExchange<'_>,
    reg: &AiRegistry,
    endpoint: Endpoint,
    call: &CallRequest<'_>,
    accepted: Accepted,
) -> std::result::Result<Answer, Failure> {
    let mut accepted = accepted;
    let body = read_answer(reg, &mut accepted).await?;
    let Accepted {
        target,
        response,
        attempts,
        native,
    } = accepted;
    let req = call.chat;
    let id = format!("chatcmpl-{}", ctx.request_id);
    let created = now_secs();
    let model = target.model.as_str();
    let translated = match (target.provider.wire, endpoint) {
        _ if native => serde_json::from_slice::<Value>(&body)
            .map(|v| (v, call.api.native_usage(&body)))
            .map_err(|_| TranslateError::BadResponse("the answer is not JSON".into())),
        (Wire::OpenAi | Wire::AzureOpenAi, Endpoint::Chat) => openai::response(&body, "choices"),
        (Wire::OpenAi | Wire::AzureOpenAi, Endpoint::Embeddings) => openai::response(&body, "data"),
        (Wire::Anthropic, _) => anthropic::chat_response(&body, &id, model, created),
        (Wire::Gemini, Endpoint::Chat) => gemini::chat_response(&body, &id, model, created),
        (Wire::Gemini, Endpoint::Embeddings) => {
            gemini::embeddings_response(&body, model, gemini::embeddings_input_chars(req))
        }
        (_, Endpoint::Surface(_)) => Err(TranslateError::BadResponse("not a chat answer".into())),
    };
    let (v, u) = translated.map_err(|e| {
        failure(
            GatewayError::ProviderError,
            reg.scrubber.scrub(&format!("provider {}: {}", target.provider.name, e)),
        )
    })?;
    let (u, estimated) = estimate::complete(
        u,
        || estimate::prompt_tokens(model, req),
        || if native { 0 } else { estimate::answer_tokens(model, &v) },
    );
    let body = if native {
        v
    } else {
        call.api.answer_of_chat(v, call.original, ctx.request_id)
    };
    Ok(Answer {
        body,
        usage: u,
        estimated,
        accepted: Accepted {
            target,
            response,
            attempts,
            native,
        },
    })
}
