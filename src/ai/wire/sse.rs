//! Server-sent events, read and written in one place for every provider:
//! [`SseReader`] turns a byte stream split anywhere into complete events'
//! `data` (lines ended by `\n`, `\r\n` or a lone `\r`; comments and fields
//! other than `data` ignored; several `data` lines joined by `\n`), and
//! [`ChunkHead`] writes OpenAI's `chat.completion.chunk` events.

use super::{sse_data, TranslateError, Usage};
use bytes::Bytes;
use serde_json::{json, Value};

/// Longest event kept while waiting for its end.
const MAX_EVENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct SseReader {
    line: Vec<u8>,
    /// The previous byte was a `\r` ending a line; a `\n` right after it is part of that ending.
    after_cr: bool,
    data: Option<String>,
}

fn bad(msg: &str) -> TranslateError {
    TranslateError::BadResponse(msg.to_string())
}

impl SseReader {
    /// Feeds bytes; `on_event` gets each event's data as soon as the event is complete.
    pub(crate) fn push(
        &mut self,
        bytes: &[u8],
        on_event: &mut impl FnMut(&str) -> Result<(), TranslateError>,
    ) -> Result<(), TranslateError> {
        for &b in bytes {
            match b {
                b'\n' if std::mem::take(&mut self.after_cr) => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, on_event)?;
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
        if self.line.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT {
            // Dropped, so that a reader that reads on past the error (a native
            // stream's usage reader) stays within the bound.
            self.line = Vec::new();
            self.data = None;
            return Err(bad("a stream event is too large"));
        }
        Ok(())
    }

    /// The stream ended: an unterminated last line and event count as complete.
    pub(crate) fn finish(
        &mut self,
        on_event: &mut impl FnMut(&str) -> Result<(), TranslateError>,
    ) -> Result<(), TranslateError> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, on_event)?;
        }
        self.line_done(&[], on_event)
    }

    fn line_done(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(&str) -> Result<(), TranslateError>,
    ) -> Result<(), TranslateError> {
        let line = std::str::from_utf8(line).map_err(|_| bad("stream is not valid UTF-8"))?;
        if line.is_empty() {
            return match self.data.take() {
                Some(data) => on_event(&data),
                None => Ok(()),
            };
        }
        // Comments (`: ...`) have an empty field name; `event:`, `id:`, `retry:` are not needed.
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        Ok(())
    }
}

/// What every OpenAI chunk of one answer repeats.
#[derive(Debug, Default)]
pub(crate) struct ChunkHead {
    pub id: String,
    pub model: String,
    pub created: u64,
    /// Every chunk but the usage one carries `usage: null`, as OpenAI's do when
    /// `stream_options.include_usage` is on.
    pub usage_null: bool,
}

impl ChunkHead {
    /// `include_usage`: the client asked for usage (`stream_options`), so every
    /// chunk carries `"usage": null` until the last one.
    pub(crate) fn new(id: &str, model: &str, created: u64, include_usage: bool) -> ChunkHead {
        ChunkHead {
            id: id.to_string(),
            model: model.to_string(),
            created,
            usage_null: include_usage,
        }
    }

    /// A `chat.completion.chunk` carrying `delta`, with `finish_reason` (null while streaming).
    pub(crate) fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let mut v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        if self.usage_null {
            v["usage"] = Value::Null;
        }
        sse_data(&v)
    }

    /// The final usage chunk (`stream_options.include_usage`): no choices, the usage.
    pub(crate) fn usage_chunk(&self, usage: &Usage) -> Bytes {
        sse_data(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [], "usage": usage.to_json(),
        }))
    }
}

/// OpenAI's `chat.completion` object with one choice.
pub(crate) fn completion(
    id: &str,
    model: &str,
    created: u64,
    message: Value,
    finish_reason: &str,
    usage: &Usage,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage.to_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8], step: usize) -> Vec<String> {
        let mut r = SseReader::default();
        let mut out = Vec::new();
        let mut collect = |d: &str| {
            out.push(d.to_string());
            Ok(())
        };
        for part in input.chunks(step) {
            r.push(part, &mut collect).unwrap();
        }
        r.finish(&mut collect).unwrap();
        out
    }

    #[test]
    fn events_split_anywhere_with_any_line_ending() {
        let input = b": comment\nevent: x\ndata: a\ndata: b\n\ndata:c\r\n\r\ndata: d\r\rdata: tail";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(events(input, step), ["a\nb", "c", "d", "tail"], "step {step}");
        }
        let mut r = SseReader::default();
        assert!(r.push(b"data: \xff\n", &mut |_| Ok(())).is_err());
    }

    #[test]
    fn an_event_too_large_is_dropped_not_kept() {
        let mut r = SseReader::default();
        let chunk = vec![b'x'; 1 << 20];
        let mut errors = 0;
        for _ in 0..(MAX_EVENT >> 20) + 2 {
            errors += usize::from(r.push(&chunk, &mut |_| Ok(())).is_err());
        }
        assert_eq!(errors, 1);
        assert!(r.line.len() <= MAX_EVENT, "{} bytes held", r.line.len());
        let mut got = Vec::new();
        r.push(b"\ndata: after\n\n", &mut |d| {
            got.push(d.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["after"], "a reader that reads on still reads");
    }
}
