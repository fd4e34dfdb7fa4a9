//! A `tools/call`'s arguments as the upstream request of its operation: the
//! path from the template with path parameters percent-encoded, the query,
//! header parameters and the JSON body. Every refusal here is the client's
//! to fix: a JSON-RPC "invalid params" error naming the argument.
//!
//! Values are written as OpenAPI's default styles do: a path or header array
//! is comma-separated (`simple`), a query array repeats its key (`form`,
//! exploded), an object in a query or header is sent as JSON text. A path
//! value is encoded whole (a `/` in it is `%2F`), and `.`, `..` or an empty
//! value is refused: it would move the request to another path.

use super::openapi::{Location, Param, Piece, Tool};
use http::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

/// Everything but RFC 3986's unreserved characters is encoded in a path
/// parameter or a query key or value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The upstream request of one tool call.
#[derive(Debug, PartialEq)]
pub(crate) struct Outbound {
    /// The path and query, encoded (`/pets/a%2Fb?limit=2`).
    pub(crate) path_and_query: String,
    /// Header parameters.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The JSON body, serialized.
    pub(crate) body: Option<Vec<u8>>,
}

/// The upstream request of `tool` called with `args`, or why the arguments
/// do not make one.
pub(crate) fn build(tool: &Tool, args: &Map<String, Value>) -> Result<Outbound, String> {
    if let Some(unknown) = args.keys().find(|k| !knows(tool, k)) {
        return Err(format!("tool {} has no argument {unknown:?}", tool.name));
    }
    let mut path = String::new();
    for piece in &tool.path {
        match piece {
            Piece::Text(t) => path.push_str(t),
            Piece::Param(i) => {
                let Some(p) = tool.params.get(*i) else { continue };
                let value = present(args, p).ok_or_else(|| format!("missing required argument {:?}", p.arg))?;
                let text = scalar_or_list(value, &p.arg)?;
                if text.is_empty() || text == "." || text == ".." {
                    return Err(format!("argument {:?} cannot be {text:?}: it is a path segment", p.arg));
                }
                path.extend(utf8_percent_encode(&text, COMPONENT));
            }
        }
    }
    let mut query = String::new();
    let mut headers = Vec::new();
    for p in &tool.params {
        let Some(value) = present(args, p) else {
            if p.required {
                return Err(format!("missing required argument {:?}", p.arg));
            }
            continue;
        };
        match &p.at {
            Location::Path => {}
            Location::Query => {
                let items = match value {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for item in items {
                    let text = match item {
                        Value::Object(_) | Value::Array(_) => item.to_string(),
                        other => scalar(other, &p.arg)?,
                    };
                    query.push(if query.is_empty() { '?' } else { '&' });
                    query.extend(utf8_percent_encode(&p.name, COMPONENT));
                    query.push('=');
                    query.extend(utf8_percent_encode(&text, COMPONENT));
                }
            }
            Location::Header(name) => {
                let text = match value {
                    Value::Object(_) => value.to_string(),
                    other => scalar_or_list(other, &p.arg)?,
                };
                let v = HeaderValue::from_str(&text)
                    .map_err(|_| format!("argument {:?} is not a valid header value", p.arg))?;
                headers.push((name.clone(), v));
            }
        }
    }
    let body = match (tool.body, args.get("body")) {
        (Some(_), Some(v)) if !v.is_null() => Some(serde_json::to_vec(v).map_err(|e| e.to_string())?),
        (Some(true), _) => return Err("missing required argument \"body\"".into()),
        _ => None,
    };
    // What a URL parser makes of the path is what is sent: it must be the
    // path built (no dot segment resolved away).
    let parsed = reqwest::Url::parse(&format!("http://upstream{path}")).map_err(|e| e.to_string())?;
    if parsed.path() != path {
        return Err(format!(
            "the arguments make the path {path}, which a URL resolves to {}",
            parsed.path()
        ));
    }
    path.push_str(&query);
    Ok(Outbound {
        path_and_query: path,
        headers,
        body,
    })
}

/// Whether `arg` is one of the tool's arguments.
fn knows(tool: &Tool, arg: &str) -> bool {
    (arg == "body" && tool.body.is_some()) || tool.params.iter().any(|p| p.arg == arg)
}

/// The argument of `p`, unless absent or null.
fn present<'a>(args: &'a Map<String, Value>, p: &Param) -> Option<&'a Value> {
    args.get(&p.arg).filter(|v| !v.is_null())
}

/// A string, number or boolean as text.
fn scalar(v: &Value, arg: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("argument {arg:?} must be a string, number or boolean")),
    }
}

/// A scalar, or a list of scalars joined by commas (`simple` style).
fn scalar_or_list(v: &Value, arg: &str) -> Result<String, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|x| scalar(x, arg))
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join(",")),
        other => scalar(other, arg),
    }
}
