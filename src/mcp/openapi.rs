//! An OpenAPI 3.x document's operations as MCP tools, compiled at config
//! load. Each operation becomes one [`Tool`]:
//!
//! - **name**: the operationId in the characters every model API takes
//!   (`A-Z a-z 0-9 _ -`, others become `_`, at most 64), else a slug of the
//!   method and path (`get_pets_id`). Two operations that end up with one
//!   name are an error, unless the route's `tools` leaves one out.
//! - **description**: the summary and the description (else `GET /pets`);
//!   the summary is also the tool's `title`.
//! - **inputSchema**: an object whose properties are the path, query and
//!   header parameters by name, with their schemas (required ones required),
//!   and `body` for a JSON request body. A name used twice (a path and a
//!   query `id`) is kept for the first and prefixed by its location for the
//!   next (`query_id`). `additionalProperties: false`: a call with an
//!   argument the tool does not have is refused, not silently dropped.
//!
//! Each operation's path follows a base path: the route's `base_path`, else
//! the path of the document's first `servers` URL, as OpenAPI says a path
//! is relative to its server.
//!
//! Left out: cookie parameters; header parameters OpenAPI ignores (`Accept`,
//! `Content-Type`, `Authorization`) and those the gateway sets itself (Host,
//! hop-by-hop, `X-Forwarded-*`, `X-Request-Id`, the consumer header: a
//! caller never chooses its identity); operations whose required body is
//! not JSON (listing one in `tools` is an error that says so).

use super::schema::Resolver;
use http::{HeaderName, Method};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Longest tool name: MCP allows 128, model APIs (Anthropic's, OpenAI's) 64.
const MAX_NAME: usize = 64;

/// Where an argument goes in the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A `{name}` of the path template.
    Path,
    /// A query parameter.
    Query,
    /// A request header.
    Header(HeaderName),
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    /// The name in the document: the query key, header or `{name}`.
    pub(crate) name: String,
    /// The argument (property of the input schema) that carries it.
    pub(crate) arg: String,
    pub(crate) at: Location,
    pub(crate) required: bool,
}

/// A piece of an operation's path template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// Text of the path, already encoded.
    Text(String),
    /// The value of `params[i]`, percent-encoded when the call is built.
    Param(usize),
}

/// One operation as a tool.
#[derive(Debug)]
pub(crate) struct Tool {
    /// The tool's name.
    pub(crate) name: Arc<str>,
    /// The operation's `operationId`, when it has one.
    pub(crate) operation_id: Option<String>,
    pub(crate) method: Method,
    /// The path template, as the document writes it (for messages).
    pub(crate) template: String,
    pub(crate) path: Vec<Piece>,
    pub(crate) params: Vec<Param>,
    /// The operation takes a JSON body (`body`); `Some(true)` when required.
    pub(crate) body: Option<bool>,
    /// The tool's entry in `tools/list`.
    pub(crate) definition: Value,
}

/// An operation that is not offered, and why (an error only when the
/// route's `tools` lists it).
#[derive(Debug)]
pub(crate) struct Skipped {
    pub(crate) operation_id: Option<String>,
    pub(crate) name: String,
    pub(crate) why: String,
}

/// A problem in the document: where (below the document) and what.
pub(crate) type DocIssue = (String, String);

/// What compiling a document gives.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub(crate) tools: Vec<Tool>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) issues: Vec<DocIssue>,
}

/// The HTTP methods of a path item, in the order OpenAPI lists them.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Headers a tool's arguments never set: OpenAPI's ignored ones and the
/// gateway's own.
fn reserved_header(name: &HeaderName, consumer_header: &str) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "accept"
            | "content-type"
            | "authorization"
            | "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "x-request-id"
            | "forwarded"
    ) || n.starts_with("proxy-")
        || n.starts_with("x-forwarded-")
        || n.eq_ignore_ascii_case(consumer_header)
}

/// Compiles every operation of `doc` (an OpenAPI 3.x document as JSON).
/// `consumer_header` is the header the gateway names the caller in;
/// `base_path` goes before every operation's path (default: the path of
/// the document's first `servers` URL).
pub(crate) fn compile(doc: &Value, consumer_header: &str, base_path: Option<&str>) -> Compiled {
    let mut out = Compiled::default();
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        let what = if doc.get("swagger").is_some() {
            "a Swagger 2.0 document: convert it to OpenAPI 3 to make tools of it".to_string()
        } else {
            format!("not an OpenAPI 3.x document (`openapi: {version:?}`)")
        };
        out.issues.push((String::new(), what));
        return out;
    }
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        out.issues
            .push(("paths".into(), "the document has no `paths` object".into()));
        return out;
    };
    let base = match base_path.map_or_else(|| server_path(doc), |b| Ok(b.to_string())) {
        Ok(b) => b.trim_end_matches('/').to_string(),
        Err(e) => {
            out.issues.push(("servers[0].url".into(), e));
            return out;
        }
    };
    if base.split('/').any(|s| s == "." || s == "..") {
        out.issues.push((
            "servers[0].url".into(),
            format!("base path {base:?} has a `.` or `..` segment"),
        ));
        return out;
    }
    let mut resolver = Resolver::new(doc);
    for (path, item) in paths {
        let at = format!("paths.{path}");
        let item = match item.get("$ref").and_then(Value::as_str) {
            Some(r) => match resolver.target(r) {
                Ok(v) => v,
                Err(e) => {
                    out.issues.push((at, e));
                    continue;
                }
            },
            None => item,
        };
        let shared = item.get("parameters");
        for method in METHODS {
            let Some(op) = item.get(method).filter(|o| o.is_object()) else {
                continue;
            };
            let op_at = format!("{at}.{method}");
            match operation(&mut resolver, path, method, op, shared, consumer_header) {
                Ok(Ok(mut tool)) => {
                    if !base.is_empty() {
                        tool.path.insert(0, Piece::Text(encode_text(&base)));
                    }
                    out.tools.push(tool)
                }
                Ok(Err(skipped)) => out.skipped.push(skipped),
                Err(e) => out.issues.push((op_at, e)),
            }
        }
    }
    out
}

