//! Streams of the Responses API: [`Encoder`] writes a translated stream's
//! chat chunks as the Responses API's typed events, [`sniffer`] reads the
//! usage and text of a native stream passing through.
//!
//! The events are OpenAI's, in its order, each `event: <type>` and `data:`
//! with a `sequence_number` counting from 0: `response.created`,
//! `response.in_progress`; per text item `response.output_item.added`,
//! `response.content_part.added`, `response.output_text.delta`...,
//! `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done`; per tool call `response.output_item.added`
//! (a `function_call`), `response.function_call_arguments.delta`...,
//! `response.function_call_arguments.done`, `response.output_item.done`; and
//! last `response.completed` with the whole Response and the usage charged
//! (`response.incomplete` when the answer was cut by the token limit). An
//! item is closed when the next one opens, as OpenAI streams them one after
//! another. A provider that fails mid-stream ends it with `response.failed`
//! (status `failed`, `error.code: server_error`), preceded by
//! `response.created` when nothing was sent yet, since the SDK's stream
//! helper wants that first.

use super::answer::{call_item, incomplete_reason, message_item, now_secs, output_text, usage_from, Head};
use crate::ai::inbound;
use crate::ai::Usage;
use bytes::Bytes;
use serde_json::{json, Value};

/// One output item as it streams.
#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The chat chunk's `tool_calls[].index` this call streams under.
        index: u64,
    },
}

/// Chat chunks to the Responses API's events (see the module docs).
pub(crate) struct Encoder {
    head: Head,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// Index in `items` of the item still streaming.
    open: Option<usize>,
    finish_reason: Option<String>,
}

impl Encoder {
    /// `req` is the client's request, `id` the request id, `model` the model that answers.
    pub(crate) fn new(req: &Value, id: &str, model: &str) -> Encoder {
        Encoder {
            head: Head::new(req, id, model, now_secs()),
            seq: 0,
            started: false,
            items: Vec::new(),
            open: None,
            finish_reason: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<Bytes>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        for kind in ["response.created", "response.in_progress"] {
            let response = self.head.response("in_progress", None, Vec::new(), None);
            self.emit(out, kind, json!({ "response": response }));
        }
    }

    /// The output items as they stand; `done` marks every one complete.
    fn output(&self, done: bool) -> Vec<Value> {
        let status = if done { self.end_status() } else { "in_progress" };
        self.items.iter().map(|item| self.item_json(item, status)).collect()
    }

    fn item_json(&self, item: &Item, status: &str) -> Value {
        match item {
            Item::Message { id, text } => message_item(id, status, text),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => call_item(id, call_id, name, arguments, status),
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        let n = match self.open {
            Some(n) if matches!(self.items[n], Item::Message { .. }) => n,
            _ => {
                self.close(out);
                let n = self.items.len();
                let id = self.head.message_id();
                // A second text item (text after a tool call) needs an id of its own.
                let id = if n == 0 { id } else { format!("{id}_{n}") };
                let item =
                    json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []});
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": n, "item": item}),
                );
                let added = json!({"item_id": id, "output_index": n, "content_index": 0, "part": output_text("")});
                self.emit(out, "response.content_part.added", added);
                self.items.push(Item::Message {
                    id,
                    text: String::new(),
                });
                self.open = Some(n);
                n
            }
        };
        if let Some(Item::Message { id, text }) = self.items.get_mut(n) {
            text.push_str(delta);
            let data = json!({"item_id": id, "output_index": n, "content_index": 0, "delta": delta, "logprobs": []});
            self.emit(out, "response.output_text.delta", data);
        }
    }

    fn tool_call(&mut self, tc: &Value, out: &mut Vec<Bytes>) {
        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let piece = tc
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let known = self
            .items
            .iter()
            .position(|i| matches!(i, Item::Call { index: x, .. } if *x == index));
        let n = match known {
            Some(n) => n,
            None => {
                self.close(out);
                let n = self.items.len();
                let s = |p: &str| tc.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
                let call_id = Some(s("/id")).filter(|c| !c.is_empty());
                let item = Item::Call {
                    id: self.head.call_id(n),
                    call_id: call_id.unwrap_or_else(|| format!("call_{}_{n}", self.head.id)),
                    name: s("/function/name"),
                    arguments: String::new(),
                    index,
                };
                let data = json!({"output_index": n, "item": self.item_json(&item, "in_progress")});
                self.emit(out, "response.output_item.added", data);
                self.items.push(item);
                self.open = Some(n);
                n
            }
        };
        let streaming = self.open == Some(n);
        if let Some(Item::Call { id, arguments, .. }) = self.items.get_mut(n) {
            arguments.push_str(piece);
            // A late piece of a call already closed still counts in the final Response.
            if streaming && !piece.is_empty() {
                let data = json!({"item_id": id, "output_index": n, "delta": piece});
                self.emit(out, "response.function_call_arguments.delta", data);
            }
        }
    }

    /// The status of items that ended: `incomplete` when the answer was cut.
    fn end_status(&self) -> &'static str {
        match incomplete_reason(self.finish_reason.as_deref()) {
            Some(_) => "incomplete",
            None => "completed",
        }
    }

    /// Ends the item still streaming, if any.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(n) = self.open.take() else { return };
        let Some(item) = self.items.get(n) else { return };
        let done = self.item_json(item, self.end_status());
        let events = match item {
            Item::Message { id, text } => vec![
                (
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": n, "content_index": 0, "text": text, "logprobs": []}),
                ),
                (
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": n, "content_index": 0, "part": output_text(text)}),
                ),
            ],
            Item::Call {
                id, name, arguments, ..
            } => vec![(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": n, "name": name, "arguments": arguments}),
            )],
        };
        for (kind, data) in events {
            self.emit(out, kind, data);
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": n, "item": done}),
        );
    }
}

