//! Usage estimates for calls whose provider reported none: a stream the
//! client left before the usage came and the drain
//! (`ai.drain_after_disconnect`) did not reach it, or a provider that sends
//! no usage at all. Prompt tokens are counted in the client's request, output
//! tokens in what the provider had sent, with OpenAI's tokenizer for the
//! model's family (`tiktoken-rs`, the maintained Rust port of OpenAI's
//! tokenizer, with its vocabularies built in): `o200k_base` for current
//! OpenAI models and, as the closest public vocabulary, for every other
//! vendor's; `cl100k_base` for GPT-4 and GPT-3.5. An estimate is charged
//! like reported usage and marked `usage_estimated` in the access log.

use super::Usage;
use bytes::Bytes;
use serde_json::Value;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// Most text tokenized for one estimate; a longer text is extrapolated by size.
const SAMPLE: usize = 256 * 1024;
/// Most streamed answer kept for an output estimate.
const MAX_KEPT: usize = 4 * 1024 * 1024;
/// Tokens OpenAI counts per message beyond its content, and per answer.
const PER_MESSAGE: u64 = 4;
const PER_ANSWER: u64 = 3;
/// A low-detail image, the least an image part costs.
const PER_IMAGE: u64 = 85;

fn bpe(model: &str) -> &'static CoreBPE {
    let model = model.rsplit('/').next().unwrap_or(model);
    tiktoken_rs::bpe_for_tokenizer(get_tokenizer(model).unwrap_or(Tokenizer::O200kBase))
        .unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton())
}

/// Loads the vocabularies off the request path (once per process).
pub(crate) fn warm_up() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new().name("portico-tokenizer".into()).spawn(|| {
            let _ = tiktoken_rs::o200k_base_singleton();
            let _ = tiktoken_rs::cl100k_base_singleton();
        });
    });
}

/// Tokens in `text` for `model`.
pub(crate) fn count(model: &str, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let mut end = text.len().min(SAMPLE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let n = bpe(model).encode_ordinary(&text[..end]).len() as u64;
    if end == text.len() || end == 0 {
        n
    } else {
        (n as f64 * text.len() as f64 / end as f64).ceil() as u64
    }
}

/// Appends the string `v`, on a line of its own.
fn push_text(out: &mut String, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    }
}

/// Appends the string `v` as it comes: a piece of a streamed text.
fn push_piece(out: &mut String, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        out.push_str(s);
    }
}

/// Prompt tokens of an OpenAI chat or embeddings request.
pub(crate) fn prompt_tokens(model: &str, req: &Value) -> u64 {
    let mut text = String::new();
    let mut extra = 0;
    if let Some(messages) = req.get("messages").and_then(Value::as_array) {
        extra += PER_ANSWER;
        for m in messages {
            extra += PER_MESSAGE;
            match m.get("content") {
                Some(Value::Array(parts)) => {
                    for p in parts {
                        match p.get("type").and_then(Value::as_str) {
                            Some("text") => push_text(&mut text, p.get("text")),
                            Some("image_url") => extra += PER_IMAGE,
                            _ => {}
                        }
                    }
                }
                c => push_text(&mut text, c),
            }
            for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                push_text(&mut text, call.pointer("/function/name"));
                push_text(&mut text, call.pointer("/function/arguments"));
            }
        }
    }
    if let Some(tools) = req.get("tools") {
        text.push_str(&tools.to_string());
    }
    match req.get("input") {
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for i in items {
                match i {
                    Value::String(s) => {
                        text.push('\n');
                        text.push_str(s);
                    }
                    Value::Array(tokens) => extra += tokens.len() as u64,
                    _ => {}
                }
            }
        }
        _ => {}
    }
    count(model, &text) + extra
}

/// The text of one OpenAI answer message, or (`push_piece`) stream delta.
fn message_text(out: &mut String, m: &Value, push: fn(&mut String, Option<&Value>)) {
    push(out, m.get("content"));
    push(out, m.get("reasoning_content"));
    for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        push(out, call.pointer("/function/name"));
        push(out, call.pointer("/function/arguments"));
    }
}

/// Output tokens of a whole OpenAI chat answer.
pub(crate) fn answer_tokens(model: &str, answer: &Value) -> u64 {
    let mut text = String::new();
    for c in answer.get("choices").and_then(Value::as_array).into_iter().flatten() {
        if let Some(m) = c.get("message") {
            message_text(&mut text, m, push_text);
        }
    }
    count(model, &text)
}

/// `n` tokens counted in `kept` bytes, extrapolated over `dropped` more.
fn extrapolate(n: u64, kept: usize, dropped: usize) -> u64 {
    if dropped == 0 || kept == 0 {
        n
    } else {
        (n as f64 * (kept + dropped) as f64 / kept as f64).ceil() as u64
    }
}

/// The output text of a native stream as it passes, kept for an output
/// estimate within [`MAX_KEPT`] bytes; what comes beyond is only measured.
#[derive(Debug, Default)]
pub(crate) struct Text {
    kept: String,
    /// Bytes not kept, beyond [`MAX_KEPT`].
    dropped: usize,
}