/// The path of the document's first `servers` URL (`https://api.example.com/v1`
/// and `/v1` are `/v1`), its variables replaced by their defaults; empty
/// when there is none.
fn server_path(doc: &Value) -> Result<String, String> {
    let Some(server) = doc.pointer("/servers/0") else {
        return Ok(String::new());
    };
    let mut url = server.get("url").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, v) in vars {
            if let Some(default) = v.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url.as_str(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.contains(['{', '}']) {
        return Err(format!(
            "{url:?} has a variable without a default; set the route's `mcp.base_path`"
        ));
    }
    Ok(match path {
        "" => String::new(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    })
}

/// The tool name for an operation.
pub(crate) fn tool_name(operation_id: Option<&str>, method: &str, path: &str) -> String {
    let from_id = operation_id.map(sanitise).unwrap_or_default();
    if !from_id.is_empty() {
        return from_id;
    }
    sanitise(&format!("{method}_{path}"))
}

/// `raw` in `A-Z a-z 0-9 _ -`: other characters become one `_`, none at
/// either end, at most [`MAX_NAME`] long.
fn sanitise(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_string();
    out.truncate(MAX_NAME);
    out
}

type Operation = Result<Result<Tool, Skipped>, String>;

fn operation(
    resolver: &mut Resolver,
    path: &str,
    method: &str,
    op: &Value,
    shared: Option<&Value>,
    consumer_header: &str,
) -> Operation {
    let operation_id = op.get("operationId").and_then(Value::as_str).map(str::to_string);
    let name = tool_name(operation_id.as_deref(), method, path);
    let http_method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|e| e.to_string())?;
    let skip = |why: String| {
        Ok(Err(Skipped {
            operation_id: operation_id.clone(),
            name: name.clone(),
            why,
        }))
    };
    // Path-item parameters, then the operation's, which replace one of the
    // same name and location.
    let mut declared: Vec<Value> = Vec::new();
    for list in [shared, op.get("parameters")].into_iter().flatten() {
        let Some(list) = list.as_array() else {
            return Err("`parameters` is not a list".into());
        };
        for p in list {
            let p = match p.get("$ref").and_then(Value::as_str) {
                Some(r) => resolver.target(r)?,
                None => p,
            };
            let key = |v: &Value| (v.get("name").cloned(), v.get("in").cloned());
            declared.retain(|d| key(d) != key(p));
            declared.push(p.clone());
        }
    }
    let vars = template_vars(path);
    // A `{name}` of the template with no parameter declared for it still
    // needs a value: a required string.
    for var in &vars {
        let known = declared.iter().any(|d| {
            d.get("in").and_then(Value::as_str) == Some("path") && d.get("name").and_then(Value::as_str) == Some(var)
        });
        if !known {
            declared.push(json!({"name": var, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
    }
    // Path parameters take their plain names first, then query, then header
    // ones: a later one of a name already taken is prefixed by its location.
    let rank = |d: &Value| match d.get("in").and_then(Value::as_str) {
        Some("path") => 0,
        Some("query") => 1,
        _ => 2,
    };
    declared.sort_by_key(rank);
    let mut params = Vec::new();
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &declared {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a parameter has no `name`")?;
        let location = p.get("in").and_then(Value::as_str).unwrap_or("");
        let at = match location {
            // A path parameter the template does not use has nowhere to go.
            "path" if !vars.contains(&name) => continue,
            "path" => Location::Path,
            "query" => Location::Query,
            "header" => {
                let h = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("header parameter {name:?} is not a header name"))?;
                if reserved_header(&h, consumer_header) {
                    continue;
                }
                Location::Header(h)
            }
            "cookie" => continue,
            other => {
                return Err(format!(
                    "parameter {name:?} is `in: {other:?}`; use path, query, header or cookie"
                ))
            }
        };
        let is_required = at == Location::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let schema = p
            .get("schema")
            .or_else(|| p.pointer("/content").and_then(first_media_schema))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}));
        let mut schema = resolver
            .resolve(&schema)
            .map_err(|e| format!("parameter {name:?}: {e}"))?;
        describe(&mut schema, p.get("description"));
        let arg = property_name(name, location, &properties)?;
        if is_required {
            required.push(Value::String(arg.clone()));
        }
        properties.insert(arg.clone(), schema);
        params.push(Param {
            name: name.to_string(),
            arg,
            at,
            required: is_required,
        });
    }
    let pieces = template(path, &params)?;
    let mut body = None;
    if let Some(rb) = op.get("requestBody") {
        let rb = match rb.get("$ref").and_then(Value::as_str) {
            Some(r) => resolver.target(r)?,
            None => rb,
        };
        let body_required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
        match rb.get("content").and_then(json_media) {
            Some(media) => {
                let schema = media.get("schema").cloned().unwrap_or_else(|| json!({}));
                let mut schema = resolver.resolve(&schema).map_err(|e| format!("requestBody: {e}"))?;
                describe(&mut schema, rb.get("description"));
                let arg = property_name("body", "body", &properties)?;
                if arg != "body" {
                    return Err("a parameter is named `body` twice over; the JSON body needs that name".into());
                }
                if body_required {
                    required.push(json!("body"));
                }
                properties.insert(arg, schema);
                body = Some(body_required);
            }
            None if body_required => {
                return skip("its required request body is not JSON".into());
            }
            None => {}
        }
    }
    let summary = op
        .get("summary")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let detail = op
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let description = match (summary, detail) {
        (Some(s), Some(d)) => format!("{s}\n\n{d}"),
        (Some(t), None) | (None, Some(t)) => t.to_string(),
        (None, None) => format!("{} {path}", http_method),
    };
    let mut input = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        input["required"] = Value::Array(required);
    }
    let mut definition = json!({
        "name": name,
        "description": description,
        "inputSchema": input,
        "annotations": annotations(&http_method),
    });
    if let Some(s) = summary {
        definition["title"] = json!(s);
    }
    Ok(Ok(Tool {
        name: Arc::from(name.as_str()),
        operation_id,
        method: http_method,
        template: path.to_string(),
        path: pieces,
        params,
        body,
        definition,
    }))
}

