//! `transform`: request and response header edits, and a regex path rewrite
//! with captures (`regex` crate: linear-time matching, so a pattern from the
//! config cannot make a request path take exponential time). Everything is
//! parsed at config load; a request only applies the prepared edits.
//!
//! Order within one side: rename, remove, set (replace), add (append).

use crate::config::{HeaderOpsConfig, TransformConfig};
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use regex::Regex;
use std::collections::BTreeMap;

#[derive(Default)]
struct HeaderOps {
    rename: Vec<(HeaderName, HeaderName)>,
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
}

fn name(s: &str, field: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("{field}: invalid header name {s:?}"))
}

fn pairs(map: &BTreeMap<String, String>, field: &str) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    map.iter()
        .map(|(k, v)| {
            let value = HeaderValue::from_str(v).map_err(|_| format!("{field}.{k}: invalid header value"))?;
            Ok((name(k, field)?, value))
        })
        .collect()
}

impl HeaderOps {
    fn new(c: &HeaderOpsConfig, side: &str) -> Result<HeaderOps, String> {
        Ok(HeaderOps {
            rename: c
                .rename
                .iter()
                .map(|(from, to)| {
                    Ok((
                        name(from, &format!("{side}.rename"))?,
                        name(to, &format!("{side}.rename"))?,
                    ))
                })
                .collect::<Result<_, String>>()?,
            remove: c
                .remove
                .iter()
                .map(|h| name(h, &format!("{side}.remove")))
                .collect::<Result<_, _>>()?,
            set: pairs(&c.set, &format!("{side}.set"))?,
            add: pairs(&c.add, &format!("{side}.add"))?,
        })
    }

    fn is_empty(&self) -> bool {
        self.rename.is_empty() && self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Applies the edits through the two header types' own methods (they keep
/// pingora's case-preserving header map in step).
macro_rules! apply_ops {
    ($ops:expr, $h:expr) => {{
        let ops = $ops;
        for (from, to) in &ops.rename {
            let values: Vec<HeaderValue> = $h.headers.get_all(from).iter().cloned().collect();
            if !values.is_empty() {
                $h.remove_header(from);
                for v in values {
                    let _ = $h.append_header(to.clone(), v);
                }
            }
        }
        for n in &ops.remove {
            $h.remove_header(n);
        }
        for (n, v) in &ops.set {
            let _ = $h.insert_header(n.clone(), v.clone());
        }
        for (n, v) in &ops.add {
            let _ = $h.append_header(n.clone(), v.clone());
        }
    }};
}

pub struct Transform {
    request: HeaderOps,
    path: Option<(Regex, String)>,
    response: HeaderOps,
}

impl Transform {
    pub fn new(c: &TransformConfig) -> Result<Transform, String> {
        if c.response.path.is_some() {
            return Err("response.path: a path rewrite applies to requests; move it under `request`".into());
        }
        let path = match &c.request.path {
            None => None,
            Some(p) => {
                let re = Regex::new(&p.regex).map_err(|e| {
                    // The crate's message spans lines (pattern, caret, reason); keep the reason.
                    let text = e.to_string();
                    let reason = text
                        .lines()
                        .last()
                        .unwrap_or("invalid")
                        .trim_start_matches("error: ")
                        .to_string();
                    format!("request.path.regex: invalid regex: {reason}")
                })?;
                if !p.replace.starts_with('/') {
                    return Err("request.path.replace: must start with /".into());
                }
                Some((re, p.replace.clone()))
            }
        };
        let t = Transform {
            request: HeaderOps::new(&c.request, "request")?,
            path,
            response: HeaderOps::new(&c.response, "response")?,
        };
        if t.request.is_empty() && t.response.is_empty() && t.path.is_none() {
            return Err("nothing to transform; give request or response edits".into());
        }
        Ok(t)
    }

    pub fn on_request(&self, up: &mut RequestHeader) {
        apply_ops!(&self.request, up);
        let Some((re, replace)) = &self.path else { return };
        let path = up.uri.path();
        if !re.is_match(path) {
            return;
        }
        let new_path = re.replace(path, replace.as_str());
        let pq = match up.uri.query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path.into_owned(),
        };
        match pq.parse::<http::Uri>() {
            Ok(uri) => up.set_uri(uri),
            Err(_) => log::debug!("path rewrite produced an invalid path; left unchanged"),
        }
    }

    pub fn on_response(&self, resp: &mut ResponseHeader) {
        apply_ops!(&self.response, resp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_rewrite() {
        let cfg: TransformConfig = serde_yaml::from_str(
            "request:\n  rename: {x-old: x-new}\n  remove: [x-drop]\n  set: {x-set: a}\n  add: {x-add: b}\n  path: {regex: '^/api/v1/(?P<rest>.*)$', replace: '/v2/${rest}'}\nresponse:\n  set: {server: portico}\n",
        )
        .unwrap();
        let t = Transform::new(&cfg).unwrap();
        let mut req = RequestHeader::build("GET", b"/api/v1/users/7?x=1", None).unwrap();
        req.insert_header("x-old", "1").unwrap();
        req.insert_header("x-drop", "1").unwrap();
        req.insert_header("x-set", "old").unwrap();
        t.on_request(&mut req);
        assert_eq!(req.uri.to_string(), "/v2/users/7?x=1");
        assert_eq!(req.headers["x-new"], "1");
        assert!(req.headers.get("x-old").is_none() && req.headers.get("x-drop").is_none());
        assert_eq!(req.headers["x-set"], "a");
        assert_eq!(req.headers["x-add"], "b");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        t.on_response(&mut resp);
        assert_eq!(resp.headers["server"], "portico");
        assert!(Transform::new(&TransformConfig::default()).is_err());
    }
}
