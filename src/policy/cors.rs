//! `cors`: cross-origin rules. A preflight (OPTIONS with Origin and
//! Access-Control-Request-Method) is answered at the gateway: 204 with the
//! allowed methods and headers when the origin and method are allowed, a 403
//! JSON error when not. Other requests from an allowed origin get
//! Access-Control-Allow-Origin (and credentials / exposed headers) on the
//! response. Header values are built once, at config load.

use super::{Rejection, Reply, Step};
use crate::config::CorsConfig;
use crate::error::GatewayError;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method};
use pingora_http::{RequestHeader, ResponseHeader};

enum OriginRule {
    Any,
    Exact(String),
    /// `https://*.example.com` as (scheme + "://", ".example.com").
    Subdomain(String, String),
}

pub struct Cors {
    origins: Vec<OriginRule>,
    methods: Vec<Method>,
    methods_value: HeaderValue,
    headers: Vec<String>,
    headers_value: Option<HeaderValue>,
    expose_value: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

fn join(list: &[String], field: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&list.join(", ")).map_err(|_| format!("{field}: invalid header value"))
}

impl Cors {
    pub fn new(c: &CorsConfig) -> Result<Cors, String> {
        if c.allow_origins.is_empty() {
            return Err("allow_origins: give at least one origin, or \"*\"".into());
        }
        let mut origins = Vec::new();
        for (i, o) in c.allow_origins.iter().enumerate() {
            let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
            if o == "*" {
                if c.allow_credentials {
                    return Err(format!(
                        "allow_origins[{i}]: \"*\" cannot be combined with allow_credentials; list the origins"
                    ));
                }
                origins.push(OriginRule::Any);
            } else if let Some((scheme, host)) = o.split_once("://*.") {
                origins.push(OriginRule::Subdomain(format!("{scheme}://"), format!(".{host}")));
            } else if o.contains("://") && !o.contains('*') {
                origins.push(OriginRule::Exact(o));
            } else {
                return Err(format!(
                    "allow_origins[{i}]: {o:?} is not an origin like https://app.example.com"
                ));
            }
        }
        let mut methods = Vec::new();
        for (i, m) in c.allow_methods.iter().enumerate() {
            methods.push(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("allow_methods[{i}]: invalid method"))?,
            );
        }
        let upper: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        for (i, h) in c.allow_headers.iter().chain(&c.expose_headers).enumerate() {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("header {i}: invalid name {h:?}"))?;
        }
        Ok(Cors {
            origins,
            methods,
            methods_value: join(&upper, "allow_methods")?,
            headers: c.allow_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            headers_value: (!c.allow_headers.is_empty())
                .then(|| join(&c.allow_headers, "allow_headers"))
                .transpose()?,
            expose_value: (!c.expose_headers.is_empty())
                .then(|| join(&c.expose_headers, "expose_headers"))
                .transpose()?,
            credentials: c.allow_credentials,
            max_age: c.max_age.map(|d| HeaderValue::from(d.0.as_secs())),
        })
    }

    fn origin_allowed(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|rule| match rule {
            OriginRule::Any => true,
            OriginRule::Exact(o) => *o == origin,
            OriginRule::Subdomain(scheme, suffix) => origin
                .strip_prefix(scheme.as_str())
                .is_some_and(|host| host.len() > suffix.len() && host.ends_with(suffix.as_str())),
        })
    }

    /// The Access-Control-Allow-Origin value for an allowed origin.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if !self.credentials && self.origins.iter().any(|r| matches!(r, OriginRule::Any)) {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// Answers a preflight; None when the request is not one.
    pub fn preflight(&self, req: &RequestHeader) -> Option<Step> {
        if req.method != Method::OPTIONS {
            return None;
        }
        let origin = req.headers.get(header::ORIGIN)?;
        let wanted = req.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        if !self.origin_allowed(origin.as_bytes()) {
            return Some(forbidden("origin not allowed"));
        }
        let method_ok = Method::from_bytes(wanted.as_bytes()).is_ok_and(|m| self.methods.contains(&m));
        if !method_ok {
            return Some(forbidden("method not allowed by CORS policy"));
        }
        let asked = req.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
        let allow_headers = match (&self.headers_value, asked) {
            (Some(v), Some(a)) => {
                let all_ok = a
                    .to_str()
                    .unwrap_or("")
                    .split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .all(|h| self.headers.contains(&h));
                if !all_ok {
                    return Some(forbidden("request headers not allowed by CORS policy"));
                }
                Some(v.clone())
            }
            (Some(v), None) => Some(v.clone()),
            (None, a) => a.cloned(),
        };
        let mut headers = vec![
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin)),
            (header::ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone()),
            (
                header::VARY,
                HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ),
        ];
        if let Some(h) = allow_headers {
            headers.push((header::ACCESS_CONTROL_ALLOW_HEADERS, h));
        }
        if self.credentials {
            headers.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        if let Some(m) = &self.max_age {
            headers.push((header::ACCESS_CONTROL_MAX_AGE, m.clone()));
        }
        Some(Step::Reply(Reply {
            status: 204,
            headers,
            body: Bytes::new(),
        }))
    }

    /// Adds the CORS headers to a response for an allowed origin.
    pub fn on_response(&self, req: &RequestHeader, resp: &mut ResponseHeader) {
        let _ = resp.append_header(header::VARY, "Origin");
        let Some(origin) = req.headers.get(header::ORIGIN) else {
            return;
        };
        if !self.origin_allowed(origin.as_bytes()) {
            return;
        }
        let _ = resp.insert_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if self.credentials {
            let _ = resp.insert_header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(e) = &self.expose_value {
            let _ = resp.insert_header(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

fn forbidden(msg: &str) -> Step {
    Step::Reject(Rejection::new(
        GatewayError::Forbidden,
        format!("CORS preflight refused: {msg}"),
    ))
}