/// What a client may assume of a tool by its method (MCP's tool
/// annotations are hints, never trusted for security).
fn annotations(method: &Method) -> Value {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let idempotent = safe || matches!(*method, Method::PUT | Method::DELETE);
    json!({
        "readOnlyHint": safe,
        "destructiveHint": *method == Method::DELETE,
        "idempotentHint": idempotent,
        "openWorldHint": false,
    })
}

/// Sets a schema's description from its parameter's, unless it has one.
fn describe(schema: &mut Value, description: Option<&Value>) {
    if let (Value::Object(s), Some(Value::String(d))) = (schema, description) {
        s.entry("description").or_insert_with(|| json!(d));
    }
}

/// The argument name of parameter `name` in `location`: the name itself,
/// else `{location}_{name}` when taken.
fn property_name(name: &str, location: &str, taken: &Map<String, Value>) -> Result<String, String> {
    if !taken.contains_key(name) {
        return Ok(name.to_string());
    }
    let prefixed = format!("{location}_{name}");
    if taken.contains_key(&prefixed) {
        return Err(format!("parameter {name:?} is declared twice in {location}"));
    }
    Ok(prefixed)
}

/// The schema of the first media type of a parameter's `content`.
fn first_media_schema(content: &Value) -> Option<&Value> {
    content.as_object()?.values().find_map(|m| m.get("schema"))
}

/// The JSON media type of a request body's `content`: `application/json`,
/// else any `+json` or `json` type.
fn json_media(content: &Value) -> Option<&Value> {
    let content = content.as_object()?;
    let essence = |k: &str| k.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    content
        .iter()
        .find(|(k, _)| essence(k) == "application/json")
        .or_else(|| {
            content.iter().find(|(k, _)| {
                let e = essence(k);
                e.ends_with("+json") || e.ends_with("/json")
            })
        })
        .map(|(_, v)| v)
}

/// Characters a path's text keeps as written: RFC 3986's `pchar` and `/`.
/// Anything else is percent-encoded.
const PATH_TEXT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'%');

/// The `{name}`s of a path template.
fn template_vars(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .collect()
}

/// The path template in pieces, each `{name}` the index of its parameter.
fn template(path: &str, params: &[Param]) -> Result<Vec<Piece>, String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with /"));
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(format!("path {path:?} has a `.` or `..` segment"));
    }
    let mut pieces = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("path {path:?} has a `{{` with no `}}`"))?;
        let name = &after[..end];
        if name.is_empty() {
            return Err(format!("path {path:?} has an empty `{{}}`"));
        }
        if start > 0 {
            pieces.push(Piece::Text(encode_text(&rest[..start])));
        }
        let index = params
            .iter()
            .position(|p| p.at == Location::Path && p.name == name)
            .ok_or_else(|| format!("path parameter {name:?} is not declared"))?;
        pieces.push(Piece::Param(index));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(encode_text(rest)));
    }
    Ok(pieces)
}

fn encode_text(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, PATH_TEXT).to_string()
}
