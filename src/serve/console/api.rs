//! The admin API called in-process with the signed-in person's token: the
//! console's only way to read or change anything.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use tower::ServiceExt;

/// Largest API answer a page reads.
const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// What a path segment keeps unescaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `s` as one path segment or query value.
pub(super) fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A query string from the pairs whose value is not empty.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The admin API's router.
pub(super) struct Api {
    router: Router,
}

/// An answer of the API.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub(super) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// What went wrong, in words: the problem's detail and its located
    /// problems, if any.
    pub(super) fn problem(&self) -> String {
        let mut out = self
            .body
            .get("detail")
            .and_then(Value::as_str)
            .or_else(|| self.body.get("title").and_then(Value::as_str))
            .map_or_else(|| format!("the admin API answered {}", self.status), str::to_string);
        if let Some(errors) = self.body.get("errors").and_then(Value::as_array) {
            for e in errors {
                let path = e.get("path").and_then(Value::as_str).unwrap_or("");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                out.push_str(&format!("\n{path}: {msg}"));
            }
        }
        out
    }

    /// The list under `items`, or none.
    pub(super) fn items(&self) -> Vec<Value> {
        self.body
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}

impl Api {
    pub(super) fn new(router: Router) -> Api {
        Api { router }
    }

    /// Calls `method path` with `token` (none: unauthenticated) and a JSON
    /// body; the answer's body parsed as JSON (`Null` when it is not).
    pub(super) async fn call(&self, token: Option<&str>, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let mut req = Request::new(match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        });
        *req.method_mut() = method;
        match path.parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => {
                return Answer {
                    status: StatusCode::BAD_REQUEST,
                    body: serde_json::json!({"detail": "not a valid name"}),
                }
            }
        }
        if let Some(t) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
            req.headers_mut().insert(header::AUTHORIZATION, t);
        }
        if body.is_some() {
            req.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
        }
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
            .await
            .unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub(super) async fn get(&self, token: &str, path: &str) -> Answer {
        self.call(Some(token), Method::GET, path, None).await
    }

    pub(super) async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.call(Some(token), Method::POST, path, Some(body)).await
    }

    pub(super) async fn put(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.call(Some(token), Method::PUT, path, Some(body)).await
    }

    pub(super) async fn patch(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.call(Some(token), Method::PATCH, path, Some(body)).await
    }

    pub(super) async fn delete(&self, token: &str, path: &str) -> Answer {
        self.call(Some(token), Method::DELETE, path, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_paths_and_queries() {
        assert_eq!(enc("a b/c?<x>"), "a%20b%2Fc%3F%3Cx%3E");
        assert_eq!(query(&[("a", "1"), ("b", ""), ("c", "x&y")]), "?a=1&c=x%26y");
        assert_eq!(query(&[("b", "")]), "");
    }
}
