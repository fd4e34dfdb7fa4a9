//! What a route captures of a call for the call log: headers and bodies,
//! capped, with credentials, cookies and configured JSON fields redacted
//! before anything is queued. Compiled at load; the body redaction is one
//! regex over the text (so a body cut at the cap is redacted too, which
//! parsing it as JSON could not do).

use crate::config::CaptureConfig;
use crate::telemetry::call::Captured;
use regex::Regex;

/// What replaces a redacted value.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Headers that always carry credentials or sessions.
const ALWAYS_REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
];

/// Largest `max_body` a route may set.
const MAX_BODY_CAP: u64 = 1024 * 1024;

/// A route's compiled capture settings.
#[derive(Debug)]
pub(crate) struct Capture {
    pub headers: bool,
    pub bodies: bool,
    pub max_body: usize,
    redact_headers: Vec<String>,
    fields: Option<Regex>,
    /// Each redacted field's key as it appears inside an encoded JSON
    /// string (`\"password\"`): a body holding one is not stored.
    escaped: Vec<String>,
}

/// What a body is stored as when it carries a redacted field in a form the
/// redaction does not reach (JSON encoded inside a string).
pub(crate) const WITHHELD: &str = "[body withheld: it carries a redacted field inside an encoded string]";

impl Capture {
    pub(crate) fn compile(cfg: &CaptureConfig) -> Result<Capture, String> {
        if cfg.max_body.0 > MAX_BODY_CAP {
            return Err(format!("max_body may be at most {MAX_BODY_CAP} bytes"));
        }
        let fields = if cfg.redact_fields.is_empty() {
            None
        } else {
            let names: Vec<String> = cfg.redact_fields.iter().map(|f| regex::escape(f)).collect();
            let re = format!(r#""({})"\s*:\s*("(?:[^"\\]|\\.)*"?|[^,}}\]\s]*)"#, names.join("|"));
            Some(Regex::new(&re).map_err(|e| format!("redact_fields: {e}"))?)
        };
        Ok(Capture {
            headers: cfg.headers,
            bodies: cfg.bodies,
            max_body: usize::try_from(cfg.max_body.0).unwrap_or(usize::MAX),
            redact_headers: cfg.redact_headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            fields,
            escaped: cfg.redact_fields.iter().map(|f| format!(r#"\"{f}\""#)).collect(),
        })
    }

    /// The headers as stored: a credential's value (the always-redacted
    /// ones, the route's own, and `also`: the headers the route's auth
    /// steps read) is replaced.
    pub(crate) fn headers<'a>(
        &self,
        headers: impl Iterator<Item = (&'a http::HeaderName, &'a http::HeaderValue)>,
        also: &[http::HeaderName],
    ) -> Vec<(String, String)> {
        headers
            .map(|(name, value)| {
                let n = name.as_str();
                let secret = ALWAYS_REDACTED.contains(&n)
                    || self.redact_headers.iter().any(|h| h == n)
                    || also.iter().any(|h| h == name);
                let v = if secret {
                    REDACTED.to_string()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (n.to_string(), v)
            })
            .collect()
    }

    /// A captured body as stored: text (invalid UTF-8 replaced) with the
    /// configured fields' values redacted; withheld whole when a field
    /// appears JSON-encoded inside a string, which the redaction cannot
    /// reach (an upstream echoing its request, say).
    pub(crate) fn body(&self, bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let Some(re) = &self.fields else {
            return text.into_owned();
        };
        if self.escaped.iter().any(|e| text.contains(e.as_str())) {
            return WITHHELD.to_string();
        }
        re.replace_all(&text, format!(r#""$1":"{REDACTED}""#)).into_owned()
    }
}

/// A body as it streams past, kept up to a cap.
#[derive(Debug, Default)]
pub(crate) struct BodyBuf {
    pub buf: Vec<u8>,
    pub truncated: bool,
}

impl BodyBuf {
    /// Keeps what of `chunk` fits under `cap`.
    pub(crate) fn push(&mut self, chunk: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.buf.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.buf
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }
}

/// The bodies and headers of one call, as the proxy collected them.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub request_body: BodyBuf,
    pub response_body: BodyBuf,
}

impl Capture {
    /// The stored form of one call's capture.
    pub(crate) fn finish(
        &self,
        request: Option<&http::HeaderMap>,
        response: Option<&http::HeaderMap>,
        collected: Option<&Collected>,
        credential_headers: &[http::HeaderName],
    ) -> Captured {
        let mut out = Captured::default();
        if self.headers {
            if let Some(h) = request {
                out.request_headers = self.headers(h.iter(), credential_headers);
            }
            if let Some(h) = response {
                out.response_headers = self.headers(h.iter(), credential_headers);
            }
        }
        if let (true, Some(c)) = (self.bodies, collected) {
            if !c.request_body.buf.is_empty() {
                out.request_body = Some(self.body(&c.request_body.buf));
            }
            if !c.response_body.buf.is_empty() {
                out.response_body = Some(self.body(&c.response_body.buf));
            }
            out.truncated = c.request_body.truncated || c.response_body.truncated;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfSize;

    fn capture(fields: &[&str]) -> Capture {
        let cfg = CaptureConfig {
            headers: true,
            bodies: true,
            max_body: ConfSize(64),
            redact_headers: vec!["X-Internal".into()],
            redact_fields: fields.iter().map(|f| f.to_string()).collect(),
        };
        match Capture::compile(&cfg) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn credential_headers_are_redacted() {
        let c = capture(&[]);
        let mut h = http::HeaderMap::new();
        h.insert("authorization", http::HeaderValue::from_static("Bearer sk-secret"));
        h.insert("cookie", http::HeaderValue::from_static("s=1"));
        h.insert("x-internal", http::HeaderValue::from_static("x"));
        h.insert("x-my-key", http::HeaderValue::from_static("k-123"));
        h.insert("accept", http::HeaderValue::from_static("*/*"));
        let also = [http::HeaderName::from_static("x-my-key")];
        let out = c.headers(h.iter(), &also);
        let text = format!("{out:?}");
        assert!(!text.contains("sk-secret") && !text.contains("k-123") && !text.contains("s=1"));
        assert!(out.contains(&("accept".to_string(), "*/*".to_string())));
        assert_eq!(out.iter().filter(|(_, v)| v == REDACTED).count(), 4);
    }

    #[test]
    fn json_fields_are_redacted_even_in_a_cut_body() {
        let c = capture(&["password", "card"]);
        let body = br#"{"user":"ann","password":"hunter2","nested":{"card":4111111111111111}}"#;
        let out = c.body(body);
        assert!(!out.contains("hunter2") && !out.contains("4111"), "{out}");
        assert!(out.contains(r#""user":"ann""#));
        let cut = c.body(br#"{"password":"hunter"#);
        assert!(!cut.contains("hunter"), "{cut}");
        let echoed = c.body(br#"{"body":"{\"user\":\"ann\",\"password\":\"hunter2\"}"}"#);
        assert_eq!(echoed, WITHHELD);
    }

    #[test]
    fn bodies_stop_at_the_cap() {
        let mut b = BodyBuf::default();
        b.push(&[b'a'; 40], 64);
        b.push(&[b'b'; 40], 64);
        assert_eq!(b.buf.len(), 64);
        assert!(b.truncated);
    }

    #[test]
    fn a_huge_cap_is_refused() {
        let cfg = CaptureConfig {
            headers: true,
            bodies: true,
            max_body: ConfSize(1 << 30),
            redact_headers: vec![],
            redact_fields: vec![],
        };
        assert!(Capture::compile(&cfg).is_err());
    }
}
