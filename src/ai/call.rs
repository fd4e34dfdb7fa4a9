//! One call of the AI API in the client's API: the request read and checked,
//! the model resolved, the route's AI cache asked ([`super::cache`]), the
//! targets dispatched, and the answer written (whole, or streamed by
//! [`super::stream`]) and stored in the cache when it may be. Also Anthropic's
//! `count_tokens`.

use super::access::Allowed;
use super::cache::{self, AiCache, Entry, Stored};
use super::dispatch::{self, CallRequest, Endpoint, Failure};
use super::estimate;
use super::exchange::AiExchange;
use super::handler::{
    call_headers, charge_failed, dispatch_call, failure, finish_call, read_json, resolve_call, respond_json,
    whole_answer, AiCall,
};
use super::inbound::Api;
use super::registry::AiRegistry;
use super::stream;
use crate::error::GatewayError;
use crate::serve::respond::respond;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue};
use pingora_proxy::Session;
use serde_json::Value;

/// `POST /v1/messages/count_tokens`: Anthropic's own count for a model
/// served by Anthropic, else an estimate with the model family's tokenizer
/// ([`estimate`]). Nothing is charged.
pub(crate) async fn count_tokens(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: Allowed<'_>,
) -> std::result::Result<(), Failure> {
    let req = read_json(session, ctx, reg.max_body).await?;
    let mut countable = req.clone();
    if let Some(o) = countable.as_object_mut() {
        o.entry("max_tokens").or_insert(Value::from(1));
    }
    let chat = Api::Messages
        .to_chat(&countable)
        .map_err(|e| failure(GatewayError::BadRequest, e.to_string()))?;
    let model = chat
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !allowed.allows(&model) {
        return Err(failure(
            GatewayError::ModelNotAllowed,
            format!("model {model:?} is not allowed here"),
        )
        .at("model"));
    }
    let targets = reg
        .resolve(&model)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| failure(GatewayError::ModelNotFound, format!("model {model:?} does not exist")).at("model"))?;
    let counted = match dispatch::count_tokens(reg, &targets, &req).await {
        Some(v) => v,
        None => {
            // Up to a 256 KiB sample of tokenizing: off the serving thread.
            let family = targets.first().map_or(model.clone(), |t| t.model.clone());
            let n = tokio::task::spawn_blocking(move || estimate::prompt_tokens(&family, &chat))
                .await
                .map_err(|_| failure(GatewayError::Internal, "the token count failed"))?;
            serde_json::json!({"input_tokens": n})
        }
    };
    respond_json(session, ctx, 200, &counted)
        .await
        .map_err(|_| failure(GatewayError::Internal, "write failed"))
}

/// Serves one call in the client's `api`.
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    reg: &AiRegistry,
    allowed: Allowed<'_>,
    cache: Option<&AiCache>,
    endpoint: Endpoint,
    api: Api,
) -> Result<(), Failure> {
    let req = read_json(session, ctx, reg.max_body).await?;
    let stream = endpoint == Endpoint::Chat && req.get("stream").and_then(|s| s.as_bool()) == Some(true);
    let chat_req = match api {
        Api::Chat => None,
        _ => Some(
            api.to_chat(&req)
                .map_err(|e| failure(GatewayError::BadRequest, e.to_string()))?,
        ),
    };
    let call = CallRequest {
        api,
        original: &req,
        chat: chat_req.as_ref().unwrap_or(&req),
        form: None,
    };
    let (model, targets) = resolve_call(ctx, reg, allowed, endpoint, &call)?;
    let cached = cache.and_then(|c| {
        let key = c.key(&cache::Request {
            api,
            endpoint: if endpoint == Endpoint::Embeddings {
                "embeddings"
            } else {
                "chat"
            },
            stream,
            consumer: ctx.consumer,
            targets: &targets,
            body: &req,
        })?;
        Some((c, key))
    });
    if let Some((c, key)) = &cached {
        if let Some(entry) = c.get(key) {
            return serve_hit(session, ctx, model, &entry).await;
        }
    }
    let accepted = dispatch_call(ctx, reg, model, targets, endpoint, &call, stream).await?;
    let miss = || (HeaderName::from_static("x-cache"), HeaderValue::from_static("MISS"));
    if !stream {
        let (target, attempts) = (accepted.target.clone(), accepted.attempts);
        let answer = match whole_answer(ctx, reg, endpoint, &call, accepted).await {
            Ok(a) => a,
            Err(f) => {
                charge_failed(ctx, reg, &target, attempts, call.chat);
                return Err(f);
            }
        };
        let usd = finish_call(ctx, reg, &answer.accepted, answer.usage, answer.estimated);
        let mut headers = call_headers(&answer.accepted, usd);
        let body = Bytes::from(answer.body.to_string());
        if let Some((c, key)) = cached {
            headers.push(miss());
            let t = &answer.accepted.target;
            let content_type = HeaderValue::from_static("application/json");
            c.put(
                key,
                &t.provider.name,
                &t.model,
                Stored::Whole {
                    content_type,
                    body: body.clone(),
                },
            );
        }
        headers.push((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
        return respond(session, ctx, 200, &headers, body)
            .await
            .map_err(|_| failure(GatewayError::Internal, "write failed"));
    }
    let (provider, provider_model) = (accepted.target.provider.name.clone(), accepted.target.model.clone());
    let record = cached.as_ref().map(|(c, _)| c.max_entry_size);
    if let Some(events) = stream::answer(session, ctx, reg, &call, accepted, record).await {
        if let Some((c, key)) = cached {
            c.put(key, &provider, &provider_model, Stored::Stream(events));
        }
    }
    Ok(())
}

/// Answers from the cache: nothing is called or charged.
async fn serve_hit(
    session: &mut Session,
    ctx: &mut AiExchange<'_>,
    model: String,
    entry: &Entry,
) -> Result<(), Failure> {
    ctx.call = Some(AiCall {
        model,
        provider: entry.provider.clone(),
        provider_model: entry.model.clone(),
        cache_hit: true,
        ..AiCall::default()
    });
    let mut headers = vec![(HeaderName::from_static("x-cache"), HeaderValue::from_static("HIT"))];
    for (name, value) in [
        ("x-portico-provider", &entry.provider),
        ("x-portico-model", &entry.model),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.push((HeaderName::from_static(name), v));
        }
    }
    headers.push((HeaderName::from_static("x-portico-attempts"), HeaderValue::from(0)));
    match &entry.body {
        Stored::Whole { content_type, body } => {
            headers.push((header::CONTENT_TYPE, content_type.clone()));
            respond(session, ctx, 200, &headers, body.clone())
                .await
                .map_err(|_| failure(GatewayError::Internal, "write failed"))
        }
        Stored::Stream(events) => {
            stream::replay(session, ctx, headers, events).await;
            Ok(())
        }
    }
}
