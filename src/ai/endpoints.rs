//! Which endpoint of the AI API a request path names. Only the documented
//! paths are served: `{prefix}/v1/chat/completions`, `{prefix}/v1/embeddings`,
//! `{prefix}/v1/responses`, `{prefix}/v1/messages`,
//! `{prefix}/v1/messages/count_tokens`, `{prefix}/v1/models` and
//! `{prefix}/v1/models/{id}`, where `{prefix}` is whatever the route is
//! mounted under (nothing, or e.g. `/openai`) and ends before the first
//! `/v1/`. Anything else on an AI route is 404, and a known path with the
//! wrong method is 405.

use super::access::Allowed;
use super::registry::AiRegistry;
use super::surface::Surface;
use http::Method;
use serde_json::{json, Value};

/// One endpoint of the API.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApiPath {
    Chat,
    Embeddings,
    /// OpenAI's Responses API.
    Responses,
    /// Anthropic's Messages API.
    Messages,
    /// Anthropic's token counting, `/v1/messages/count_tokens`.
    CountTokens,
    /// The rest of OpenAI's surface (`/v1/completions`, images, audio, ...).
    Surface(Surface),
    Models,
    /// `GET /v1/models/{id}`; the id percent-decoded (it may hold `/`).
    Model(String),
}

impl ApiPath {
    /// The endpoint `path` names, or None for any other path.
    pub(crate) fn parse(path: &str) -> Option<ApiPath> {
        let (_, rest) = path.split_once("/v1/")?;
        match rest {
            "chat/completions" => Some(ApiPath::Chat),
            "embeddings" => Some(ApiPath::Embeddings),
            "responses" => Some(ApiPath::Responses),
            "messages" => Some(ApiPath::Messages),
            "messages/count_tokens" => Some(ApiPath::CountTokens),
            "models" => Some(ApiPath::Models),
            _ if Surface::parse(rest).is_some() => Surface::parse(rest).map(ApiPath::Surface),
            _ => {
                let id = rest.strip_prefix("models/")?;
                let id = percent_encoding::percent_decode_str(id).decode_utf8().ok()?;
                (!id.is_empty()).then(|| ApiPath::Model(id.into_owned()))
            }
        }
    }

    /// The method the endpoint answers.
    pub(crate) fn method(&self) -> Method {
        match self {
            ApiPath::Chat
            | ApiPath::Embeddings
            | ApiPath::Responses
            | ApiPath::Messages
            | ApiPath::CountTokens
            | ApiPath::Surface(_) => Method::POST,
            ApiPath::Models | ApiPath::Model(_) => Method::GET,
        }
    }
}

fn model_object(id: &str, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

/// `GET /v1/models`: the aliases this route and caller may call.
pub(crate) fn list(reg: &AiRegistry, allowed: Allowed<'_>) -> Value {
    let data: Vec<Value> = reg
        .aliases()
        .into_iter()
        .filter(|a| allowed.allows(a))
        .map(|a| model_object(a, "portico"))
        .collect();
    json!({"object": "list", "data": data})
}

/// `GET /v1/models/{id}`: an alias, or `provider/model` of a configured
/// provider, that this route may call; None when it may not.
pub(crate) fn retrieve(reg: &AiRegistry, allowed: Allowed<'_>, id: &str) -> Option<Value> {
    if !allowed.allows(id) {
        return None;
    }
    if reg.models.contains_key(id) {
        return Some(model_object(id, "portico"));
    }
    let (provider, model) = id.split_once('/')?;
    (reg.providers.contains_key(provider) && !model.is_empty()).then(|| model_object(id, provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_paths() {
        assert_eq!(ApiPath::parse("/v1/chat/completions"), Some(ApiPath::Chat));
        assert_eq!(ApiPath::parse("/openai/v1/chat/completions"), Some(ApiPath::Chat));
        assert_eq!(ApiPath::parse("/v1/embeddings"), Some(ApiPath::Embeddings));
        assert_eq!(ApiPath::parse("/v1/models"), Some(ApiPath::Models));
        assert_eq!(
            ApiPath::parse("/v1/audio/transcriptions"),
            Some(ApiPath::Surface(Surface::Transcriptions))
        );
        assert_eq!(ApiPath::parse("/v1/messages/count_tokens"), Some(ApiPath::CountTokens));
        assert_eq!(
            ApiPath::parse("/v1/models/openai/gpt-4o"),
            Some(ApiPath::Model("openai/gpt-4o".into()))
        );
        assert_eq!(
            ApiPath::parse("/v1/models/openai%2Fgpt-4o"),
            Some(ApiPath::Model("openai/gpt-4o".into()))
        );
        for p in [
            "/v1/x/chat/completions",
            "/v1/chat/completions/",
            "/v1/foo/v1/chat/completions",
            "/chat/completions",
            "/v1/models/",
            "/v1/batches",
            "/v1/files",
            "/v1/embeddings/x",
        ] {
            assert_eq!(ApiPath::parse(p), None, "{p}");
        }
    }
}
