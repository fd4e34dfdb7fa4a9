//! The HTTP side of an MCP route: MCP's Streamable HTTP transport, served
//! statelessly. A client POSTs one JSON-RPC message (or a batch); requests
//! are answered with `application/json` (never a stream), notifications
//! and responses with 202 and no body. No `Mcp-Session-Id` is issued, so
//! clients open no GET stream and send no DELETE; both get 405 with
//! `Allow: POST`, as any other method does.
//!
//! Refusals before JSON-RPC (a wrong method or Origin, a body too large) are
//! the gateway's JSON error; a body that is not JSON or not a message, an
//! unsupported `MCP-Protocol-Version`, a `Content-Type` or `Accept` that
//! rules JSON out get a JSON-RPC error with a 4xx status; everything
//! else is a JSON-RPC answer with 200.

use super::exchange::McpExchange;
use super::jsonrpc::{self, Message, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
use super::upstream::{Answer, Attempts};
use super::{request, McpServer, LATEST_VERSION, VERSIONS};
use crate::error::GatewayError;
use crate::serve::respond::{respond, respond_error};
use bytes::Bytes;
use http::{header, HeaderValue, Method};
use pingora_core::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use serde_json::{json, Map, Value};

/// Messages one batch may hold.
const MAX_BATCH: usize = 32;

/// Serves one HTTP request of an MCP route.
pub(crate) async fn serve(session: &mut Session, ex: &mut McpExchange<'_>, server: &McpServer) -> Result<()> {
    let req = session.req_header();
    if req.method != Method::POST {
        let msg = format!(
            "method {} not allowed: an MCP endpoint takes POST (this server opens no stream)",
            req.method
        );
        let allow = vec![(header::ALLOW, HeaderValue::from_static("POST"))];
        return respond_error(session, ex, GatewayError::MethodNotAllowed, &msg, allow).await;
    }
    if let Some(origin) = req.headers.get(header::ORIGIN) {
        if !ex.cors && !same_origin(origin.as_bytes(), host(req)) {
            let msg = format!(
                "Origin {} may not call this MCP endpoint (a route's cors policy allows other origins)",
                String::from_utf8_lossy(origin.as_bytes())
            );
            ex.report.failure = Some(GatewayError::Forbidden);
            return respond_error(session, ex, GatewayError::Forbidden, &msg, Vec::new()).await;
        }
    }
    if let Some(refusal) = refuse_media(req) {
        return rpc_status(session, ex, refusal.0, INVALID_REQUEST, refusal.1).await;
    }
    let body = match read_body(session, server.max_request).await {
        Ok(b) => b,
        Err(e) => {
            let msg = match e {
                GatewayError::PayloadTooLarge => format!("the message is larger than {} bytes", server.max_request),
                _ => "could not read the request body".to_string(),
            };
            ex.report.failure = Some(e);
            return respond_error(session, ex, e, &msg, Vec::new()).await;
        }
    };
    if ex.capture_max.is_some() {
        ex.report.request_body = Some(body.clone());
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return rpc_status(session, ex, 400, PARSE_ERROR, &format!("the body is not JSON: {e}")).await,
    };
    let messages: Vec<&Value> = match &parsed {
        Value::Array(items) if items.is_empty() => {
            return rpc_status(session, ex, 400, INVALID_REQUEST, "an empty batch").await;
        }
        Value::Array(items) if items.len() > MAX_BATCH => {
            let msg = format!("a batch of more than {MAX_BATCH} messages");
            return rpc_status(session, ex, 400, INVALID_REQUEST, &msg).await;
        }
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if let Some(v) = unsupported_version(session.req_header(), &messages) {
        let msg = format!(
            "unsupported MCP-Protocol-Version {v:?}; this server speaks {}",
            VERSIONS.join(", ")
        );
        return rpc_status(session, ex, 400, INVALID_REQUEST, &msg).await;
    }
    let mut answers = Vec::new();
    for m in &messages {
        if let Some(a) = Box::pin(answer(session.req_header(), ex, server, m)).await {
            answers.push(a);
        }
    }
    let body = match (answers.len(), parsed.is_array()) {
        (0, _) => return respond(session, ex, 202, &[], Bytes::new()).await,
        (_, false) => answers.concat(),
        (_, true) => {
            let mut out = b"[".to_vec();
            out.extend_from_slice(&answers.join(&b","[..]));
            out.push(b']');
            out
        }
    };
    let json = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    respond(session, ex, 200, &json, Bytes::from(body)).await
}

/// A JSON-RPC error with its own HTTP status (the message could not be
/// taken at all).
async fn rpc_status(session: &mut Session, ex: &McpExchange<'_>, status: u16, code: i64, msg: &str) -> Result<()> {
    let json = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    let body = jsonrpc::error(None, code, msg);
    respond(session, ex, status, &json, Bytes::from(body)).await
}

/// The answer to one message; None for a notification or a response.
async fn answer(req: &RequestHeader, ex: &mut McpExchange<'_>, server: &McpServer, v: &Value) -> Option<Vec<u8>> {
    let (id, method, params) = match jsonrpc::classify(v) {
        Message::Request { id, method, params } => (id, method, params),
        Message::Notification { .. } | Message::Response => return None,
        Message::Invalid { id, why } => return Some(jsonrpc::error(id, INVALID_REQUEST, &why)),
    };
    let invalid = |msg: &str| Some(jsonrpc::error(Some(id), INVALID_PARAMS, msg));
    match method {
        "initialize" => {
            let Some(version) = params.and_then(|p| p.get("protocolVersion")).and_then(Value::as_str) else {
                return invalid("initialize needs params.protocolVersion");
            };
            let chosen = VERSIONS
                .iter()
                .find(|v| **v == version)
                .copied()
                .unwrap_or(LATEST_VERSION);
            let mut result = server.info.clone();
            result["protocolVersion"] = json!(chosen);
            Some(jsonrpc::result(id, result))
        }
        "ping" => Some(jsonrpc::result(id, json!({}))),
        "tools/list" => Some(jsonrpc::raw_result(id, &server.tool_list)),
        "tools/call" => {
            let params = params.and_then(Value::as_object);
            let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
                return invalid("tools/call needs params.name");
            };
            let Some(tool) = server.tool(name) else {
                return invalid(&format!("unknown tool {name:?}"));
            };
            let empty = Map::new();
            let args = match params.and_then(|p| p.get("arguments")) {
                None | Some(Value::Null) => &empty,
                Some(Value::Object(a)) => a,
                Some(_) => return invalid("params.arguments must be an object"),
            };
            ex.report.tools.push(tool.name.clone());
            let out = match request::build(tool, args) {
                Ok(o) => o,
                Err(e) => return invalid(&e),
            };
            let mut buf = [0u8; 16];
            let path = out.path_and_query.split('?').next().unwrap_or_default();
            let key = server.caller.pool.hash_input(req, path, ex.client_ip, &mut buf);
            let mut attempts = Attempts::default();
            let sent = server
                .caller
                .send(tool, &out, &ex.upstream_headers, key, &mut attempts)
                .await;
            let retries = u32::try_from(attempts.tried.len().saturating_sub(1)).unwrap_or(u32::MAX);
            ex.report.retries = ex.report.retries.saturating_add(retries);
            ex.report.tried.extend(attempts.tried);
            if attempts.time.is_some() {
                ex.report.upstream_time = attempts.time;
            }
            let result = match sent {
                Ok(a) => tool_result(&a, server.caller.max_response),
                Err(no) => {
                    ex.report.failure = Some(no.error);
                    let text = format!("upstream {}: {}", server.caller.pool.name, no.message);
                    json!({"content": [{"type": "text", "text": text}], "isError": true})
                }
            };
            Some(jsonrpc::result(id, result))
        }
        other => Some(jsonrpc::error(
            Some(id),
            METHOD_NOT_FOUND,
            &format!("method {other:?} not found: this server has tools (tools/list, tools/call)"),
        )),
    }
}

/// A tool's result from the operation's answer: the body as text, an error
/// for a 4xx or 5xx, and the body as `structuredContent` when it is a JSON
/// object.
pub(crate) fn tool_result(a: &Answer, max: usize) -> Value {
    if a.too_large {
        let text = format!(
            "HTTP {}: the answer is larger than the route's max_response ({max} bytes)",
            a.status
        );
        return json!({"content": [{"type": "text", "text": text}], "isError": true});
    }
    let text = match std::str::from_utf8(&a.body) {
        Ok("") => match &a.location {
            Some(l) => format!("HTTP {} (Location: {l})", a.status),
            None => format!("HTTP {}", a.status),
        },
        Ok(t) => t.to_string(),
        Err(_) => format!(
            "HTTP {}: {} bytes of {}, not text",
            a.status,
            a.body.len(),
            a.content_type.as_deref().unwrap_or("an unknown type")
        ),
    };
    let mut result = json!({"content": [{"type": "text", "text": text}], "isError": a.status >= 400});
    if let Ok(object @ Value::Object(_)) = serde_json::from_slice::<Value>(&a.body) {
        result["structuredContent"] = object;
    }
    result
}

/// The request's Host (or HTTP/2 authority).
fn host(req: &RequestHeader) -> Option<&[u8]> {
    req.headers
        .get(header::HOST)
        .map(|h| h.as_bytes())
        .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()))
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was
/// sent to (default ports aside).
pub(crate) fn same_origin(origin: &[u8], host: Option<&[u8]>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (std::str::from_utf8(origin), host.map(std::str::from_utf8)) else {
        return false;
    };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false;
    };
    let bare = |a: &str| -> String {
        let a = a.trim().trim_end_matches('/').to_ascii_lowercase();
        let default = match scheme.to_ascii_lowercase().as_str() {
            "http" => ":80",
            "https" => ":443",
            _ => "",
        };
        match a.strip_suffix(default) {
            Some(stripped) if !default.is_empty() => stripped.to_string(),
            _ => a,
        }
    };
    !authority.is_empty() && bare(authority) == bare(host)
}

