//! OpenAI's own wire format, for OpenAI, Azure OpenAI and the
//! OpenAI-compatible vendors: requests pass through with the model replaced,
//! answers pass through with their usage read. A streamed call always asks
//! the provider for the final usage chunk (`stream_options.include_usage`), so
//! tokens are counted; the chunk is removed again when the client did not
//! ask for it.

use super::sse::SseReader;
use super::{ProviderCall, TranslateError, Usage, SSE_DONE};
use bytes::Bytes;
use serde_json::Value;

/// Chat call for `model` (for Azure, the model is in the path and `model` is left out).
pub(crate) fn chat_request(req: &Value, model: &str, stream: bool) -> ProviderCall {
    let mut body = req.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("model".into(), Value::String(model.to_string()));
        if stream {
            let opts = obj
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(o) = opts.as_object_mut() {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
    }
    ProviderCall {
        path: "/chat/completions".into(),
        headers: Vec::new(),
        body,
    }
}

pub(crate) fn embeddings_request(req: &Value, model: &str) -> ProviderCall {
    let mut body = req.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("model".into(), Value::String(model.to_string()));
    }
    ProviderCall {
        path: "/embeddings".into(),
        headers: Vec::new(),
        body,
    }
}

/// A provider's JSON answer, checked for the shape `expect` (`choices` or `data`) and its usage read.
pub(crate) fn response(body: &[u8], expect: &str) -> Result<(Value, Usage), TranslateError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| TranslateError::BadResponse("the answer is not JSON".into()))?;
    if !v.get(expect).is_some_and(|c| c.is_array()) {
        return Err(TranslateError::BadResponse(format!(
            "the answer has no `{expect}` list"
        )));
    }
    let usage = v.get("usage").and_then(Usage::from_openai).unwrap_or_default();
    Ok((v, usage))
}

/// `error.message` of an OpenAI-style error body.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer("/error/message")
        .and_then(|m| m.as_str())
        .or_else(|| v.get("message").and_then(|m| m.as_str()))
        .map(str::to_string)
}

/// Passes an OpenAI SSE stream through event by event, reading the usage
/// chunk and dropping it when the client did not ask for usage.
pub(crate) struct PassThrough {
    sse: SseReader,
    include_usage: bool,
    usage: Usage,
    done: bool,
}

impl PassThrough {
    pub(crate) fn new(include_usage: bool) -> PassThrough {
        PassThrough {
            sse: SseReader::default(),
            include_usage,
            usage: Usage::default(),
            done: false,
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        let mut sse = std::mem::take(&mut self.sse);
        let r = sse.push(bytes, &mut |data| self.event(data, &mut out));
        self.sse = sse;
        r.map(|()| out)
    }

    fn event(&mut self, data: &str, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        if data == "[DONE]" {
            self.done = true;
            out.push(Bytes::from_static(SSE_DONE));
            return Ok(());
        }
        let v: Value =
            serde_json::from_str(data).map_err(|_| TranslateError::BadResponse("a stream event is not JSON".into()))?;
        if let Some(msg) = v.pointer("/error/message").and_then(|m| m.as_str()) {
            return Err(TranslateError::BadResponse(msg.to_string()));
        }
        if let Some(u) = v.get("usage").and_then(Usage::from_openai) {
            self.usage = u;
        }
        let usage_only = v
            .get("choices")
            .and_then(|c| c.as_array())
            .is_some_and(|c| c.is_empty());
        if usage_only && !self.include_usage {
            return Ok(());
        }
        out.push(Bytes::from(format!("data: {data}\n\n")));
        Ok(())
    }

    /// The provider closed the stream: an error unless `[DONE]` came.
    pub(crate) fn finish(&mut self) -> Result<Vec<Bytes>, TranslateError> {
        let mut out = Vec::new();
        let mut sse = std::mem::take(&mut self.sse);
        sse.finish(&mut |data| self.event(data, &mut out))?;
        if !self.done {
            return Err(TranslateError::BadResponse("the stream ended before [DONE]".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_drops_unasked_usage_and_detects_cuts() {
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        for include in [false, true] {
            let mut p = PassThrough::new(include);
            let mut out = Vec::new();
            for b in stream.chunks(7) {
                out.extend(p.push(b).unwrap());
            }
            out.extend(p.finish().unwrap());
            assert_eq!(out.len(), if include { 3 } else { 2 });
            assert_eq!(p.usage().prompt_tokens, 3);
        }
        let mut p = PassThrough::new(false);
        p.push(b"data: {\"choices\":[]}\n\n").unwrap();
        assert!(p.finish().is_err());
        assert!(PassThrough::new(false).push(b"data: nope\n\n").is_err());
    }

    #[test]
    fn chat_request_sets_model_and_usage_option() {
        let req = serde_json::json!({"model": "alias", "messages": [], "stream": true});
        let call = chat_request(&req, "gpt-4o", true);
        assert_eq!(call.body["model"], "gpt-4o");
        assert_eq!(call.body["stream_options"]["include_usage"], true);
    }
}
