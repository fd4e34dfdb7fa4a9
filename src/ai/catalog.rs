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