impl inbound::Encoder for Encoder {
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.start(out);
        let Some(choice) = chunk.pointer("/choices/0") else {
            return; // the usage chunk: `finish` gets what is charged
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        for key in ["content", "refusal"] {
            if let Some(t) = delta.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                self.text(t, out);
            }
        }
        for tc in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            self.tool_call(tc, out);
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_string());
        }
    }

    fn finish(&mut self, usage: &Usage, out: &mut Vec<Bytes>) {
        self.start(out);
        self.close(out);
        let reason = incomplete_reason(self.finish_reason.as_deref());
        let (kind, status) = match reason {
            Some(_) => ("response.incomplete", "incomplete"),
            None => ("response.completed", "completed"),
        };
        let response = self.head.response(status, reason, self.output(true), Some(usage));
        self.emit(out, kind, json!({ "response": response }));
    }

    fn fail(&mut self, message: &str, out: &mut Vec<Bytes>) {
        self.start(out);
        let mut response = self.head.response("failed", None, self.output(false), None);
        response["error"] = json!({"code": "server_error", "message": message});
        self.emit(out, "response.failed", json!({ "response": response }));
    }
}

/// Reads a native Responses stream: the usage of its final event
/// (`response.completed`, or `response.incomplete` / `response.failed`),
/// the text of its `response.output_text.delta` events, and how it ended
/// (`response.failed` and `error` are failures).
pub(crate) fn sniffer() -> inbound::Sniffer {
    inbound::Sniffer::new(sniff)
}

fn sniff(v: &Value, seen: &mut inbound::Sniffed) {
    match v.get("type").and_then(Value::as_str) {
        Some("response.output_text.delta") => {
            if let Some(d) = v.get("delta").and_then(Value::as_str) {
                seen.text.push(d);
            }
        }
        Some(kind @ ("response.completed" | "response.incomplete" | "response.failed")) => {
            if let Some(u) = v.pointer("/response/usage").and_then(usage_from) {
                seen.usage = u;
            }
            seen.finished = kind != "response.failed";
            seen.failed = kind == "response.failed";
        }
        Some("error") => seen.failed = true,
        _ => {}
    }
}