impl Text {
    pub(crate) fn push(&mut self, piece: &str) {
        if self.kept.len() + piece.len() > MAX_KEPT {
            self.dropped += piece.len();
        } else {
            self.kept.push_str(piece);
        }
    }

    /// The text kept.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.kept
    }

    /// Output tokens in the text kept, extrapolated over what was dropped.
    pub(crate) fn tokens(&self, model: &str) -> u64 {
        extrapolate(count(model, &self.kept), self.kept.len(), self.dropped)
    }
}

/// The OpenAI-shaped events a stream sent (or would have sent, once its
/// client left), kept for an output estimate: shared buffers, no copies.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    events: Vec<Bytes>,
    kept: usize,
    /// Bytes not kept, beyond [`MAX_KEPT`].
    dropped: usize,
}

impl Sent {
    pub(crate) fn keep(&mut self, event: &Bytes) {
        if self.kept + event.len() > MAX_KEPT {
            self.dropped += event.len();
        } else {
            self.kept += event.len();
            self.events.push(event.clone());
        }
    }

    /// Output tokens in the events kept, extrapolated over those dropped.
    pub(crate) fn tokens(&self, model: &str) -> u64 {
        let mut text = String::new();
        for e in &self.events {
            let Some(data) = std::str::from_utf8(e).ok().and_then(|s| s.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(data.trim_end()) else {
                continue;
            };
            for c in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
                if let Some(d) = c.get("delta") {
                    message_text(&mut text, d, push_piece);
                }
                // A legacy completion's chunk.
                push_piece(&mut text, c.get("text"));
            }
        }
        extrapolate(count(model, &text), self.kept, self.dropped)
    }
}

/// The usage to charge: what the provider reported, with an estimate for
/// the part it did not report; true when anything was estimated.
pub(crate) fn complete(reported: Usage, prompt: impl FnOnce() -> u64, output: impl FnOnce() -> u64) -> (Usage, bool) {
    let mut u = reported;
    let mut estimated = false;
    if u.prompt_tokens == 0 {
        u.prompt_tokens = prompt();
        estimated |= u.prompt_tokens > 0;
    }
    if u.completion_tokens == 0 {
        u.completion_tokens = output();
        estimated |= u.completion_tokens > 0;
    }
    (u, estimated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_with_the_models_tokenizer() {
        assert_eq!(count("gpt-4o", "hello world"), 2);
        assert_eq!(count("claude-sonnet-4", ""), 0);
        let words = "word ".repeat(5000);
        let n = count("gemini-2.0-flash", &words);
        assert!((4_000..=6_000).contains(&n), "{n}");
        // Beyond the sample: extrapolated, within a few per cent.
        let long = "lorem ipsum dolor ".repeat(40_000);
        let exact = tiktoken_rs::o200k_base_singleton().encode_ordinary(&long).len() as f64;
        let est = count("gpt-4o", &long) as f64;
        assert!((est / exact - 1.0).abs() < 0.05, "{est} vs {exact}");
    }

    #[test]
    fn prompts_and_answers() {
        let req = json!({"model": "x", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "hello world"},
                                         {"type": "image_url", "image_url": {"url": "data:"}}]}]});
        let n = prompt_tokens("gpt-4o", &req);
        assert!(
            (PER_ANSWER + 2 * PER_MESSAGE + PER_IMAGE + 5..PER_ANSWER + 2 * PER_MESSAGE + PER_IMAGE + 12).contains(&n),
            "{n}"
        );
        assert_eq!(
            prompt_tokens("text-embedding-3-small", &json!({"input": "hello world"})),
            2
        );
        let answer = json!({"choices": [{"message": {"content": "hello world"}}]});
        assert_eq!(answer_tokens("gpt-4o", &answer), 2);
        let mut sent = Sent::default();
        for piece in ["hello", " world"] {
            let chunk = json!({"choices": [{"delta": {"content": piece}}]});
            sent.keep(&Bytes::from(format!("data: {chunk}\n\n")));
        }
        sent.keep(&Bytes::from_static(b"data: [DONE]\n\n"));
        assert!((2..=4).contains(&sent.tokens("gpt-4o")));
    }

    #[test]
    fn a_long_native_answer_is_kept_within_a_bound() {
        let mut text = Text::default();
        let piece = "lorem ipsum dolor sit amet ";
        let n = 2 * MAX_KEPT / piece.len();
        for _ in 0..n {
            text.push(piece);
        }
        assert!(text.as_str().len() <= MAX_KEPT, "{} bytes kept", text.as_str().len());
        let exact = tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(&piece.repeat(1000))
            .len() as f64
            * n as f64
            / 1000.0;
        let est = text.tokens("gpt-4o") as f64;
        assert!((est / exact - 1.0).abs() < 0.05, "{est} vs {exact}");
    }

    #[test]
    fn reported_usage_wins() {
        let reported = Usage {
            prompt_tokens: 11,
            completion_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(complete(reported, || 99, || 99), (reported, false));
        let (u, est) = complete(
            Usage {
                prompt_tokens: 11,
                ..Usage::default()
            },
            || 99,
            || 7,
        );
        assert_eq!((u.prompt_tokens, u.completion_tokens, est), (11, 7, true));
        assert_eq!(complete(Usage::default(), || 0, || 0), (Usage::default(), false));
    }
}
