//! PLACEHOLDER: being written (issue 18).

use crate::ai::inbound;
use crate::ai::registry::Target;
use crate::ai::{ProviderCall, TranslateError, Usage};
use bytes::Bytes;
use serde_json::Value;

pub(crate) fn to_chat(_req: &Value) -> Result<Value, TranslateError> {
    Err(TranslateError::BadRequest("not served yet".into()))
}

pub(crate) fn native_call(target: &Target, req: &Value, _stream: bool) -> ProviderCall {
    let mut body = req.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("model".into(), Value::String(target.model.clone()));
    }
    ProviderCall {
        path: String::new(),
        headers: Vec::new(),
        body,
    }
}

pub(crate) fn usage_of(_body: &[u8]) -> Usage {
    Usage::default()
}

#[derive(Default)]
pub(crate) struct Sniffer {
    usage: Usage,
    text: String,
}

impl inbound::Sniffer for Sniffer {
    fn push(&mut self, _bytes: &[u8]) {}
    fn usage(&self) -> Usage {
        self.usage
    }
    fn text(&self) -> &str {
        &self.text
    }
}

pub(crate) struct Encoder;

impl inbound::Encoder for Encoder {
    fn chunk(&mut self, _chunk: &Value, _out: &mut Vec<Bytes>) {}
    fn finish(&mut self, _usage: &Usage, _out: &mut Vec<Bytes>) {}
    fn fail(&mut self, _message: &str, _out: &mut Vec<Bytes>) {}
}

impl Encoder {
    pub(crate) fn new(_req: &Value, _id: &str, _model: &str) -> Encoder {
        Encoder
    }
}

pub(crate) fn from_chat(answer: &Value, _req: &Value, _id: &str) -> Value {
    answer.clone()
}

pub(crate) fn untranslatable(_req: &Value) -> Option<String> {
    None
}
