//! JSON-RPC 2.0 as MCP uses it: what a posted message is (a request, a
//! notification, a response, or not a message at all) and the bytes of an
//! answer. A request's `id` is echoed exactly as sent (a string or a
//! number; MCP forbids `null`). Answers are written `jsonrpc`, `id`, then
//! `result` or `error`, as the specification's examples are.

use serde_json::{json, Value};

/// The body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON, but not a JSON-RPC message.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// A method this server does not have.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// The method's params are wrong (an unknown tool, a missing argument).
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// One posted JSON-RPC message.
#[derive(Debug, PartialEq)]
pub(crate) enum Message<'a> {
    /// A call expecting an answer.
    Request {
        id: &'a Value,
        method: &'a str,
        params: Option<&'a Value>,
    },
    /// A call expecting none (`notifications/initialized`).
    Notification { method: &'a str },
    /// The client's answer to a server request (this server sends none).
    Response,
    /// Not a JSON-RPC 2.0 message: why, and the id when one could be read.
    Invalid { id: Option<&'a Value>, why: String },
}

/// What `v` is.
pub(crate) fn classify(v: &Value) -> Message<'_> {
    let Some(obj) = v.as_object() else {
        return Message::Invalid {
            id: None,
            why: "a message is a JSON object".into(),
        };
    };
    let id = obj.get("id");
    let usable_id = id.filter(|i| i.is_string() || i.is_number());
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Message::Invalid {
            id: usable_id,
            why: "`jsonrpc` must be \"2.0\"".into(),
        };
    }
    match (obj.get("method"), id) {
        (Some(Value::String(method)), None) => Message::Notification { method },
        (Some(Value::String(method)), Some(_)) => match usable_id {
            Some(id) => Message::Request {
                id,
                method,
                params: obj.get("params"),
            },
            None => Message::Invalid {
                id: None,
                why: "a request's `id` is a string or a number".into(),
            },
        },
        (Some(_), _) => Message::Invalid {
            id: usable_id,
            why: "`method` must be a string".into(),
        },
        (None, _) if obj.contains_key("result") || obj.contains_key("error") => Message::Response,
        (None, _) => Message::Invalid {
            id: usable_id,
            why: "no `method`".into(),
        },
    }
}

/// The answer carrying `result`.
pub(crate) fn result(id: &Value, result: Value) -> Vec<u8> {
    raw_result(id, result.to_string().as_bytes())
}

/// The answer carrying a result already serialized (the tool list).
pub(crate) fn raw_result(id: &Value, result: &[u8]) -> Vec<u8> {
    let id = id.to_string();
    let mut out = Vec::with_capacity(result.len() + id.len() + 40);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// The error answer to the request `id` (`null` when unknown).
pub(crate) fn error(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let id = id.unwrap_or(&Value::Null).to_string();
    let error = json!({"code": code, "message": message}).to_string();
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{error}}}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        let req = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}});
        assert!(matches!(
            classify(&req),
            Message::Request {
                method: "tools/list",
                params: Some(_),
                ..
            }
        ));
        let s = json!({"jsonrpc": "2.0", "id": "a", "method": "ping"});
        assert!(matches!(
            classify(&s),
            Message::Request {
                id: Value::String(_),
                params: None,
                ..
            }
        ));
        let n = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(
            classify(&n),
            Message::Notification {
                method: "notifications/initialized"
            }
        );
        let r = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
        assert_eq!(classify(&r), Message::Response);
        let e = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "x"}});
        assert_eq!(classify(&e), Message::Response);
    }

    #[test]
    fn invalid_messages_say_why_and_keep_a_usable_id() {
        let cases = [
            (json!([1]), None),
            (json!("x"), None),
            (json!({"id": 1, "method": "ping"}), Some(json!(1))),
            (json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}), Some(json!(1))),
            (json!({"jsonrpc": "2.0", "id": null, "method": "ping"}), None),
            (json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), None),
            (json!({"jsonrpc": "2.0", "id": 3, "method": 5}), Some(json!(3))),
            (json!({"jsonrpc": "2.0", "id": "q"}), Some(json!("q"))),
        ];
        for (msg, want) in cases {
            match classify(&msg) {
                Message::Invalid { id, why } => {
                    assert_eq!(id.cloned(), want, "{msg}");
                    assert!(!why.is_empty());
                }
                other => panic!("{msg} classified as {other:?}"),
            }
        }
    }

    #[test]
    fn answers_echo_the_id() {
        let a: Value = serde_json::from_slice(&result(&json!("x-1"), json!({}))).unwrap();
        assert_eq!(a, json!({"jsonrpc": "2.0", "id": "x-1", "result": {}}));
        let a: Value = serde_json::from_slice(&raw_result(&json!(12), br#"{"tools":[]}"#)).unwrap();
        assert_eq!(a, json!({"jsonrpc": "2.0", "id": 12, "result": {"tools": []}}));
        let a: Value = serde_json::from_slice(&error(None, PARSE_ERROR, "bad")).unwrap();
        assert_eq!(
            a,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "bad"}})
        );
        let id = json!("a\"b");
        let a: Value = serde_json::from_slice(&raw_result(&id, b"{}")).unwrap();
        assert_eq!(a["id"], id);
    }
}
