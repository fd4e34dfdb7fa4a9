//! The HTTP caching rules of the response cache (RFC 9111): Cache-Control
//! directives, `Vary`, `Expires`, `Pragma`, and which headers an entry keeps.

use super::{HEADER_OVERHEAD, MAX_DELTA_SECONDS};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, SystemTime};

/// The response's `Vary` names, lowercased and deduplicated; `None` for
/// `Vary: *` or a name that is not a header name (nothing could match it).
pub(super) fn vary_names(h: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names: Vec<HeaderName> = Vec::new();
    for value in h.get_all(header::VARY) {
        for item in ListItems(value.as_bytes()) {
            if item == b"*" {
                return None;
            }
            let name = HeaderName::from_bytes(item).ok()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// The headers worth replaying, and their weight.
pub(super) fn stored_headers(h: &HeaderMap) -> (Vec<(HeaderName, HeaderValue)>, usize) {
    let mut out = Vec::with_capacity(h.len());
    let mut bytes = 0;
    for (name, value) in h {
        if is_unstored(name) || listed_in_connection(h, name) {
            continue;
        }
        bytes += name.as_str().len() + value.len() + HEADER_OVERHEAD;
        out.push((name.clone(), value.clone()));
    }
    (out, bytes)
}

pub(super) fn is_unstored(name: &HeaderName) -> bool {
    match name.as_str() {
        // Hop-by-hop (RFC 9110 §7.6.1).
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" => true,
        // Per response, or recomputed by the caller on a hit.
        "content-length" | "age" | "x-cache" | "x-request-id" => true,
        n => n.starts_with("proxy-"),
    }
}

/// RFC 9110 §7.6.1: headers named in `Connection` are hop-by-hop too.
pub(super) fn listed_in_connection(h: &HeaderMap, name: &HeaderName) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .any(|v| ListItems(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(name.as_str().as_bytes())))
}

pub(super) fn pragma_no_cache(h: &HeaderMap) -> bool {
    h.get_all(header::PRAGMA)
        .iter()
        .any(|v| ListItems(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"no-cache")))
}

/// Expires − Date (or now without a usable Date). RFC 9111 §5.3: an invalid
/// Expires, such as "0", means already expired.
pub(super) fn expires_lifetime(expires: &HeaderValue, date: Option<&HeaderValue>) -> Duration {
    let parse = |v: &HeaderValue| v.to_str().ok().and_then(|s| httpdate::parse_http_date(s.trim()).ok());
    let Some(expires) = parse(expires) else {
        return Duration::ZERO;
    };
    let date = date.and_then(parse).unwrap_or_else(SystemTime::now);
    expires.duration_since(date).unwrap_or(Duration::ZERO)
}

/// RFC 9111 delta-seconds; invalid counts as 0 (stale), which is the safe side.
pub(super) fn delta_seconds(v: &[u8]) -> u64 {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    v.iter()
        .try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS))
}

/// The Cache-Control directives this cache acts on (request or response).
#[derive(Debug, Default)]
pub(super) struct Directives {
    pub(super) present: bool,
    pub(super) no_store: bool,
    pub(super) no_cache: bool,
    pub(super) private: bool,
    pub(super) public: bool,
    pub(super) must_revalidate: bool,
    pub(super) max_age: Option<u64>,
    pub(super) s_maxage: Option<u64>,
}

impl Directives {
    /// Works on bytes so a non-UTF-8 value cannot fail the parse. Qualified
    /// forms (`no-cache="x"`, `private="x"`) count as the whole directive, and a
    /// repeated age keeps the smaller value: both err towards not caching.
    pub(super) fn parse(h: &HeaderMap) -> Directives {
        let mut d = Directives::default();
        for value in h.get_all(header::CACHE_CONTROL) {
            d.present = true;
            for item in ListItems(value.as_bytes()) {
                let (name, arg) = match item.iter().position(|&b| b == b'=') {
                    Some(i) => (item[..i].trim_ascii(), unquote(item[i + 1..].trim_ascii())),
                    None => (item, &[][..]),
                };
                let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
                let min = |old: Option<u64>| Some(old.map_or(delta_seconds(arg), |o| o.min(delta_seconds(arg))));
                if is("no-store") {
                    d.no_store = true;
                } else if is("no-cache") {
                    d.no_cache = true;
                } else if is("private") {
                    d.private = true;
                } else if is("public") {
                    d.public = true;
                } else if is("must-revalidate") || is("proxy-revalidate") {
                    d.must_revalidate = true;
                } else if is("max-age") {
                    d.max_age = min(d.max_age);
                } else if is("s-maxage") {
                    d.s_maxage = min(d.s_maxage);
                }
            }
        }
        d
    }
}

pub(super) fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// Items of a comma-separated header list, trimmed, skipping empty ones;
/// commas inside quoted strings do not split. Allocates nothing.
pub(super) struct ListItems<'a>(pub(super) &'a [u8]);

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.0.is_empty() {
            let (mut quoted, mut escaped) = (false, false);
            let mut end = self.0.len();
            for (i, &b) in self.0.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if quoted && b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    quoted = !quoted;
                } else if b == b',' && !quoted {
                    end = i;
                    break;
                }
            }
            let item = self.0[..end].trim_ascii();
            self.0 = self.0.get(end + 1..).unwrap_or_default();
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    }
}
