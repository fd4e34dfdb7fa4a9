//! Wire formats of the providers: OpenAI's (and the compatible vendors'),
//! Anthropic's Messages API and Google's Gemini, and the server-sent events
//! they stream in. Translation only: no HTTP, no credentials, no routing.
//!
//! What Anthropic and Gemini share lives here: the conversation's turns as
//! they accept them ([`push_turn`], [`open_with_user`]), and in [`params`]
//! the OpenAI parameters they lack (refused by name) and `reasoning_effort`.

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod params;
pub(crate) mod sse;

use bytes::Bytes;
use serde_json::Value;

/// Token counts read from a provider are clamped to this, so that no sum of
/// them can overflow whatever the provider sends.
pub(crate) const MAX_COUNT: u64 = 1 << 40;

/// A token count a provider reported at `v`: 0 when absent, at most [`MAX_COUNT`].
pub(crate) fn token_count(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0).min(MAX_COUNT)
}

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
    pub(crate) fn to_json(self) -> Value {
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total(),
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        })
    }

    /// Reads OpenAI's `usage` object.
    pub(crate) fn from_openai(v: &Value) -> Option<Usage> {
        let n = |p: &str| token_count(v.pointer(p));
        v.is_object().then(|| Usage {
            prompt_tokens: n("/prompt_tokens"),
            completion_tokens: n("/completion_tokens"),
            cached_tokens: n("/prompt_tokens_details/cached_tokens"),
            reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
        })
    }
}

/// Text of the user turn put before a conversation that opens with the
/// assistant. Anthropic and Gemini both want the user to speak first and
/// refuse empty text, so the turn needs some text: a neutral note, not an
/// instruction (such as "Please continue"), so that the model has nothing in
/// it to answer or obey.
pub(crate) const OPENING_USER_TEXT: &str = "(conversation continues)";

/// Conversation turns as Anthropic and Gemini want them: `(role, parts)`.
pub(crate) type Turns = Vec<(&'static str, Vec<Value>)>;

/// Adds a turn of `role`, merged into the previous one when that has the same
/// role (both providers want user and assistant turns to alternate; OpenAI
/// allows runs, and tool results are user turns for both). Empty turns add nothing.
pub(crate) fn push_turn(turns: &mut Turns, role: &'static str, parts: Vec<Value>) {
    match turns.last_mut() {
        _ if parts.is_empty() => {}
        Some((last, prev)) if *last == role => prev.extend(parts),
        _ => turns.push((role, parts)),
    }
}

/// Puts a user turn holding only `placeholder` (a text part with
/// [`OPENING_USER_TEXT`]) before a conversation that opens with the assistant.
pub(crate) fn open_with_user(turns: &mut Turns, user: &'static str, placeholder: Value) {
    if turns.first().is_some_and(|(role, _)| *role != user) {
        turns.insert(0, (user, vec![placeholder]));
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
pub(crate) fn sse_data(v: &Value) -> Bytes {
    let mut s = String::from("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The final event of an OpenAI stream.
pub(crate) const SSE_DONE: &[u8] = b"data: [DONE]\n\n";
