//! Provider kinds: the wire format each speaks, how it authenticates, and the
//! public endpoints of the OpenAI-compatible vendors, so adding one of them is
//! one line of config (`kind: groq` and a key).

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    AzureOpenAi,
    Anthropic,
    Gemini,
}

impl Wire {
    /// Whether the model (or Azure deployment) name goes into the request URL.
    pub fn model_in_url(self) -> bool {
        matches!(self, Wire::AzureOpenAi | Wire::Gemini)
    }
}

/// Whether `model` may be put into a provider's URL path: letters, digits,
/// `.`, `-` and `_` only (every Azure deployment and Gemini model name is of
/// these), and not a dot segment; a Gemini name may start with `models/`.
/// Anything else could change the path the provider sees (`../`, `?`, `#`).
pub(crate) fn url_safe_model(wire: Wire, model: &str) -> bool {
    let name = match wire {
        Wire::Gemini => model.strip_prefix("models/").unwrap_or(model),
        _ => model,
    };
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// How the key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `api-key: <key>` (Azure)
    ApiKeyHeader,
    /// `x-api-key: <key>` (Anthropic)
    XApiKey,
    /// `x-goog-api-key: <key>` (Gemini)
    GoogApiKey,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    pub wire: Wire,
    pub auth: Auth,
    /// Public endpoint, including the version prefix OpenAI-style paths are appended to.
    pub base_url: Option<&'static str>,
}

const fn openai_like(base: &'static str) -> Kind {
    Kind {
        wire: Wire::OpenAi,
        auth: Auth::Bearer,
        base_url: Some(base),
    }
}

/// The vendors Portico knows by name. OpenAI-style base URLs end where
/// `/chat/completions` is appended.
pub(crate) const CATALOG: &[(&str, Kind)] = &[
    ("openai", openai_like("https://api.openai.com/v1")),
    (
        "azure_openai",
        Kind {
            wire: Wire::AzureOpenAi,
            auth: Auth::ApiKeyHeader,
            base_url: None,
        },
    ),
    (
        "anthropic",
        Kind {
            wire: Wire::Anthropic,
            auth: Auth::XApiKey,
            base_url: Some("https://api.anthropic.com"),
        },
    ),
    (
        "gemini",
        Kind {
            wire: Wire::Gemini,
            auth: Auth::GoogApiKey,
            base_url: Some("https://generativelanguage.googleapis.com"),
        },
    ),
    (
        "openai_compatible",
        Kind {
            wire: Wire::OpenAi,
            auth: Auth::Bearer,
            base_url: None,
        },
    ),
    ("mistral", openai_like("https://api.mistral.ai/v1")),
    ("deepseek", openai_like("https://api.deepseek.com/v1")),
    ("groq", openai_like("https://api.groq.com/openai/v1")),
    ("together", openai_like("https://api.together.xyz/v1")),
    ("fireworks", openai_like("https://api.fireworks.ai/inference/v1")),
    ("openrouter", openai_like("https://openrouter.ai/api/v1")),
    ("xai", openai_like("https://api.x.ai/v1")),
    ("perplexity", openai_like("https://api.perplexity.ai")),
    ("cerebras", openai_like("https://api.cerebras.ai/v1")),
    ("deepinfra", openai_like("https://api.deepinfra.com/v1/openai")),
    ("sambanova", openai_like("https://api.sambanova.ai/v1")),
    ("nvidia", openai_like("https://integrate.api.nvidia.com/v1")),
    ("moonshot", openai_like("https://api.moonshot.ai/v1")),
    (
        "dashscope",
        openai_like("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
    ),
    // Embeddings and rerank.
    ("jina", openai_like("https://api.jina.ai/v1")),
    ("voyage", openai_like("https://api.voyageai.com/v1")),
    ("ollama", openai_like("http://127.0.0.1:11434/v1")),
    ("vllm", openai_like("http://127.0.0.1:8000/v1")),
    ("lmstudio", openai_like("http://127.0.0.1:1234/v1")),
    ("llamacpp", openai_like("http://127.0.0.1:8080/v1")),
];

pub(crate) fn lookup(kind: &str) -> Option<Kind> {
    CATALOG.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

pub(crate) fn names() -> Vec<&'static str> {
    CATALOG.iter().map(|(k, _)| *k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_in_urls() {
        for ok in [
            "gpt-4o",
            "my_deployment.v2",
            "gemini-2.5-flash",
            "models/gemini-2.0-flash",
        ] {
            assert!(url_safe_model(Wire::Gemini, ok), "{ok}");
        }
        assert!(!url_safe_model(Wire::AzureOpenAi, "models/gpt-4o"));
        for bad in [
            "",
            "..",
            ".x",
            "x/../../../v1/embeddings#",
            "dalle3/images/generations?api-version=2024-02-01#",
            "a b",
            "a%2Fb",
            "a:b",
            "a?b",
        ] {
            assert!(!url_safe_model(Wire::AzureOpenAi, bad), "{bad:?}");
            assert!(!url_safe_model(Wire::Gemini, bad), "{bad:?}");
        }
    }
}
