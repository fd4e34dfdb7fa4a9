//! Anthropic's SSE stream -> OpenAI chunks, event by event (a child module of
//! `anthropic`: its helpers are shared).

use super::super::sse::{ChunkHead, SseReader};
use super::super::{TranslateError, Usage, SSE_DONE};
use super::{bad_resp, error_text, finish_reason, read_usage, str_at, u64_at};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Incremental translation of Anthropic's SSE stream into OpenAI chunks.
#[derive(Debug, Default)]
pub(crate) struct StreamTranslator {
    head: ChunkHead,
    sse: SseReader,
    role_sent: bool,
    /// Anthropic content block index -> OpenAI tool call index.
    tools: HashMap<u64, usize>,
    finish_sent: bool,
    /// `message_stop` seen: the answer is complete, anything after it is ignored.
    stopped: bool,
    /// `finish` has returned the closing events.
    finished: bool,
    /// The stream failed; every later call returns this.
    failed: Option<TranslateError>,
    usage: Usage,
}

impl StreamTranslator {
    pub(crate) fn new(id: &str, model: &str, created: u64, include_usage: bool) -> StreamTranslator {
        let head = ChunkHead::new(id, model, created, include_usage);
        StreamTranslator {
            head,
            ..Default::default()
        }
    }

    /// Feed raw bytes as they arrive (they may split events or lines anywhere); returns the OpenAI SSE
    /// events ready to send now. Each text/tool delta is emitted as soon as its event is complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        let res = if self.failed.is_some() {
            Ok(()) // `record` reports it
        } else {
            let mut sse = std::mem::take(&mut self.sse);
            let r = sse.push(bytes, &mut |data| self.event(data, &mut out));
            self.sse = sse;
            r
        };
        self.record(res).map(|()| out)
    }

    /// Remember a failure so that later calls report it too.
    fn record<T>(&mut self, res: Result<T, TranslateError>) -> Result<T, TranslateError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Err(e) = &res {
            self.failed = Some(e.clone());
        }
        res
    }

    /// Translate one complete Anthropic event.
    fn event(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        if self.stopped {
            return Ok(());
        }
        let ev: Value = serde_json::from_str(data).map_err(|e| bad_resp(format!("invalid JSON in stream: {e}")))?;
        let null = &Value::Null;
        match str_at(&ev, "type").unwrap_or_default() {
            "message_start" => {
                read_usage(ev.pointer("/message/usage").unwrap_or(null), &mut self.usage);
                self.ensure_role(out);
            }
            "content_block_start" => {
                self.ensure_role(out);
                let block = ev.get("content_block").unwrap_or(null);
                match str_at(block, "type") {
                    Some("tool_use") => {
                        let Some(index) = u64_at(&ev, "index") else {
                            return Err(bad_resp("content_block_start without index"));
                        };
                        let i = self.tools.len();
                        self.tools.insert(index, i);
                        let (id, name) = (str_at(block, "id").unwrap_or_default(), str_at(block, "name"));
                        let function = json!({"name": name.unwrap_or_default(), "arguments": ""});
                        let call = json!({"index": i, "id": id, "type": "function", "function": function});
                        out.push(self.head.chunk(json!({ "tool_calls": [call] }), None));
                    }
                    Some("text") => self.content(str_at(block, "text"), out),
                    _ => {} // thinking, redacted_thinking, server tools: not exposed
                }
            }
            "content_block_delta" => {
                self.ensure_role(out);
                let delta = ev.get("delta").unwrap_or(null);
                match str_at(delta, "type") {
                    Some("text_delta") => self.content(str_at(delta, "text"), out),
                    Some("input_json_delta") => {
                        let tool = u64_at(&ev, "index").and_then(|index| self.tools.get(&index));
                        let i = *tool.ok_or_else(|| bad_resp("input_json_delta for a block that is not a tool_use"))?;
                        match str_at(delta, "partial_json") {
                            Some(part) if !part.is_empty() => {
                                let call = json!({"index": i, "function": {"arguments": part}});
                                out.push(self.head.chunk(json!({ "tool_calls": [call] }), None));
                            }
                            _ => {}
                        }
                    }
                    _ => {} // thinking_delta, signature_delta, citations_delta: not exposed
                }
            }
            "message_delta" => {
                read_usage(ev.get("usage").unwrap_or(null), &mut self.usage);
                if let Some(reason) = ev.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.ensure_role(out);
                    self.finish_sent = true;
                    out.push(self.head.chunk(json!({}), Some(finish_reason(Some(reason)))));
                }
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(bad_resp(error_text(&ev))),
            "content_block_stop" | "ping" => {}
            other => log::debug!("anthropic stream: ignoring event type `{other}`"),
        }
        Ok(())
    }

    fn content(&self, text: Option<&str>, out: &mut Vec<Bytes>) {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            out.push(self.head.chunk(json!({ "content": t }), None));
        }
    }

    fn ensure_role(&mut self, out: &mut Vec<Bytes>) {
        if !std::mem::replace(&mut self.role_sent, true) {
            out.push(self.head.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    /// The upstream ended. Returns the remaining events: the final chunk with finish_reason if not yet sent,
    /// the usage chunk when include_usage (OpenAI's shape: `choices: []` and `usage`), then SSE_DONE.
    /// Err if the stream was cut before `message_stop` (the caller reports it to the client).
    pub(crate) fn finish(&mut self) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        let res = self.close(&mut out);
        self.record(res).map(|()| out)
    }

    fn close(&mut self, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        if self.failed.is_some() || std::mem::replace(&mut self.finished, true) {
            return Ok(()); // `record` reports a failure; a second finish has nothing to add
        }
        if !self.stopped {
            // Be lenient about a last event missing its trailing blank line.
            let mut sse = std::mem::take(&mut self.sse);
            sse.finish(&mut |data| self.event(data, out))?;
        }
        if !self.stopped {
            return Err(bad_resp("stream ended before message_stop"));
        }
        if !self.finish_sent {
            self.ensure_role(out);
            self.finish_sent = true;
            out.push(self.head.chunk(json!({}), Some("stop")));
        }
        if self.head.usage_null {
            out.push(self.head.usage_chunk(&self.usage));
        }
        out.push(Bytes::from_static(SSE_DONE));
        Ok(())
    }

    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }
}
