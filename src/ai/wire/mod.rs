//! Wire formats of the providers: OpenAI's (and the compatible vendors'),
//! Anthropic's Messages API and Google's Gemini, and the server-sent events
//! they stream in. Translation only: no HTTP, no credentials, no routing.

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod sse;

use bytes::Bytes;

/// Token counts of one call, in OpenAI's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Includes cached prompt tokens.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub(crate) fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// OpenAI's `usage` object.
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total(),
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        })
    }

    /// Reads OpenAI's `usage` object.
    pub(crate) fn from_openai(v: &serde_json::Value) -> Option<Usage> {
        let n = |p: &str| v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
        v.is_object().then(|| Usage {
            prompt_tokens: n("/prompt_tokens"),
            completion_tokens: n("/completion_tokens"),
            cached_tokens: n("/prompt_tokens_details/cached_tokens"),
            reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
        })
    }
}

/// A request that cannot be translated (400 to the client), or a provider answer that cannot be (502).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TranslateError {
    #[error("{0}")]
    BadRequest(String),
    #[error("provider answered something unexpected: {0}")]
    BadResponse(String),
}

/// What to send to the provider: path (appended to the provider's base URL), extra headers
/// (never credentials; the caller adds those), and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProviderCall {
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// One SSE event in OpenAI's streaming format: `data: {json}\n\n`.
pub(crate) fn sse_data(v: &serde_json::Value) -> Bytes {
    let mut s = String::from("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The final event of an OpenAI stream.
pub(crate) const SSE_DONE: &[u8] = b"data: [DONE]\n\n";
