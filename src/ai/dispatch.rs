//! One AI call's attempts: each target in order, each of its provider's keys
//! in turn. A 429, 401/403, 408, 5xx, timeout or connection failure moves on
//! (a key that answered 429 or 401/403 cools down; a Retry-After on a 429
//! sets how long); a 404 moves to the next target (that provider may not know
//! the model); any other 4xx is the client's mistake and is returned at once.
//! Nothing is retried once an answer has been accepted, so a stream that has
//! begun reaching the client is never replayed.

use super::catalog::{Auth, Wire};
use super::inbound::Api;
use super::registry::{AiRegistry, Key, Target};
use super::surface::{Form, Surface};
use super::wire::{anthropic, gemini, openai};
use super::{ProviderCall, TranslateError};
use crate::error::GatewayError;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Embeddings,
    /// The rest of OpenAI's surface, passed through.
    Surface(Surface),
}

/// Why a call failed, for the client (OpenAI's error shape).
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: GatewayError,
    pub message: String,
    /// Seconds from a provider's Retry-After, passed on with a 429.
    pub retry_after: Option<u64>,
    /// The request field at fault, the error's `param`.
    pub param: Option<&'static str>,
}

impl Failure {
    pub(crate) fn new(error: GatewayError, message: impl Into<String>) -> Failure {
        Failure {
            error,
            message: message.into(),
            retry_after: None,
            param: None,
        }
    }

    /// Names the request field at fault.
    pub(crate) fn at(mut self, param: &'static str) -> Failure {
        self.param = Some(param);
        self
    }
}

/// The accepted answer of one target.
pub(crate) struct Accepted {
    pub target: Target,
    pub response: reqwest::Response,
    /// Provider requests sent for this call, the accepted one included.
    pub attempts: u32,
    /// The provider answered the client's own API (not Chat Completions).
    pub native: bool,
}

/// What one call sends: the client's request in its own API, and as Chat
/// Completions for the providers that do not speak that API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallRequest<'a> {
    pub api: Api,
    /// The client's body.
    pub original: &'a Value,
    /// The body as Chat Completions (`original` itself for chat).
    pub chat: &'a Value,
    /// A multipart body (`/v1/audio/transcriptions`); `original` then holds only its model.
    pub form: Option<&'a Form>,
}

impl<'a> CallRequest<'a> {
    /// A Chat Completions (or Embeddings) request.
    pub(crate) fn chat(req: &'a Value) -> CallRequest<'a> {
        CallRequest {
            api: Api::Chat,
            original: req,
            chat: req,
            form: None,
        }
    }
}

/// Longest error body read from a provider.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The provider call of `target`, and whether it is in the client's own API.
fn provider_call(
    target: &Target,
    endpoint: Endpoint,
    req: &CallRequest<'_>,
    stream: bool,
) -> Result<(ProviderCall, bool), Failure> {
    let p = &target.provider;
    if p.wire.model_in_url() && !super::catalog::url_safe_model(p.wire, &target.model) {
        return Err(Failure::new(
            GatewayError::InvalidModel,
            format!(
                "model {:?} cannot name a {} model: use letters, digits, '.', '-' and '_'",
                target.model, p.name
            ),
        )
        .at("model"));
    }
    if req.api != Api::Chat && req.api.native(target) {
        return Ok((req.api.native_call(target, req.original, stream), true));
    }
    if let Some(why) = req.api.untranslatable(req.original) {
        return Err(Failure::new(
            GatewayError::BadRequest,
            format!("provider {} ({}) cannot serve this request: {why}", p.name, p.kind),
        ));
    }
    chat_call(target, endpoint, req.chat, stream).map(|c| (c, false))
}

/// The provider call of a Chat Completions or Embeddings request.
fn chat_call(target: &Target, endpoint: Endpoint, req: &Value, stream: bool) -> Result<ProviderCall, Failure> {
    let p = &target.provider;
    let bad = |e: TranslateError| Failure::new(GatewayError::BadRequest, e.to_string());
    let model = target.model.as_str();
    let call = match (p.wire, endpoint) {
        (Wire::OpenAi, Endpoint::Chat) => openai::chat_request(req, model, stream),
        (Wire::OpenAi, Endpoint::Embeddings) => openai::embeddings_request(req, model),
        (Wire::OpenAi, Endpoint::Surface(s)) => surface_call(req, model, s, stream),
        (Wire::AzureOpenAi, e) => {
            let mut call = match e {
                Endpoint::Chat => openai::chat_request(req, model, stream),
                Endpoint::Embeddings => openai::embeddings_request(req, model),
                Endpoint::Surface(s) => surface_call(req, model, s, stream),
            };
            if let Some(obj) = call.body.as_object_mut() {
                obj.remove("model");
            }
            let version = p.api_version.as_deref().unwrap_or_default();
            call.path = format!("/openai/deployments/{model}{}?api-version={version}", call.path);
            call
        }
        (Wire::Anthropic, Endpoint::Chat) => anthropic::chat_request(req, model).map_err(bad)?,
        (Wire::Gemini, Endpoint::Chat) => gemini::chat_request(req, model).map_err(bad)?,
        (Wire::Gemini, Endpoint::Embeddings) => gemini::embeddings_request(req, model).map_err(bad)?,
        (Wire::Anthropic | Wire::Gemini, Endpoint::Surface(s)) => {
            return Err(Failure::new(
                GatewayError::UnsupportedForProvider,
                format!("provider {} ({}) does not serve /v1{}", p.name, p.kind, s.path()),
            ))
        }
        (Wire::Anthropic, Endpoint::Embeddings) => {
            return Err(Failure::new(
                GatewayError::UnsupportedForProvider,
                format!("provider {} (anthropic) offers no embeddings", p.name),
            ))
        }
    };
    Ok(call)
}

/// A call of the rest of the surface: the body with the model replaced; a
/// streamed completion asks for its usage, as a chat stream does.
fn surface_call(req: &Value, model: &str, surface: Surface, stream: bool) -> ProviderCall {
    let mut body = req.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("model".into(), Value::String(model.to_string()));
        if stream {
            o.insert("stream_options".into(), serde_json::json!({"include_usage": true}));
        }
    }
    ProviderCall {
        path: surface.path().into(),
        headers: Vec::new(),
        body,
    }
}