/// A `Content-Type` that is not JSON, or an `Accept` that refuses JSON:
/// the status and why.
fn refuse_media(req: &RequestHeader) -> Option<(u16, &'static str)> {
    let text = |name| {
        req.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    if let Some(ct) = text(header::CONTENT_TYPE) {
        let essence = ct.split(';').next().unwrap_or("").trim().to_string();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Some((415, "an MCP message is sent as Content-Type: application/json"));
        }
    }
    if let Some(accept) = text(header::ACCEPT) {
        let takes_json = accept.split(',').any(|r| {
            let range = r.split(';').next().unwrap_or("").trim();
            matches!(range, "application/json" | "application/*" | "*/*")
        });
        if !takes_json {
            return Some((406, "this server answers with application/json, which Accept rules out"));
        }
    }
    None
}

/// The `MCP-Protocol-Version` header's value when this server does not
/// speak it (an `initialize` negotiates in its body instead).
fn unsupported_version<'a>(req: &'a RequestHeader, messages: &[&Value]) -> Option<&'a str> {
    let v = req.headers.get("mcp-protocol-version")?;
    let v = v.to_str().unwrap_or("(not text)");
    let initializes = messages
        .iter()
        .any(|m| m.get("method").and_then(Value::as_str) == Some("initialize"));
    (!initializes && !VERSIONS.contains(&v)).then_some(v)
}

