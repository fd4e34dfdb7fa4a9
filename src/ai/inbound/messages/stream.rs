//! Chat chunks re-encoded as Anthropic's event stream: `message_start`,
//! `ping`, then per content block `content_block_start`, its deltas
//! (`text_delta`, `input_json_delta`) and `content_block_stop`, and at the
//! end `message_delta` (stop reason and usage) and `message_stop`.

use super::answer::{stop_reason, usage_json};
use super::error_value;
use crate::ai::{inbound, Usage};
use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::{json, Value};

/// The block being streamed.
#[derive(Debug, PartialEq)]
enum Open {
    None,
    Text,
    /// A tool call: its index among the chat chunk's tool calls.
    Tool(u64),
}

pub(crate) struct Encoder {
    id: String,
    model: String,
    started: bool,
    /// Index of the next content block.
    next: usize,
    open: Open,
    finish: Option<String>,
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl Encoder {
    pub(crate) fn new(id: &str, model: &str) -> Encoder {
        Encoder {
            id: format!("msg_{id}"),
            model: model.to_string(),
            started: false,
            next: 0,
            open: Open::None,
            finish: None,
        }
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let message = json!({"id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}});
        out.push(event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        ));
        out.push(event("ping", &json!({"type": "ping"})));
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if self.open != Open::None {
            out.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next - 1}),
            ));
            self.open = Open::None;
        }
    }

    fn open_block(&mut self, open: Open, block: Value, out: &mut Vec<Bytes>) {
        self.close_block(out);
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        ));
        self.next += 1;
        self.open = open;
    }

    fn delta(&self, delta: Value, out: &mut Vec<Bytes>) {
        out.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
        ));
    }
}

impl inbound::Encoder for Encoder {
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.start(out);
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta");
        if let Some(text) = delta
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            if self.open != Open::Text {
                self.open_block(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            self.delta(json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            if self.open != Open::Tool(index) {
                let block = json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(Value::Null),
                    "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null), "input": {}});
                self.open_block(Open::Tool(index), block, out);
            }
            if let Some(args) = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                self.delta(json!({"type": "input_json_delta", "partial_json": args}), out);
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
    }

    fn finish(&mut self, usage: &Usage, out: &mut Vec<Bytes>) {
        self.start(out);
        self.close_block(out);
        out.push(event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                    "usage": usage_json(usage)}),
        ));
        out.push(event("message_stop", &json!({"type": "message_stop"})));
    }

    fn fail(&mut self, message: &str, out: &mut Vec<Bytes>) {
        let mut v = error_value(GatewayError::ProviderError, message, "");
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        out.push(event("error", &v));
    }
}
