//! Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` events (part of the Gemini adapter).

use super::{bad_response, finish_reason, parse_fragment, tool_call_json, TranslateError, Usage};
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Most bytes of one unfinished SSE line/event held while streaming; more means the upstream misbehaves.
const MAX_PENDING: usize = 16 << 20;

/// Turns Gemini's `streamGenerateContent?alt=sse` byte stream into OpenAI `chat.completion.chunk` events.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Bytes of the line not yet ended by `\n`.
    line: Vec<u8>,
    /// `data:` lines of the event being read (joined by `\n`), None when the event has none yet.
    data: Option<String>,
    role_sent: bool,
    tool_calls: usize,
    finish_sent: bool,
    done: bool,
    usage: Usage,
}

impl StreamTranslator {
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            line: Vec::new(),
            data: None,
            role_sent: false,
            tool_calls: 0,
            finish_sent: false,
            done: false,
            usage: Usage::default(),
        }
    }

    /// Raw SSE bytes from streamGenerateContent?alt=sse as they arrive (split anywhere); returns OpenAI SSE events now ready.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        if self.done {
            log::debug!("gemini: ignoring {} bytes after the end of the stream", bytes.len());
            return Ok(out);
        }
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let line = if self.line.is_empty() {
                self.take_line(&rest[..pos], &mut out)
            } else {
                self.line.extend_from_slice(&rest[..pos]);
                let line = std::mem::take(&mut self.line);
                self.take_line(&line, &mut out)
            };
            line?;
            rest = &rest[pos + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() + self.data.as_ref().map_or(0, String::len) > MAX_PENDING {
            return Err(bad_response("a stream event larger than 16 MiB"));
        }
        Ok(out)
    }

    /// Upstream ended: final chunk with finish_reason if not yet sent, usage chunk if include_usage
    /// (OpenAI shape: `choices: []` + `usage`), then SSE_DONE. Err if no candidate ever carried a finishReason (cut stream).
    pub fn finish(&mut self) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        // an unterminated last line/event is taken as complete (a cut one fails to parse below)
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.take_line(&line, &mut out)?;
        }
        self.dispatch(&mut out)?;
        if !self.finish_sent {
            return Err(bad_response("the stream ended before any finishReason (cut off?)"));
        }
        self.done = true;
        if self.include_usage {
            let mut chunk = self.chunk_base();
            chunk.insert("choices".into(), json!([]));
            chunk.insert("usage".into(), self.usage.to_json());
            out.push(super::super::sse_data(&Value::Object(chunk)));
        }
        out.push(Bytes::from_static(super::super::SSE_DONE));
        Ok(out)
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    fn take_line(&mut self, line: &[u8], out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.dispatch(out);
        }
        let line = std::str::from_utf8(line).map_err(|_| bad_response("a stream line that is not UTF-8"))?;
        if line.starts_with(':') {
            return Ok(()); // SSE comment
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        let Some(data) = self.data.take() else { return Ok(()) };
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| bad_response(format!("invalid JSON in stream: {e}")))?;
        let frag = parse_fragment(&v)?;
        if let Some(usage) = frag.usage {
            self.usage = usage;
        }
        let mut delta = Map::new();
        if let Some(text) = frag.text.filter(|t| !t.is_empty()) {
            delta.insert("content".into(), text.into());
        }
        if !frag.calls.is_empty() {
            let mut calls = Vec::with_capacity(frag.calls.len());
            for (name, args) in &frag.calls {
                let mut call = tool_call_json(&self.id, self.tool_calls, name, args);
                if let Some(c) = call.as_object_mut() {
                    c.insert("index".into(), self.tool_calls.into());
                }
                calls.push(call);
                self.tool_calls += 1;
            }
            delta.insert("tool_calls".into(), calls.into());
        }
        if !delta.is_empty() {
            if self.finish_sent {
                log::debug!("gemini: stream content after the finishReason; passing it on");
            }
            out.push(self.chunk(delta, Value::Null));
        }
        if !self.finish_sent && (frag.finish.is_some() || frag.blocked) {
            let tool_calls = self.tool_calls > 0;
            let reason = frag
                .finish
                .as_deref()
                .map_or("content_filter", |r| finish_reason(r, tool_calls));
            self.finish_sent = true;
            out.push(self.chunk(Map::new(), reason.into()));
        }
        Ok(())
    }

    fn chunk_base(&self) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert("id".into(), self.id.clone().into());
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("created".into(), self.created.into());
        chunk.insert("model".into(), self.model.clone().into());
        chunk
    }

    /// One choice chunk; the first one carries `role: assistant`.
    fn chunk(&mut self, mut delta: Map<String, Value>, finish_reason: Value) -> Bytes {
        if !self.role_sent {
            self.role_sent = true;
            delta.insert("role".into(), "assistant".into());
        }
        let mut chunk = self.chunk_base();
        chunk.insert(
            "choices".into(),
            json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]),
        );
        if self.include_usage {
            chunk.insert("usage".into(), Value::Null); // as OpenAI does on every chunk but the usage one
        }
        super::super::sse_data(&Value::Object(chunk))
    }
}