/// The request body, within `max` bytes.
async fn read_body(session: &mut Session, max: usize) -> std::result::Result<Bytes, GatewayError> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(GatewayError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(_) => return Err(GatewayError::BadRequest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            content_type: Some("application/json".into()),
            location: None,
            body: body.to_vec(),
            too_large: false,
        }
    }

    #[test]
    fn answers_become_tool_results() {
        let ok = tool_result(&answer(200, br#"{"id":1}"#), 10);
        assert_eq!(
            ok,
            json!({"content": [{"type": "text", "text": "{\"id\":1}"}], "isError": false, "structuredContent": {"id": 1}})
        );
        // Only an object is structured content.
        let list = tool_result(&answer(200, b"[1,2]"), 10);
        assert!(list.get("structuredContent").is_none());
        let missing = tool_result(&answer(404, b"no such pet"), 10);
        assert_eq!(missing["isError"], true);
        assert_eq!(missing["content"][0]["text"], "no such pet");
        let mut moved = answer(302, b"");
        moved.location = Some("/elsewhere".into());
        assert_eq!(
            tool_result(&moved, 10)["content"][0]["text"],
            "HTTP 302 (Location: /elsewhere)"
        );
        assert_eq!(tool_result(&answer(204, b""), 10)["content"][0]["text"], "HTTP 204");
        let binary = tool_result(&answer(200, &[0xff, 0xfe]), 10);
        assert_eq!(
            binary["content"][0]["text"],
            "HTTP 200: 2 bytes of application/json, not text"
        );
        let mut big = answer(200, b"");
        big.too_large = true;
        let big = tool_result(&big, 10);
        assert_eq!(big["isError"], true);
        assert!(big["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("max_response (10 bytes)"));
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let same = |o: &str, h: Option<&str>| same_origin(o.as_bytes(), h.map(str::as_bytes));
        assert!(same("http://gw.example:8080", Some("gw.example:8080")));
        assert!(same("https://GW.example", Some("gw.example:443")));
        assert!(same("http://gw.example:80/", Some("gw.example")));
        assert!(!same("http://gw.example:8080", Some("gw.example:9090")));
        assert!(!same("https://evil.example", Some("gw.example")));
        assert!(!same("null", Some("gw.example")));
        assert!(!same("http://", Some("")));
        assert!(!same("http://gw.example", None));
    }

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/mcp", None).unwrap();
        for (k, v) in headers {
            req.insert_header(k.to_string(), *v).unwrap();
        }
        req
    }

    #[test]
    fn media_types_and_versions() {
        assert_eq!(refuse_media(&request(&[])), None);
        let both = request(&[
            ("content-type", "application/json; charset=utf-8"),
            ("accept", "application/json, text/event-stream"),
        ]);
        assert_eq!(refuse_media(&both), None);
        assert_eq!(
            refuse_media(&request(&[("content-type", "text/plain")])).map(|r| r.0),
            Some(415)
        );
        assert_eq!(
            refuse_media(&request(&[("accept", "text/event-stream")])).map(|r| r.0),
            Some(406)
        );
        assert_eq!(refuse_media(&request(&[("accept", "*/*")])), None);
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"});
        let old = request(&[("mcp-protocol-version", "2025-03-26")]);
        assert_eq!(unsupported_version(&old, &[&ping]), None);
        let future = request(&[("mcp-protocol-version", "2099-01-01")]);
        assert_eq!(unsupported_version(&future, &[&ping]), Some("2099-01-01"));
        assert_eq!(unsupported_version(&future, &[&init]), None);
        assert_eq!(unsupported_version(&request(&[]), &[&ping]), None);
    }
}