/// The provider's reason, from its error body in its own format.
pub(crate) fn provider_reason(wire: Wire, status: u16, body: &[u8]) -> String {
    let msg = match wire {
        Wire::Anthropic => anthropic::error_message(body),
        Wire::Gemini => gemini::error_message(body),
        Wire::OpenAi | Wire::AzureOpenAi => openai::error_message(body),
    };
    match msg {
        Some(m) => format!("{m} (HTTP {status})"),
        None => format!("HTTP {status}"),
    }
}

async fn read_limited(resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut resp = resp;
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit.saturating_sub(out.len()))]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

fn request(
    reg: &AiRegistry,
    target: &Target,
    call: &ProviderCall,
    key: Option<&Key>,
    form: Option<&Form>,
) -> reqwest::RequestBuilder {
    let p = &target.provider;
    let url = format!("{}{}", p.base_url, call.path);
    let mut rb = reg.client.post(url);
    rb = match form {
        // Azure names the deployment in the URL; the form carries no model.
        Some(f) => rb.multipart(f.to_reqwest((p.wire != Wire::AzureOpenAi).then_some(target.model.as_str()))),
        None => rb.json(&call.body),
    };
    if let Some(k) = key {
        rb = match p.auth {
            Auth::Bearer => rb.bearer_auth(k.secret()),
            Auth::ApiKeyHeader => rb.header("api-key", k.secret()),
            Auth::XApiKey => rb.header("x-api-key", k.secret()),
            Auth::GoogApiKey => rb.header("x-goog-api-key", k.secret()),
        };
    }
    for (n, v) in &p.headers {
        rb = rb.header(n, v);
    }
    for (n, v) in &call.headers {
        rb = rb.header(*n, v);
    }
    rb
}

/// Anthropic's own token count of a Messages request, from the first
/// Anthropic target and key that answers; None when none does (the caller
/// then estimates). Counting is free at Anthropic, so nothing is charged.
pub(crate) async fn count_tokens(reg: &AiRegistry, targets: &[Target], req: &Value) -> Option<Value> {
    for target in targets.iter().filter(|t| Api::Messages.native(t)) {
        let mut call = Api::Messages.native_call(target, req, false);
        call.path.push_str("/count_tokens");
        let now = crate::upstream::now_ms();
        for key in target.provider.keys_to_try(now, target) {
            let sent = tokio::time::timeout(reg.timeout, request(reg, target, &call, key, None).send()).await;
            let Ok(Ok(resp)) = sent else { continue };
            if !resp.status().is_success() {
                log::warn!(
                    "ai: provider {} counted no tokens: HTTP {}",
                    target.provider.name,
                    resp.status().as_u16()
                );
                continue;
            }
            let body = read_limited(resp, MAX_ERROR_BODY).await;
            if let Some(v) = serde_json::from_slice::<Value>(&body)
                .ok()
                .filter(|v| v.get("input_tokens").is_some_and(Value::is_u64))
            {
                return Some(v);
            }
        }
    }
    None
}

