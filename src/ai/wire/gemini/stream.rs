//! Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` events (part of the Gemini adapter).

use super::super::sse::{ChunkHead, SseReader};
use super::super::SSE_DONE;
use super::{bad_response, finish_reason, parse_fragment, tool_call_json, TranslateError, Usage};
use bytes::Bytes;
use serde_json::{Map, Value};

/// Turns Gemini's `streamGenerateContent?alt=sse` byte stream into OpenAI `chat.completion.chunk` events.
#[derive(Debug)]
pub(crate) struct StreamTranslator {
    head: ChunkHead,
    sse: SseReader,
    role_sent: bool,
    tool_calls: usize,
    finish_sent: bool,
    done: bool,
    usage: Usage,
}

impl StreamTranslator {
    pub(crate) fn new(id: &str, model: &str, created: u64, include_usage: bool) -> StreamTranslator {
        let head = ChunkHead::new(id, model, created, include_usage);
        StreamTranslator {
            head,
            sse: SseReader::default(),
            role_sent: false,
            tool_calls: 0,
            finish_sent: false,
            done: false,
            usage: Usage::default(),
        }
    }

    /// Raw SSE bytes from streamGenerateContent?alt=sse as they arrive (split anywhere); returns OpenAI SSE events now ready.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        if self.done {
            log::debug!("gemini: ignoring {} bytes after the end of the stream", bytes.len());
            return Ok(out);
        }
        let mut sse = std::mem::take(&mut self.sse);
        let r = sse.push(bytes, &mut |data| self.dispatch(data, &mut out));
        self.sse = sse;
        r.map(|()| out)
    }

    /// Upstream ended: final chunk with finish_reason if not yet sent, usage chunk if include_usage
    /// (OpenAI shape: `choices: []` + `usage`), then SSE_DONE. Err if no candidate ever carried a finishReason (cut stream).
    pub(crate) fn finish(&mut self) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        // an unterminated last line/event is taken as complete (a cut one fails to parse below)
        let mut sse = std::mem::take(&mut self.sse);
        sse.finish(&mut |data| self.dispatch(data, &mut out))?;
        if !self.finish_sent {
            return Err(bad_response("the stream ended before any finishReason (cut off?)"));
        }
        self.done = true;
        if self.head.usage_null {
            out.push(self.head.usage_chunk(&self.usage));
        }
        out.push(Bytes::from_static(SSE_DONE));
        Ok(out)
    }

    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    fn dispatch(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
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
                let mut call = tool_call_json(&self.head.id, self.tool_calls, name, args);
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
            out.push(self.chunk(delta, None));
        }
        if !self.finish_sent && (frag.finish.is_some() || frag.blocked) {
            let tool_calls = self.tool_calls > 0;
            let reason = frag
                .finish
                .as_deref()
                .map_or("content_filter", |r| finish_reason(r, tool_calls));
            self.finish_sent = true;
            out.push(self.chunk(Map::new(), Some(reason)));
        }
        Ok(())
    }

    /// One choice chunk; the first one carries `role: assistant`.
    fn chunk(&mut self, mut delta: Map<String, Value>, finish_reason: Option<&str>) -> Bytes {
        if !self.role_sent {
            self.role_sent = true;
            delta.insert("role".into(), "assistant".into());
        }
        self.head.chunk(Value::Object(delta), finish_reason)
    }
}