/// Tries the targets in order until one accepts the call.
pub(crate) async fn call(
    reg: &AiRegistry,
    targets: &[Target],
    endpoint: Endpoint,
    req: &CallRequest<'_>,
    stream: bool,
) -> Result<Accepted, Failure> {
    let mut last: Option<Failure> = None;
    let mut all_rate_limited = true;
    let mut attempts = 0;
    for target in targets {
        let (call, native) = match provider_call(target, endpoint, req, stream) {
            Ok(c) => c,
            // The client's request cannot be expressed for this provider.
            Err(f) if targets.len() == 1 => return Err(f),
            Err(f) => {
                all_rate_limited = false;
                last = Some(f);
                continue;
            }
        };
        let p = &target.provider;
        let now = crate::upstream::now_ms();
        let keys = p.keys_to_try(now, target);
        if keys.is_empty() {
            if p.keys.iter().all(|k| k.refused(now)) {
                // The operator's problem, not the client's: no Retry-After.
                all_rate_limited = false;
                last = Some(Failure::new(
                    GatewayError::ProviderAuth,
                    format!("provider {}: every key was refused (401/403)", p.name),
                ));
                continue;
            }
            let wait_ms = p.keys.iter().map(|k| k.cooling_for(now, target)).min().unwrap_or(0);
            let mut f = Failure::new(
                GatewayError::RateLimited,
                format!(
                    "provider {}: every key is cooling down after a 429 for {}",
                    p.name, target.model
                ),
            );
            f.retry_after = Some(wait_ms.div_ceil(1000).max(1));
            last = Some(f);
            continue;
        }
        for key in keys {
            attempts += 1;
            let sent = tokio::time::timeout(reg.timeout, request(reg, target, &call, key, req.form).send()).await;
            let resp = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    let why = if e.is_connect() {
                        "could not connect"
                    } else {
                        "request failed"
                    };
                    log::warn!("ai: provider {} ({}): {why}", p.name, target.model);
                    all_rate_limited = false;
                    last = Some(Failure::new(
                        GatewayError::ProviderError,
                        format!("provider {}: {why}", p.name),
                    ));
                    continue;
                }
                Err(_) => {
                    all_rate_limited = false;
                    last = Some(Failure::new(
                        GatewayError::UpstreamTimeout,
                        format!("provider {} did not answer within {:?}", p.name, reg.timeout),
                    ));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return Ok(Accepted {
                    target: target.clone(),
                    response: resp,
                    attempts,
                    native,
                });
            }
            let retry_after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = read_limited(resp, MAX_ERROR_BODY).await;
            // Providers echo keys in their errors: scrubbed before the log and the client.
            let reason = reg.scrubber.scrub(&format!(
                "provider {}: {}",
                p.name,
                provider_reason(p.wire, status, &body)
            ));
            log::warn!(
                "ai: {reason} (model {}, {})",
                target.model,
                key.map_or("no key", |k| &k.label)
            );
            let now = crate::upstream::now_ms();
            match status {
                429 => {
                    if let Some(k) = key {
                        let rest = retry_after.map_or(reg.key_cooldown, Duration::from_secs);
                        k.cool_model(now, target, rest);
                    }
                    let mut f = Failure::new(GatewayError::RateLimited, reason);
                    // The client always learns when to retry: the provider's
                    // word, else the cooldown Portico applies to the key.
                    f.retry_after = Some(retry_after.unwrap_or_else(|| reg.key_cooldown.as_secs().max(1)));
                    last = Some(f);
                }
                401 | 403 => {
                    if let Some(k) = key {
                        k.refuse(now, reg.key_cooldown);
                        crate::telemetry::metrics::METRICS
                            .ai_provider_auth_failures_total
                            .with_label_values(&[p.name.as_str(), k.label.as_str()])
                            .inc();
                    }
                    all_rate_limited = false;
                    last = Some(Failure::new(GatewayError::ProviderAuth, reason));
                }
                404 => {
                    all_rate_limited = false;
                    last = Some(Failure::new(GatewayError::ProviderError, reason));
                    break;
                }
                408 | 500..=599 => {
                    all_rate_limited = false;
                    last = Some(Failure::new(GatewayError::ProviderError, reason));
                }
                _ => return Err(Failure::new(GatewayError::BadRequest, reason)),
            }
        }
    }
    let mut f = last.unwrap_or_else(|| Failure::new(GatewayError::ProviderError, "no provider target is configured"));
    if !all_rate_limited && f.error == GatewayError::RateLimited {
        f.error = GatewayError::ProviderError;
    }
    Err(f)
}
